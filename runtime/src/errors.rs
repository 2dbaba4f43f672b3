//! Errors as one line for people: the error and every cause beneath it.

/// `outer: cause: root cause`, each cause said once. Client libraries often
/// say what failed ("error sending request", "transport error") and leave
/// why ("connection refused") to a source; and many repeat their source's
/// text in their own, which is then not repeated.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layer(text: &'static str, source: Option<Layer>) -> Layer {
        Layer {
            text,
            source: source.map(Box::new),
        }
    }

    #[test]
    fn every_cause_once() {
        let root = layer("connection refused", None);
        let mid = layer("tcp connect error: connection refused", Some(root));
        let top = layer("error sending request", Some(mid));
        assert_eq!(
            error_chain(&top),
            "error sending request: tcp connect error: connection refused"
        );
        assert_eq!(error_chain(&layer("alone", None)), "alone");
    }
}

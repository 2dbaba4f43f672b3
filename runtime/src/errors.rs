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

/// A duration as people read it in a message: `60s`, `1.5s`, `250ms`;
/// rounded, so a deadline's remainder shows as `60s`, not `59.99995345s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounded(pub std::time::Duration);

impl std::fmt::Display for Rounded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let millis = self.0.as_secs_f64() * 1000.0;
        if millis < 999.5 {
            return write!(f, "{}ms", millis.round());
        }
        let tenths = (millis / 100.0).round() / 10.0;
        if tenths.fract() == 0.0 {
            write!(f, "{tenths:.0}s")
        } else {
            write!(f, "{tenths:.1}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_rounded() {
        use std::time::Duration;
        let shown = |d: Duration| Rounded(d).to_string();
        assert_eq!(shown(Duration::from_secs_f64(59.999_953_45)), "60s");
        assert_eq!(shown(Duration::from_millis(1500)), "1.5s");
        assert_eq!(shown(Duration::from_millis(250)), "250ms");
        assert_eq!(shown(Duration::from_micros(999_700)), "1s");
        assert_eq!(shown(Duration::ZERO), "0ms");
    }

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

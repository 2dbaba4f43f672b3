//! Reading JSON-RPC messages out of a `text/event-stream` body.
//!
//! Only what a Streamable HTTP answer needs: events are separated by a blank
//! line, `data:` lines of one event are joined with `\n`, comments and other
//! fields are ignored. Events without data (priming events) are skipped.

/// The `data` of every event in `body`, in order.
pub(crate) fn data_events(body: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    for line in body.lines() {
        if line.is_empty() {
            if let Some(d) = data.take() {
                events.push(d);
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("data:") else {
            continue; // comments, event:, id:, retry:
        };
        let value = rest.strip_prefix(' ').unwrap_or(rest);
        match &mut data {
            Some(d) => {
                d.push('\n');
                d.push_str(value);
            }
            None => data = Some(value.to_owned()),
        }
    }
    if let Some(d) = data {
        events.push(d);
    }
    events.retain(|d| !d.is_empty());
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Progress notifications and the response come out as separate events;
    /// priming events and comments are skipped.
    #[test]
    fn splits_events_and_skips_priming() {
        let body = "id: 0\ndata:\n\n: keep-alive\n\nevent: message\ndata: {\"a\":1}\n\nevent: message\r\ndata: {\"b\":\r\ndata: 2}\r\n\r\n";
        assert_eq!(data_events(body), ["{\"a\":1}", "{\"b\":\n2}"]);
    }

    /// A final event without the closing blank line is still read.
    #[test]
    fn reads_unterminated_last_event() {
        assert_eq!(data_events("data: x"), ["x"]);
    }
}

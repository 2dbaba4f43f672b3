//! Splitting a group endpoint's answer body into JSON-RPC messages, as
//! they arrive: SSE events' data, or a plain JSON body once complete.

use serde_json::Value;

/// Splits an answer body into JSON-RPC messages: SSE events' data, or a
/// plain JSON body once it is complete.
#[derive(Debug)]
pub(super) struct Events {
    buffer: String,
    sse: bool,
}

impl Events {
    pub(super) fn new(sse: bool) -> Self {
        Self {
            buffer: String::new(),
            sse,
        }
    }

    pub(super) fn push(&mut self, chunk: &[u8]) -> Vec<Value> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        if !self.sse {
            // A JSON body: complete when it parses.
            return match serde_json::from_str::<Value>(self.buffer.trim()) {
                Ok(message) => {
                    self.buffer.clear();
                    vec![message]
                }
                Err(_) => Vec::new(),
            };
        }
        let mut messages = Vec::new();
        let normalized = self.buffer.replace("\r\n", "\n");
        let mut rest = normalized.as_str();
        while let Some(end) = rest.find("\n\n") {
            let (event, tail) = rest.split_at(end + 2);
            rest = tail;
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if let Ok(message) = serde_json::from_str::<Value>(&data.join("\n")) {
                messages.push(message);
            }
        }
        self.buffer = rest.to_owned();
        messages
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Events split across chunks come out whole, in order; priming events
    /// and comments are dropped; a JSON body comes out once complete.
    #[test]
    fn events_across_chunks() {
        let mut events = Events::new(true);
        assert!(
            events
                .push(b"id: 0\ndata:\n\nevent: message\ndata: {\"a\"")
                .is_empty()
        );
        assert_eq!(
            events.push(b":1}\n\n: ping\n\ndata: {\"b\":2}\r\n\r\n"),
            [json!({"a": 1}), json!({"b": 2})]
        );
        let mut json_body = Events::new(false);
        assert!(json_body.push(b"{\"jsonrpc\":").is_empty());
        assert_eq!(json_body.push(b"\"2.0\"}"), [json!({"jsonrpc": "2.0"})]);
    }
}

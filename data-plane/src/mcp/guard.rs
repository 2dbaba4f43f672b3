//! Checks every request to the MCP endpoints before they are served:
//! a browser `Origin` must be loopback or the data plane's own host (DNS
//! rebinding protection; the client's Origin is never passed to members),
//! malformed input gets a JSON-RPC error (the SDK would answer some of it
//! with a plain-text 415), and an oversized body is refused early.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// Axum middleware: lets well-formed JSON-RPC messages from allowed
/// origins through, answers the rest.
pub async fn check_request(request: Request, next: Next) -> Response {
    if !origin_allowed(request.headers()) {
        let rejection = Rejection::new(
            Value::Null,
            INVALID_REQUEST,
            "Forbidden: Origin not allowed",
        );
        return rejection.into_response(StatusCode::FORBIDDEN);
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        let message = format!("request body is larger than {MAX_BODY_BYTES} bytes");
        let rejection = Rejection::new(Value::Null, INVALID_REQUEST, message);
        return rejection.into_response(StatusCode::PAYLOAD_TOO_LARGE);
    };
    if let Err(rejection) = check(&bytes) {
        return rejection.into_response(StatusCode::BAD_REQUEST);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Why a body is not a JSON-RPC message.
#[derive(Debug)]
struct Rejection {
    id: Value,
    code: i64,
    message: String,
}

impl Rejection {
    fn new(id: Value, code: i64, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
        }
    }

    fn into_response(self, status: StatusCode) -> Response {
        jsonrpc_error(status, self.id, self.code, &self.message)
    }
}

/// An HTTP response carrying one JSON-RPC error object.
pub fn jsonrpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    });
    let content_type = [(header::CONTENT_TYPE, "application/json")];
    (status, content_type, body.to_string()).into_response()
}

/// No `Origin` (not a browser), a loopback origin, or the data plane's own
/// host as the client addressed it.
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(origin_host) = origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .and_then(|u| u.host_str().map(str::to_owned))
    else {
        return false;
    };
    if matches!(origin_host.as_str(), "localhost" | "127.0.0.1" | "[::1]") {
        return true;
    }
    let own_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| url::Url::parse(&format!("http://{h}")).ok())
        .and_then(|u| u.host_str().map(str::to_owned));
    own_host.is_some_and(|h| h == origin_host)
}

fn check(bytes: &Bytes) -> Result<(), Rejection> {
    let message: Value = serde_json::from_slice(bytes)
        .map_err(|e| Rejection::new(Value::Null, PARSE_ERROR, format!("parse error: {e}")))?;
    let Value::Object(message) = message else {
        // Batches were only part of 2025-03-26; no current client sends them.
        let text =
            "invalid request: expected one JSON-RPC message object (batches are not supported)";
        return Err(Rejection::new(Value::Null, INVALID_REQUEST, text));
    };
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        let text = "invalid request: \"jsonrpc\" must be \"2.0\"";
        return Err(Rejection::new(id, INVALID_REQUEST, text));
    }
    let is_request = message.get("method").is_some_and(Value::is_string);
    let is_response = message.contains_key("id")
        && (message.contains_key("result") || message.contains_key("error"));
    if !is_request && !is_response {
        let text = "invalid request: a message needs a string \"method\", or an \"id\" with \"result\" or \"error\"";
        return Err(Rejection::new(id, INVALID_REQUEST, text));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(body: &str) -> Option<i64> {
        check(&Bytes::from(body.to_owned())).err().map(|r| r.code)
    }

    fn origin(origin: &str, host: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, origin.parse().unwrap());
        headers.insert(header::HOST, host.parse().unwrap());
        origin_allowed(&headers)
    }

    /// Loopback and same-host origins pass; any other site is refused.
    #[test]
    fn only_local_or_own_origins() {
        assert!(origin("http://localhost:3000", "127.0.0.1:9000"));
        assert!(origin("http://[::1]:5173", "127.0.0.1:9000"));
        assert!(origin("https://dp.internal", "dp.internal:9000"));
        assert!(!origin("http://evil.example.com", "127.0.0.1:9000"));
        assert!(!origin("null", "127.0.0.1:9000"));
        assert!(origin_allowed(&HeaderMap::new()));
    }

    /// Only well-formed single JSON-RPC messages pass.
    #[test]
    fn classifies_messages() {
        assert_eq!(
            rejected(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            None
        );
        assert_eq!(
            rejected(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            None
        );
        assert_eq!(rejected(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), None);
        assert_eq!(rejected("{bad json"), Some(PARSE_ERROR));
        for bad in [
            "[1,2]",
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            "\"x\"",
        ] {
            assert_eq!(rejected(bad), Some(INVALID_REQUEST), "{bad}");
        }
    }
}

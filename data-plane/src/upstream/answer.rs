//! Reading a member's answers: the JSON-RPC response out of a JSON or SSE
//! body, errors out of HTTP statuses, and the signs of a 2026-07-28 server.

use http::StatusCode;
use serde_json::Value;

use super::error::UpstreamError;
use super::sse;
use crate::server::jsonrpc::{HEADER_MISMATCH, MISSING_CLIENT_CAPABILITY, UNSUPPORTED_VERSION};

/// JSON-RPC errors by which a 2026-07-28 server refuses a legacy request.
const MODERN_ERROR_CODES: [i64; 3] = [
    HEADER_MISMATCH,
    MISSING_CLIENT_CAPABILITY,
    UNSUPPORTED_VERSION,
];
/// Longest piece of an error body kept for messages.
const ERROR_BODY_LIMIT: usize = 200;

/// Whether a member's answer to a request with a session id says it does
/// not know the session, so the request was not processed: 404, as the
/// spec asks, or 400 naming the session, as the TypeScript SDK's servers
/// answer an unknown id ("Bad Request: No valid session ID provided").
/// Both our own requests and the transparent endpoint's go by this.
pub(crate) fn rejects_session(status: StatusCode, body: &[u8]) -> bool {
    match status {
        StatusCode::NOT_FOUND => true,
        StatusCode::BAD_REQUEST => String::from_utf8_lossy(body)
            .to_ascii_lowercase()
            .contains("session"),
        _ => false,
    }
}

/// Whether a member's answer to a 2026-07-28 `server/discover` says it
/// speaks only the legacy protocol: 400 without one of the modern error
/// codes (mcp 1.x answers it with 400 "Missing session ID"; a modern
/// server must answer it, and names a modern code when it refuses).
pub(crate) fn is_legacy_refusal(status: StatusCode, body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    status == StatusCode::BAD_REQUEST
        && !MODERN_ERROR_CODES
            .iter()
            .any(|code| text.contains(&code.to_string()))
}

/// A 2026-07-28-only server refuses `initialize` with a modern error code.
pub(super) fn is_modern_refusal(err: &UpstreamError) -> bool {
    match err {
        UpstreamError::JsonRpc { code, .. } => MODERN_ERROR_CODES.contains(code),
        UpstreamError::Rejected { body, .. } => MODERN_ERROR_CODES
            .iter()
            .any(|code| body.contains(&code.to_string())),
        _ => false,
    }
}

/// The error of an answer with a status other than 2xx, with the start of
/// its body for the operator.
pub(super) fn status_error(status: StatusCode, body: &[u8]) -> UpstreamError {
    let body = error_body(body);
    if status.is_server_error() {
        UpstreamError::ServerError { status, body }
    } else {
        UpstreamError::Rejected { status, body }
    }
}

/// What an error body says, for a message: a JSON-RPC error's message and
/// code rather than the JSON around them (the cause first, not cut off
/// mid-object), else the start of the text.
fn error_body(body: &[u8]) -> String {
    let error = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let error = v.get("error")?;
        let message = error.get("message")?.as_str()?.to_owned();
        Some(match error.get("code").and_then(Value::as_i64) {
            Some(code) => format!("{message} (JSON-RPC {code})"),
            None => message,
        })
    });
    let text = error.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    text.chars().take(ERROR_BODY_LIMIT).collect()
}

/// The JSON-RPC response with `id` among an SSE body's events (progress and
/// other notifications before it are skipped).
pub(super) fn find_response_in_sse(text: &str, id: u64) -> Result<Value, UpstreamError> {
    sse::data_events(text)
        .into_iter()
        .filter_map(|data| serde_json::from_str::<Value>(&data).ok())
        .find(|msg| msg.get("id").and_then(Value::as_u64) == Some(id))
        .ok_or_else(|| UpstreamError::Protocol("event stream ended without a response".into()))
}

/// The `result` of a JSON-RPC response, or its `error` as an error.
pub(super) fn into_result(mut answer: Value) -> Result<Value, UpstreamError> {
    if let Some(result) = answer.get_mut("result") {
        return Ok(result.take());
    }
    match answer.get("error") {
        Some(error) => Err(UpstreamError::JsonRpc {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            data: error.get("data").cloned(),
        }),
        None => Err(UpstreamError::Protocol(
            "json-rpc message has neither result nor error".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JSON-RPC error body reads as its message and code, so a status
    /// line shows the cause instead of JSON cut off mid-object.
    #[test]
    fn error_bodies_say_their_cause() {
        let body = br#"{"jsonrpc":"2.0","id":"server-error","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"}}"#;
        let err = status_error(StatusCode::BAD_REQUEST, body);
        assert_eq!(
            err.to_string(),
            "member rejected the request with HTTP 400 Bad Request: Bad Request: No valid session ID provided (JSON-RPC -32000)"
        );
        let err = status_error(StatusCode::BAD_GATEWAY, b"  upstream down\n");
        assert_eq!(
            err.to_string(),
            "member answered HTTP 502 Bad Gateway: upstream down"
        );
    }
}

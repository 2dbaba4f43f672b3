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
    let body = String::from_utf8_lossy(body)
        .chars()
        .take(ERROR_BODY_LIMIT)
        .collect();
    if status.is_server_error() {
        UpstreamError::ServerError { status, body }
    } else {
        UpstreamError::Rejected { status, body }
    }
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

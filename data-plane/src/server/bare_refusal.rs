//! Refusals without a JSON-RPC body (plain text, or nothing) turned into
//! JSON-RPC errors carrying the request's id, so that every refusal on an
//! MCP endpoint is one a client can show: a member's plain `406`, `415` or
//! `400` relayed through `/groups`, and the MCP library's own plain-text
//! refusals on `/mcp`. The status and the refuser's words are kept. A
//! member's JSON-RPC refusal with `"id": null` (the TypeScript SDK's, for a
//! request it refused before reading it) gets the request's id
//! ([`with_request_id`]).

use std::time::Duration;

use axum::body::{Bytes, HttpBody};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::server::jsonrpc::{INVALID_REQUEST, SERVER_ERROR, jsonrpc_error};
use crate::upstream::error::BoxError;

/// Most bytes of the refuser's text kept in the message.
const TEXT_BYTES: usize = 512;
/// How long the text may take to arrive; after it the message goes without.
const TEXT_PATIENCE: Duration = Duration::from_secs(1);
/// Headers of the refusal that still mean something to the client.
const KEPT: [header::HeaderName; 3] =
    [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE];

/// Whether an answer with `status` and `headers` is a refusal without a
/// JSON-RPC body.
pub(crate) fn is_bare_refusal(status: StatusCode, headers: &HeaderMap) -> bool {
    if !status.is_client_error() && !status.is_server_error() {
        return false;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    !content_type.starts_with("application/json") && !content_type.starts_with("text/event-stream")
}

/// The refusal (`status`, `headers`, `body`) as a JSON-RPC error for the
/// request `id`: `prefix` (who refused, may be empty), the status, and the
/// start of the refuser's text.
pub(crate) async fn to_jsonrpc<B>(
    status: StatusCode,
    headers: &HeaderMap,
    body: B,
    id: Value,
    prefix: &str,
) -> Response
where
    B: HttpBody<Data = Bytes>,
{
    let text: String = tokio::time::timeout(TEXT_PATIENCE, text_of(body))
        .await
        .unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("error");
    let mut message = format!("{prefix}HTTP {} {reason}", status.as_u16());
    if !text.is_empty() {
        message.push_str(": ");
        message.push_str(&text);
    }
    let code = if status.is_server_error() {
        SERVER_ERROR
    } else {
        INVALID_REQUEST
    };
    let mut response = jsonrpc_error(status, id, code, &message);
    for name in KEPT {
        if let Some(value) = headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// Longest JSON refusal whose id is filled in; a longer one is relayed as it is.
const JSON_REFUSAL_BYTES: usize = 16 * 1024;

/// Whether an answer is a JSON refusal whose id may need the request's.
pub(crate) fn is_json_refusal(status: StatusCode, headers: &HeaderMap) -> bool {
    (status.is_client_error() || status.is_server_error())
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"))
}

/// A JSON-RPC refusal (`parts`, `body`) with `"id": null` replaced by the
/// request's `id`, as a fresh answer with the refusal's status and the
/// headers that still mean something; a body that is not such a refusal
/// is kept as it is.
pub(crate) async fn with_request_id<B>(
    parts: axum::http::response::Parts,
    body: B,
    id: &Value,
) -> Response
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let read = tokio::time::timeout(TEXT_PATIENCE, read_up_to(body, JSON_REFUSAL_BYTES)).await;
    let Ok(Some(bytes)) = read else {
        // Too long, broken off or slow: what arrived cannot be relayed whole.
        let message = format!(
            "HTTP {} from the member, whose refusal could not be read",
            parts.status.as_u16()
        );
        return jsonrpc_error(parts.status, id.clone(), SERVER_ERROR, &message);
    };
    let mut message: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let body = if message.get("id").is_some_and(Value::is_null) && message.get("error").is_some() {
        message["id"] = id.clone();
        Bytes::from(message.to_string())
    } else {
        bytes
    };
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = parts.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    for name in KEPT {
        if let Some(value) = parts.headers.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    response
}

/// The whole of `body` if it has at most `limit` bytes.
async fn read_up_to<B>(body: B, limit: usize) -> Option<Bytes>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let collected = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .ok()?;
    Some(collected.to_bytes())
}

/// The first [`TEXT_BYTES`] of `body` as one trimmed line of text.
async fn text_of<B>(body: B) -> String
where
    B: HttpBody<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::new();
    while bytes.len() < TEXT_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            _ => break,
        }
    }
    bytes.truncate(TEXT_BYTES);
    let text = String::from_utf8_lossy(&bytes);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn a_plain_refusal_becomes_a_jsonrpc_error_with_the_id_and_the_text() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        headers.insert(header::ALLOW, "POST".parse().unwrap());
        let status = StatusCode::NOT_ACCEPTABLE;
        assert!(is_bare_refusal(status, &headers));
        let body = Full::new(Bytes::from_static(
            b"Not Acceptable: Client must\naccept both",
        ));
        let response = to_jsonrpc(
            status,
            &headers,
            body,
            json!(7),
            "member 'a' refused the request: ",
        )
        .await;
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()[header::ALLOW], "POST");
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let message: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(message["id"], 7);
        assert_eq!(
            message["error"]["message"],
            "member 'a' refused the request: HTTP 406 Not Acceptable: Not Acceptable: Client must accept both"
        );
    }

    #[test]
    fn json_and_streams_and_successes_are_left_alone() {
        let mut json = HeaderMap::new();
        json.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(!is_bare_refusal(StatusCode::BAD_REQUEST, &json));
        assert!(!is_bare_refusal(StatusCode::ACCEPTED, &HeaderMap::new()));
        assert!(is_bare_refusal(StatusCode::BAD_REQUEST, &HeaderMap::new()));
    }
}

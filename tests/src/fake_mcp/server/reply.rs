//! The fake server's replies: JSON-RPC answers as SSE or JSON, HTTP errors
//! with a JSON-RPC error body, and the checks of `Accept` and
//! `Content-Type` both protocol eras share.

use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::fake_mcp::protocol::{Body, MCP_SESSION_ID, code};

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");
const SESSION_HEADER: HeaderName = HeaderName::from_static(MCP_SESSION_ID);
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// A JSON-RPC answer with status 200, as SSE or JSON per `body`'s framing;
/// with `held_until`, the body ends only when that token is cancelled.
pub(super) fn answer(
    body: Vec<u8>,
    sse: bool,
    session: Option<HeaderValue>,
    held_until: Option<CancellationToken>,
) -> Response {
    let body = match held_until {
        None => axum::body::Body::from(body),
        Some(stop) => {
            let event = futures::stream::once(async move { Ok(bytes::Bytes::from(body)) });
            let held = futures::stream::once(async move {
                stop.cancelled_owned().await;
                Ok::<_, std::convert::Infallible>(bytes::Bytes::new())
            });
            axum::body::Body::from_stream(event.chain(held))
        }
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    if sse {
        headers.insert(CONTENT_TYPE, EVENT_STREAM);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    } else {
        headers.insert(CONTENT_TYPE, JSON);
    }
    if let Some(session) = session {
        headers.insert(SESSION_HEADER, session);
    }
    response
}

/// An HTTP-level error carrying a JSON-RPC error object (always JSON, like the Python SDK).
pub(super) fn http_error(
    status: StatusCode,
    id: Option<&Value>,
    code: i64,
    message: &str,
    data: Option<&Value>,
) -> Response {
    let body = Body::new(false, message.len()).error(id, code, message, data);
    (status, [(CONTENT_TYPE, JSON)], body).into_response()
}

/// 202 with no body: the answer to notifications and client responses.
pub(super) fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

pub(super) fn missing_session() -> Response {
    http_error(
        StatusCode::BAD_REQUEST,
        None,
        code::INVALID_REQUEST,
        "Bad Request: Missing session ID",
        None,
    )
}

pub(super) fn session_not_found() -> Response {
    http_error(
        StatusCode::NOT_FOUND,
        None,
        code::INVALID_REQUEST,
        "Session not found",
        None,
    )
}

/// Whether `Accept` allows JSON and, unless `json_only`, SSE (wildcards count).
pub(super) fn accepts(headers: &HeaderMap, json_only: bool) -> bool {
    let (mut json, mut sse) = (false, false);
    let values = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    for media in values.flat_map(|v| v.split(',')) {
        let media = media.split(';').next().unwrap_or_default().trim();
        if media == "*/*" {
            (json, sse) = (true, true);
        } else if media.eq_ignore_ascii_case("application/json")
            || media.eq_ignore_ascii_case("application/*")
        {
            json = true;
        } else if media.eq_ignore_ascii_case("text/event-stream")
            || media.eq_ignore_ascii_case("text/*")
        {
            sse = true;
        }
    }
    json && (json_only || sse)
}

/// Whether the body is declared as JSON (`application/json`, any parameters).
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let media = v.split(';').next().unwrap_or_default().trim();
            media.eq_ignore_ascii_case("application/json")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &'static str) -> HeaderMap {
        HeaderMap::from_iter([(ACCEPT, HeaderValue::from_static(value))])
    }

    #[test]
    fn accept_needs_both_types_unless_json_only() {
        assert!(accepts(
            &accept("application/json, text/event-stream"),
            false
        ));
        assert!(accepts(
            &accept("text/event-stream;q=0.9, Application/JSON"),
            false
        ));
        assert!(accepts(&accept("*/*"), false));
        assert!(!accepts(&accept("application/json"), false));
        assert!(accepts(&accept("application/json"), true));
        assert!(!accepts(&accept("text/event-stream"), true));
        assert!(!accepts(&HeaderMap::new(), true));
    }

    #[test]
    fn content_type_allows_parameters() {
        let headers = |v| HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static(v))]);
        assert!(is_json(&headers("application/json; charset=utf-8")));
        assert!(!is_json(&headers("text/plain")));
        assert!(!is_json(&HeaderMap::new()));
    }
}

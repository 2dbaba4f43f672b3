//! The axum routes of the fake server: `POST /mcp` in both protocol eras,
//! `DELETE /mcp` for legacy sessions, `GET /mcp` (405) and `GET /healthz`.
//!
//! A POST whose `MCP-Protocol-Version` header is absent or a legacy version is
//! handled by [`legacy`]; any other value goes to [`modern`], as the Python SDK
//! 2.3 routes it (so a bogus version gets a modern error, not a legacy one).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use super::Run;
use super::protocol::{Body, LEGACY_VERSIONS, MCP_PROTOCOL_VERSION, MCP_SESSION_ID, code};

mod legacy;
mod modern;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");
const SESSION_HEADER: HeaderName = HeaderName::from_static(MCP_SESSION_ID);
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// The routes, sharing one server run.
pub(super) fn router(run: Arc<Run>) -> Router {
    Router::new()
        .route("/mcp", post(post_mcp).get(get_mcp).delete(delete_mcp))
        .route("/healthz", get(healthz))
        .with_state(run)
}

async fn post_mcp(State(run): State<Arc<Run>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(expected) = &run.shared.bearer
        && headers.get(axum::http::header::AUTHORIZATION) != Some(expected)
    {
        run.shared
            .unauthorized
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return (
            StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            "invalid token",
        )
            .into_response();
    }
    match headers.get(MCP_PROTOCOL_VERSION) {
        Some(version) if !is_legacy(version) => modern::post(&run, &headers, version, &body).await,
        _ => legacy::post(&run, &headers, &body).await,
    }
}

/// No standalone SSE stream is offered (allowed by the spec: "405 if not offered").
async fn get_mcp() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(ALLOW, "POST, DELETE")],
        "Method Not Allowed",
    )
        .into_response()
}

/// Ends a legacy session: 200, then the id is unknown (404). Stateless servers
/// and modern requests have no sessions, so DELETE is 405 there.
async fn delete_mcp(State(run): State<Arc<Run>>, headers: HeaderMap) -> Response {
    let modern = headers
        .get(MCP_PROTOCOL_VERSION)
        .is_some_and(|v| !is_legacy(v));
    if run.shared.stateless || modern {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(ALLOW, "POST")],
            "Method Not Allowed",
        )
            .into_response();
    }
    match headers.get(MCP_SESSION_ID) {
        None => missing_session(),
        Some(id) if run.shared.close_session(id) => StatusCode::OK.into_response(),
        Some(_) => session_not_found(),
    }
}

/// Plain HTTP liveness like the example server's `GET /healthz` (not MCP).
async fn healthz(State(run): State<Arc<Run>>) -> String {
    format!("ok {}", run.shared.name)
}

fn is_legacy(version: &HeaderValue) -> bool {
    LEGACY_VERSIONS
        .iter()
        .any(|v| v.as_bytes() == version.as_bytes())
}

// === replies ===

/// A JSON-RPC answer with status 200, as SSE or JSON per `body`'s framing.
fn answer(body: Vec<u8>, sse: bool, session: Option<HeaderValue>) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
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
fn http_error(
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
fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

fn missing_session() -> Response {
    http_error(
        StatusCode::BAD_REQUEST,
        None,
        code::INVALID_REQUEST,
        "Bad Request: Missing session ID",
        None,
    )
}

fn session_not_found() -> Response {
    http_error(
        StatusCode::NOT_FOUND,
        None,
        code::INVALID_REQUEST,
        "Session not found",
        None,
    )
}

/// Whether `Accept` allows JSON and, unless `json_only`, SSE (wildcards count).
fn accepts(headers: &HeaderMap, json_only: bool) -> bool {
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
fn is_json(headers: &HeaderMap) -> bool {
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

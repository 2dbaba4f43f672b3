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
use http::header::ALLOW;
use http::{HeaderMap, HeaderValue, StatusCode};

use self::reply::{missing_session, session_not_found};
use super::protocol::{LEGACY_VERSIONS, MCP_PROTOCOL_VERSION, MCP_SESSION_ID};
use super::state::Run;

mod legacy;
mod modern;
mod reply;

/// The routes, sharing one server run.
pub(super) fn router(run: Arc<Run>) -> Router {
    Router::new()
        .route("/mcp", post(post_mcp).get(get_mcp).delete(delete_mcp))
        .route("/healthz", get(healthz))
        .with_state(run)
}

async fn post_mcp(State(run): State<Arc<Run>>, headers: HeaderMap, body: Bytes) -> Response {
    run.shared.note_traceparent(&headers, &body);
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
    if run.shared.fail_calls && is_tool_call(&body) {
        run.shared
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return (StatusCode::INTERNAL_SERVER_ERROR, "tool calls fail here").into_response();
    }
    match headers.get(MCP_PROTOCOL_VERSION) {
        Some(version) if !is_legacy(version) => modern::post(&run, &headers, version, &body).await,
        _ => legacy::post(&run, &headers, &body).await,
    }
}

/// Whether `body` is a `tools/call` request (a cheap look, for `fail_calls`).
fn is_tool_call(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|message| message["method"] == "tools/call")
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

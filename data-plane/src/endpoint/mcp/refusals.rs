//! The `/mcp` endpoint's refusals, all as JSON-RPC errors carrying the
//! request's id: the MCP library answers some requests with plain text
//! (`415` for a body that is not `application/json`, `406` for an `Accept`
//! without both media types, `405`) and a `DELETE` of a session it does not
//! know with `202`; a client should learn that the session is gone (`404`),
//! as the group endpoint and the SDK servers say. A session it did end is
//! `200`, as the SDK servers answer, not its `202`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::Value;

use crate::server::bare_refusal;
use crate::server::guard::Peek;
use crate::server::jsonrpc::{INVALID_REQUEST, jsonrpc_error};

/// Axum middleware in front of the MCP library on `/mcp` (behind the guard,
/// which left the request's [`Peek`]).
pub(crate) async fn refusals(
    State(sessions): State<Arc<LocalSessionManager>>,
    request: Request,
    next: Next,
) -> Response {
    let id = request
        .extensions()
        .get::<Peek>()
        .map_or(Value::Null, |peek| peek.id.clone());
    if request.method() == Method::DELETE {
        let session = request
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let known = match &session {
            Some(session) => sessions
                .has_session(&session.as_str().into())
                .await
                .unwrap_or(false),
            None => false,
        };
        if !known {
            let (status, message) = match session {
                None => (StatusCode::BAD_REQUEST, "Bad Request: Missing session ID"),
                Some(_) => (StatusCode::NOT_FOUND, "Session not found"),
            };
            return jsonrpc_error(status, id, INVALID_REQUEST, message);
        }
    }
    let ending = request.method() == Method::DELETE;
    let mut response = next.run(request).await;
    if ending && response.status() == StatusCode::ACCEPTED {
        // The library says 202 for a session it ended; the SDK servers say
        // 200, and the Python SDK client warns on anything but 200 or 204.
        *response.status_mut() = StatusCode::OK;
    }
    if !bare_refusal::is_bare_refusal(response.status(), response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    bare_refusal::to_jsonrpc(parts.status, &parts.headers, body, id, "").await
}

//! The group endpoint's own refusals, each a JSON-RPC error with the
//! request's id where it has one: no member can take the request, a
//! member failed, the session is gone, the method has no meaning here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hangar_rate::Refusal;
use serde_json::{Value, json};

use super::forward::ClientRequest;
use crate::route::failover::Failover;
use crate::route::member::Member;
use crate::route::policy::Denial;
use crate::route::table::GroupRoute;
use crate::server::jsonrpc::{INVALID_PARAMS, INVALID_REQUEST, SERVER_ERROR, jsonrpc_error};
use crate::upstream::UpstreamError;

/// The client's answer when the failover loop produced none.
pub(super) fn failover_refusal(
    request: &ClientRequest,
    group: &GroupRoute,
    failed: Failover<UpstreamError>,
) -> Response {
    match failed {
        Failover::NoAvailableMember(refusal) => unavailable(request, &refusal.to_string()),
        Failover::CircuitOpen(open) => unavailable(request, &open.to_string()),
        Failover::Member { index, error } => {
            bad_gateway(request, &group.members[index].member, &error)
        }
    }
}

/// 429 with `Retry-After` and a JSON-RPC error carrying the request's id,
/// the refusal in MCP Hangar's words and the wait in milliseconds: a rate
/// limit refused the request, which no member saw.
pub(super) fn rate_limited(request: &ClientRequest, refusal: &Refusal) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": request.peek.id,
        "error": {
            "code": SERVER_ERROR,
            "message": refusal.to_string(),
            "data": {
                "type": "RateLimitExceeded",
                "limit": refusal.limit,
                "retryAfterMs": refusal.retry_after_ms(),
            },
        },
    });
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (
            header::RETRY_AFTER,
            HeaderValue::from(refusal.retry_after_header()),
        ),
    ];
    (StatusCode::TOO_MANY_REQUESTS, headers, body.to_string()).into_response()
}

/// A JSON-RPC error for a `tools/call` of a tool the group's policies
/// deny, answered as a server answers an unknown tool (HTTP 200,
/// invalid params), so clients show it as a tool error rather than a
/// broken connection. No member saw the call.
pub(super) fn tool_denied(request: &ClientRequest, denied: &Denial) -> Response {
    jsonrpc_error(
        StatusCode::OK,
        request.peek.id.clone(),
        INVALID_PARAMS,
        &denied.to_string(),
    )
}

/// The answer of a legacy-only server to a 2026-07-28 request, which
/// clients read as "fall back to initialize".
pub(super) fn legacy_only() -> Response {
    jsonrpc_error(
        StatusCode::BAD_REQUEST,
        Value::String("server-error".to_owned()),
        INVALID_REQUEST,
        "Bad Request: Missing session ID",
    )
}

/// 503 with a JSON-RPC error for the request: the group cannot take it now.
pub(super) fn unavailable(request: &ClientRequest, message: &str) -> Response {
    jsonrpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        request.peek.id.clone(),
        SERVER_ERROR,
        message,
    )
}

/// 404: the session is gone, and the client should start over.
pub(super) fn session_not_found(request: &ClientRequest) -> Response {
    jsonrpc_error(
        StatusCode::NOT_FOUND,
        request.peek.id.clone(),
        INVALID_REQUEST,
        "Session not found",
    )
}

pub(super) fn method_not_allowed() -> Response {
    let mut response = jsonrpc_error(
        StatusCode::METHOD_NOT_ALLOWED,
        Value::Null,
        INVALID_REQUEST,
        "Method Not Allowed",
    );
    response
        .headers_mut()
        .insert("allow", axum::http::HeaderValue::from_static("POST"));
    response
}

/// 502 naming the member by id; its address and the transport's detail
/// stay in the log.
pub(super) fn bad_gateway(
    request: &ClientRequest,
    member: &Member,
    err: &UpstreamError,
) -> Response {
    if let UpstreamError::RateLimited(refusal) = err {
        return rate_limited(request, refusal);
    }
    tracing::debug!(member.id = %member.id(), error = %err, "member failed");
    let message = format!("member '{}' failed: {}", member.id(), err.for_client());
    let status = match err {
        // Busy, not broken: the client may retry.
        UpstreamError::Saturated(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    jsonrpc_error(status, request.peek.id.clone(), SERVER_ERROR, &message)
}

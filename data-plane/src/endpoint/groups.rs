//! `/groups/{group}/mcp`: a group that looks like one MCP server.
//!
//! Legacy clients (2024-11-05 … 2025-11-25) get sessions: `initialize` is
//! balanced with the group's strategy, and the member's `Mcp-Session-Id` is
//! handed to the client wrapped with the member's id (see [`session`]), so
//! every later request of the session (POST, GET stream, DELETE, responses
//! to server requests, cancellations) goes to the same member from any data
//! plane. A session whose member is out of rotation gets 404, which makes
//! the client initialize again and land on a healthy member. Requests
//! without a session (stateless members) are balanced one by one.
//!
//! 2026-07-28 requests are stateless: each is balanced on its own, after the
//! `Mcp-Method`/`Mcp-Name` headers are checked against the body.
//!
//! Bodies are forwarded as bytes and answers streamed back unbuffered
//! (`forward`); only `method`, `params.name`/`params.uri` and `_meta` are
//! read, for routing and header checks.

mod forward;
mod local;
pub(crate) mod session;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::Value;

pub(crate) use self::forward::{ClientRequest, SESSION};
use crate::route::failover::{self, Failover, Pool};
use crate::route::member::{Ledger, Member};
use crate::route::table::{GroupRoute, Routes};
use crate::server::guard::Checked;
use crate::server::jsonrpc::{HEADER_MISMATCH, INVALID_REQUEST, SERVER_ERROR, jsonrpc_error};
use crate::upstream::UpstreamError;

/// Versions that have sessions; anything else is the stateless protocol.
const LEGACY_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// Serves a request to `/groups/{group}/mcp` that passed the guard.
pub(crate) async fn handle(routes: &Routes, group: &str, checked: Checked) -> Response {
    let Checked { parts, body, peek } = checked;
    let request = ClientRequest {
        peek: peek.unwrap_or_default(),
        method: parts.method,
        headers: parts.headers,
        body,
    };
    route(routes, group, request).await
}

/// Serves one request of the transparent endpoint of `group` (also used by
/// the stdio adapter, which speaks to groups the same way).
pub(crate) async fn route(routes: &Routes, group: &str, request: ClientRequest) -> Response {
    let table = routes.load();
    let Some(group) = table.groups.get(group) else {
        let message = format!("unknown group '{group}'");
        return jsonrpc_error(
            StatusCode::NOT_FOUND,
            Value::Null,
            INVALID_REQUEST,
            &message,
        );
    };
    let slot = if forward::is_call(&request) {
        match group.admit(forward::QUEUE_PATIENCE).await {
            Ok(slot) => slot,
            Err(err) => {
                let message = format!("group '{}' is busy: {err}", group.id);
                return jsonrpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    request.peek.id.clone(),
                    SERVER_ERROR,
                    &message,
                );
            }
        }
    } else {
        None
    };
    let response = serve(group, request).await;
    match slot {
        // The slot is freed when the answer (maybe a stream) is done.
        Some(slot) => forward::hold_until_sent(response, slot),
        None => response,
    }
}

/// [`route`] once the group is known and has room.
async fn serve(group: &GroupRoute, request: ClientRequest) -> Response {
    let modern = is_modern(&request);
    let session = request.headers.get(SESSION).map(|v| v.as_bytes().to_vec());
    match (&request.method, modern, session) {
        (&Method::POST, true, _) => match check_modern_headers(&request) {
            Ok(()) => balanced(group, &request, Members::Modern).await,
            Err(message) => jsonrpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                HEADER_MISMATCH,
                &message,
            ),
        },
        // The stateless protocol has no GET stream and no sessions to end.
        (_, true, _) => method_not_allowed(),
        (&Method::POST | &Method::GET | &Method::DELETE, false, Some(session)) => {
            sticky(group, &request, &session).await
        }
        (&Method::POST | &Method::GET, false, None) => {
            // Without a session only a stateless member can serve anything
            // but `initialize`; a stateful one would answer "missing session".
            let members = if is_initialize(&request) {
                Members::All
            } else {
                Members::Stateless
            };
            balanced(group, &request, members).await
        }
        (&Method::DELETE, false, None) => {
            let message = "Bad Request: Missing session ID";
            jsonrpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                INVALID_REQUEST,
                message,
            )
        }
        _ => method_not_allowed(),
    }
}

/// A request of the session's member, or 404 so the client starts over.
async fn sticky(group: &GroupRoute, request: &ClientRequest, session: &[u8]) -> Response {
    let member = session::decode(session).and_then(|(id, member_session)| {
        let member = group.members.iter().find(|m| m.member.id() == id)?;
        Some((member, member_session))
    });
    let Some((group_member, member_session)) = member.filter(|(m, _)| m.member.is_healthy()) else {
        return session_not_found();
    };
    // An open circuit refuses calls in sessions too; other requests
    // (notifications, responses, streams) still reach the member.
    if forward::is_call(request)
        && let Err(open) = group.circuit()
    {
        return unavailable(request, &open.to_string());
    }
    let member = &group_member.member;
    let ledger = group_member.ledger(group);
    match deliver(member, ledger, request, Some(&member_session)).await {
        Ok(response) => response,
        // The member is gone: the client re-initializes on a healthy one.
        Err(UpstreamError::Connect(_) | UpstreamError::Unavailable(_)) => session_not_found(),
        Err(err) => bad_gateway(member, &err),
    }
}

/// Sends `request` to `member` and returns its answer for the client: over
/// HTTP for a remote member, or answered here for a subprocess copy.
async fn deliver(
    member: &Arc<Member>,
    ledger: Ledger<'_>,
    request: &ClientRequest,
    member_session: Option<&[u8]>,
) -> Result<Response, UpstreamError> {
    if let Some(stdio) = member.upstream().stdio() {
        return local::answer(member, stdio, ledger, request).await;
    }
    let (response, call) = forward::send(member, ledger, request, member_session).await?;
    Ok(forward::relay(
        response,
        call,
        |s| session::encode(member.id(), s),
        &request.peek.id,
        member.id(),
    ))
}

/// Which members may take a session-less request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Members {
    All,
    /// Members that may speak 2026-07-28: not subprocess copies, whose one
    /// session is a legacy one.
    Modern,
    /// Members known to keep no sessions (or not known yet); all of them if
    /// the group has none.
    Stateless,
}

/// A request balanced over the group with its strategy, through the
/// failover loop ([`failover::run`]).
async fn balanced(group: &GroupRoute, request: &ClientRequest, members: Members) -> Response {
    let mut order = group.order();
    if members == Members::Modern {
        let is_copy = |i: &usize| group.members[*i].member.upstream().stdio().is_some();
        if (0..group.members.len()).all(|i| is_copy(&i)) && !group.members.is_empty() {
            // Every member speaks only the legacy protocol: say what a
            // legacy-only server says, so a dual-era client falls back to
            // `initialize` (and a legacy session).
            return legacy_only();
        }
        order.retain(|i| !is_copy(i));
    }
    if members == Members::Stateless {
        let stateless =
            |i: &usize| group.members[*i].member.upstream().is_stateless() != Some(false);
        if order.iter().any(stateless) {
            order.retain(stateless);
        }
    }
    let attempt = |index: usize| {
        let member = &group.members[index];
        deliver(&member.member, member.ledger(group), request, None)
    };
    match failover::run(group, order, attempt).await {
        Ok((response, _)) => response,
        Err(Failover::NoAvailableMember(refusal)) => unavailable(request, &refusal.to_string()),
        Err(Failover::CircuitOpen(open)) => unavailable(request, &open.to_string()),
        Err(Failover::Member { index, error }) => bad_gateway(&group.members[index].member, &error),
    }
}

fn is_initialize(request: &ClientRequest) -> bool {
    request.peek.method.as_deref() == Some("initialize")
}

/// True for the stateless protocol: its version header is not a legacy one.
fn is_modern(request: &ClientRequest) -> bool {
    request
        .headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !LEGACY_VERSIONS.contains(&v))
}

/// 2026-07-28: `Mcp-Method` must name the body's method, and `Mcp-Name` the
/// body's `params.name` (or `params.uri`) where the method has one.
fn check_modern_headers(request: &ClientRequest) -> Result<(), String> {
    let Some(method) = request.peek.method.as_deref() else {
        return Ok(()); // responses carry no method
    };
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    if header("mcp-method") != Some(method) {
        return Err(format!(
            "mcp-method header does not match the request body's method '{method}'"
        ));
    }
    if !matches!(method, "tools/call" | "prompts/get" | "resources/read") {
        return Ok(());
    }
    match request.peek.name.as_deref() {
        Some(name) if header("mcp-name") == Some(name) => Ok(()),
        _ => Err("mcp-name header does not match the request body".to_owned()),
    }
}

/// The answer of a legacy-only server to a 2026-07-28 request, which
/// clients read as "fall back to initialize".
fn legacy_only() -> Response {
    jsonrpc_error(
        StatusCode::BAD_REQUEST,
        Value::String("server-error".to_owned()),
        INVALID_REQUEST,
        "Bad Request: Missing session ID",
    )
}

/// 503 with a JSON-RPC error for the request: the group cannot take it now.
fn unavailable(request: &ClientRequest, message: &str) -> Response {
    jsonrpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        request.peek.id.clone(),
        SERVER_ERROR,
        message,
    )
}

fn session_not_found() -> Response {
    jsonrpc_error(
        StatusCode::NOT_FOUND,
        Value::Null,
        INVALID_REQUEST,
        "Session not found",
    )
}

fn method_not_allowed() -> Response {
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
fn bad_gateway(member: &Member, err: &UpstreamError) -> Response {
    tracing::debug!(member.id = %member.id(), error = %err, "member failed");
    let message = format!("member '{}' failed: {}", member.id(), err.for_client());
    let status = match err {
        // Busy, not broken: the client may retry.
        UpstreamError::Saturated(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    jsonrpc_error(status, Value::Null, SERVER_ERROR, &message)
}

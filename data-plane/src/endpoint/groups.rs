//! `/groups/{group}/mcp`: a group that looks like one MCP server.
//!
//! Legacy clients (2024-11-05 … 2025-11-25) get sessions: `initialize` is
//! balanced with the group's strategy, and the member's `Mcp-Session-Id` is
//! handed to the client wrapped with the member's id (see [`session`]), so
//! every later request of the session (POST, GET stream, DELETE, responses
//! to server requests, cancellations) goes to the same member from any data
//! plane. A session whose member is out of rotation or lost it is re-opened
//! on a healthy member with the client's `initialize` params, which the id
//! also carries (session recovery, [`sticky`]); the client keeps its id.
//! Requests without a session (stateless members) are balanced one by one.
//!
//! 2026-07-28 requests are stateless: each is balanced on its own, after the
//! `Mcp-Method`/`Mcp-Name` headers are checked against the body.
//!
//! Bodies are forwarded as bytes and answers streamed back unbuffered
//! (`forward`); only `method`, `params.name`/`params.uri` and `_meta` are
//! read, for routing and header checks.

mod forward;
mod local;
mod recovery;
mod refusals;
pub(crate) mod session;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::Value;

pub(crate) use self::forward::{ClientRequest, SESSION};
use self::refusals::{
    bad_gateway, failover_refusal, legacy_only, method_not_allowed, rate_limited,
    session_not_found, tool_denied, unavailable,
};
use self::session::{LEGACY_VERSIONS, Naming};
use crate::route::access::{Principal, Who};
use crate::route::failover::{self, Failover, Pool};
use crate::route::member::{Ledger, Member};
use crate::route::outlier::LazyNow;
use crate::route::session_keys::SessionKeys;
use crate::route::sessions::{Known, Moved};
use crate::route::table::{GroupRoute, Routes, RoutingTable};
use crate::server::guard::Checked;
use crate::server::jsonrpc::{HEADER_MISMATCH, INVALID_REQUEST, SERVER_ERROR, jsonrpc_error};
use crate::server::{bare_refusal, caller};
use crate::upstream::UpstreamError;

/// Serves a request to `/groups/{group}/mcp` that passed the guard.
pub(crate) async fn handle(routes: &Routes, group: &str, checked: Checked) -> Response {
    let Checked {
        parts,
        body,
        peek,
        charged,
    } = checked;
    let caller = caller::of_request(&parts.headers, &parts.extensions);
    let who = Who::of(parts.extensions.get::<Principal>());
    let request = ClientRequest {
        peek: peek.unwrap_or_default(),
        method: parts.method,
        headers: parts.headers,
        body,
        caller,
        who,
    };
    let response = route(routes, group, request).await;
    // The body was held (for failover) until the answer began.
    drop(charged);
    response
}

/// Serves one request of the transparent endpoint of `group` (also used by
/// the stdio adapter, which speaks to groups the same way).
pub(crate) async fn route(routes: &Routes, group: &str, request: ClientRequest) -> Response {
    let table = routes.load();
    let Some(group) = table.groups.get(group) else {
        return jsonrpc_error(
            StatusCode::NOT_FOUND,
            request.peek.id.clone(),
            INVALID_REQUEST,
            &unknown_group(routes, &table, group),
        );
    };
    if !table.access.may_use(&request.who, &group.id) {
        tracing::info!(principal = request.who.name(), group = %group.id, "group endpoint refused: no access rule allows this caller any of its tools");
        return jsonrpc_error(
            StatusCode::FORBIDDEN,
            request.peek.id.clone(),
            INVALID_REQUEST,
            &format!(
                "Forbidden: no access rule lets '{}' call any tool of group '{}'",
                request.who.name(),
                group.id
            ),
        );
    }
    if let Some(tool) = tools::called_tool(&request)
        && let Some(denied) = group
            .denial(tool)
            .or_else(|| table.access.check(&request.who, &group.id, tool).err())
    {
        tracing::info!(principal = request.who.name(), group = %group.id, tool, reason = %denied.by, "tool call refused");
        return tool_denied(&request, &denied);
    }
    if let Some(asking) = request.asking()
        && let Err(refusal) = table.rate.admit_group(&group.id, &asking)
    {
        return rate_limited(&request, &refusal);
    }
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
    let response = serve(routes, group, request).await;
    match slot {
        // The slot is freed when the answer (maybe a stream) is done.
        Some(slot) => forward::hold_until_sent(response, slot),
        None => response,
    }
}

/// `ledger` for `request`, whose member's server may limit its rate.
fn with_asking<'a>(ledger: Ledger<'a>, request: &'a ClientRequest) -> Ledger<'a> {
    match request.asking() {
        Some(asking) => ledger.asking(asking),
        None => ledger,
    }
}

/// Why a group name finds nothing, naming the groups that exist.
fn unknown_group(routes: &Routes, table: &RoutingTable, group: &str) -> String {
    if table.version == 0 {
        return format!("unknown group '{group}': {}", routes.why_no_config());
    }
    match table.group_names.as_slice() {
        [] => format!("unknown group '{group}': the config in force has no groups"),
        known => format!("unknown group '{group}' (groups: {})", known.join(", ")),
    }
}

/// [`route`] once the group is known and has room.
async fn serve(routes: &Routes, group: &GroupRoute, request: ClientRequest) -> Response {
    let modern = is_modern(&request);
    let session = request.headers.get(SESSION).map(|v| v.as_bytes().to_vec());
    let well_formed = if modern {
        check_modern_headers(&request).is_ok()
    } else {
        session.as_deref().is_none_or(|s| {
            session::decode(routes.session_keys(), s, request.who.principal()).is_some()
        })
    };
    if request.method == Method::POST
        && well_formed
        && let Some(answer) = tools::answer_here(group, &routes.load().access, &request, modern)
    {
        return answer;
    }
    match (&request.method, modern, session) {
        (&Method::POST, true, _) => match check_modern_headers(&request) {
            Ok(()) => balanced(group, &request, Members::Modern, routes.session_keys()).await,
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
            sticky(routes, group, &request, &session).await
        }
        (&Method::POST | &Method::GET, false, None) => {
            // Without a session only a stateless member can serve anything
            // but `initialize`; a stateful one would answer "missing session".
            let members = if is_initialize(&request) {
                Members::All
            } else {
                Members::Stateless
            };
            balanced(group, &request, members, routes.session_keys()).await
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

/// How long re-opening a client's session on another member may take.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A request in a client's session: sent to the member that holds the
/// session. When that member is gone (out of rotation, unreachable) or
/// lost the session (404, or 400 naming it), the session is re-opened on a
/// healthy member by replaying the client's `initialize` (session
/// recovery), unless the group turned that off; then the client gets 404
/// and starts over, as the spec has it.
async fn sticky(
    routes: &Routes,
    group: &GroupRoute,
    request: &ClientRequest,
    client_session: &[u8],
) -> Response {
    let Some(id) = session::decode(
        routes.session_keys(),
        client_session,
        request.who.principal(),
    ) else {
        return session_not_found(request);
    };
    // An open circuit refuses calls in sessions too; other requests
    // (notifications, responses, streams) still reach the member.
    if forward::is_call(request)
        && let Err(open) = group.circuit()
    {
        return unavailable(request, &open.to_string());
    }
    let known = routes.moved_sessions().get(client_session);
    let (holder, member_session) = match &known {
        Some(Known::Ended) => return session_not_found(request),
        Some(Known::Moved(moved)) => (moved.member.as_str(), moved.member_session.as_slice()),
        None => (id.member.as_str(), id.member_session.as_slice()),
    };
    let naming = Naming::Keep(client_session);
    let mut now = LazyNow::default();
    let holder = (0..group.members.len())
        .find(|&i| group.members[i].member.id() == holder && group.in_rotation(i, &mut now));
    if let Some(index) = holder {
        if let Some(tool) = tools::called_tool(request)
            && !group.may_serve(index, Some(tool))
            && !group.listed_nowhere(tool)
        {
            // Boxed, as are the other rare branches: a future is as large
            // as its largest branch, and every call's future would pay for
            // this one's size, in memory and in copies.
            return Box::pin(tools::call_elsewhere(group, request, tool, false)).await;
        }
        let holder = &group.members[index];
        let ledger = with_asking(group.ledger(index), request);
        match deliver(
            &holder.member,
            ledger,
            request,
            Some(member_session),
            &naming,
        )
        .await
        {
            Ok(response) => {
                let (lost, response) = recovery::refuses_session(response).await;
                if !lost {
                    if request.method == Method::DELETE && response.status().is_success() {
                        routes.moved_sessions().end(client_session);
                    }
                    return response;
                }
                if !group.session_recovery || id.init.is_none() {
                    return response;
                }
                tracing::debug!(member.id = %holder.member.id(), "member lost a client session");
            }
            // Never delivered: the member is gone.
            Err(UpstreamError::Connect(_) | UpstreamError::Unavailable(_)) => {}
            Err(err) => return bad_gateway(request, &holder.member, &err),
        }
    }
    match id.init.as_ref() {
        Some(init) if group.session_recovery && request.method != Method::DELETE => {
            Box::pin(reopen(routes, group, request, client_session, init)).await
        }
        _ => session_not_found(request),
    }
}

/// Re-opens the client's session on a member in rotation (the strategy's
/// pick, failing over as any request does) with the client's `initialize`
/// params, remembers where it lives now, and sends the request there. The
/// client keeps its session id.
async fn reopen(
    routes: &Routes,
    group: &GroupRoute,
    request: &ClientRequest,
    client_session: &[u8],
    init: &Value,
) -> Response {
    let attempt = |index: usize| {
        let member = &group.members[index].member;
        async move {
            member
                .upstream()
                .open_client_session(init, RECOVERY_TIMEOUT)
                .await
        }
    };
    let (member_session, index) = match failover::run(group, group.order(), None, attempt).await {
        Ok(opened) => opened,
        Err(failed) => return failover_refusal(request, group, failed),
    };
    let holder = &group.members[index];
    tracing::info!(
        group = %group.id,
        member.id = %holder.member.id(),
        principal = request.who.name(),
        "client session re-opened on another member"
    );
    routes.moved_sessions().insert(
        client_session,
        Moved {
            member: holder.member.id().to_owned(),
            member_session: member_session.clone(),
        },
    );
    let naming = Naming::Keep(client_session);
    let ledger = with_asking(group.ledger(index), request);
    match deliver(
        &holder.member,
        ledger,
        request,
        Some(&member_session),
        &naming,
    )
    .await
    {
        Ok(response) => response,
        Err(err) => bad_gateway(request, &holder.member, &err),
    }
}

/// Sends `request` to `member` and returns its answer for the client: over
/// HTTP for a remote member, or answered here for a subprocess copy.
async fn deliver(
    member: &Arc<Member>,
    ledger: Ledger<'_>,
    request: &ClientRequest,
    member_session: Option<&[u8]>,
    naming: &Naming<'_>,
) -> Result<Response, UpstreamError> {
    if let Some(stdio) = member.upstream().stdio() {
        return local::answer(member, stdio, ledger, request, naming).await;
    }
    let (response, call) = forward::send(member, ledger, request, member_session).await?;
    if bare_refusal::is_bare_refusal(response.status(), response.headers()) {
        // Settled by `send`; the client gets a JSON-RPC error it can show.
        drop(call);
        let (parts, body) = response.into_parts();
        let prefix = format!("member '{}' refused the request: ", member.id());
        let id = request.peek.id.clone();
        return Ok(bare_refusal::to_jsonrpc(parts.status, &parts.headers, body, id, &prefix).await);
    }
    if bare_refusal::is_json_refusal(response.status(), response.headers())
        && !request.peek.id.is_null()
    {
        drop(call);
        let (parts, body) = response.into_parts();
        return Ok(bare_refusal::with_request_id(parts, body, &request.peek.id).await);
    }
    let name = |member_session: &[u8]| naming.name(member.id(), member_session);
    Ok(forward::relay(
        response,
        call,
        name,
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
async fn balanced(
    group: &GroupRoute,
    request: &ClientRequest,
    members: Members,
    keys: &SessionKeys,
) -> Response {
    let tool = tools::called_tool(request);
    // The order is peeked first; the request takes a turn of the rotation
    // below, only if it has a choice of members. Requests a client sends
    // a fixed number of times per call would otherwise move the rotation
    // in strides, and a stride that is a multiple of the member count
    // lands every call on one member.
    let choice = group.choice(tool);
    let mut order = choice.peek();
    if members == Members::Modern {
        // Subprocess copies hold one legacy session; other members may
        // have shown they speak only the legacy protocol.
        let legacy = |i: usize| {
            let member = &group.members[i].member;
            member.upstream().stdio().is_some() || member.is_legacy_only()
        };
        if !group.members.is_empty() && (0..group.members.len()).all(legacy) {
            // Say what a legacy-only server says, so a dual-era client
            // falls back to `initialize` (and a legacy session).
            return legacy_only();
        }
        let listing_legacy = order.iter().any(|&i| legacy(i));
        order.retain(|&i| !legacy(i));
        if let Some(tool) = tool
            && order.is_empty()
            && listing_legacy
        {
            // Only members that speak the legacy protocol list the tool:
            // the call goes through this data plane's own session with one.
            return Box::pin(tools::call_elsewhere(group, request, tool, true)).await;
        }
    }
    if members == Members::Stateless {
        let stateless =
            |i: &usize| group.members[*i].member.upstream().is_stateless() != Some(false);
        if order.iter().any(stateless) {
            order.retain(stateless);
        }
    }
    // A client's era probe takes no turn, so the `initialize` it is
    // followed by (if the members speak only the legacy protocol) lands
    // where it did, and sessions spread evenly. Nor does a listing or a
    // ping: a 2026-07-28 client that lists the tools before each call (as
    // the Python SDK client does, to learn their output schemas) takes one
    // turn a call, and a notification none. Nor does a request only one
    // member can serve: a legacy client whose session is on a stateless
    // member sends the rest of it without a session id.
    let takes_turn = !is_discover(request) && does_work(request) && order.len() > 1;
    if takes_turn {
        let mut turned = choice.take_turn();
        turned.retain(|i| order.contains(i));
        // Unless health changed in between, it is the same members.
        if !turned.is_empty() {
            order = turned;
        }
    }
    let naming = Naming::New {
        principal: request.who.principal(),
        init: is_initialize(request)
            .then(|| session::init_params(&request.body))
            .flatten(),
        keys,
    };
    let attempt = |index: usize| {
        let member = &group.members[index];
        deliver(
            &member.member,
            with_asking(group.ledger_for(index, tool), request),
            request,
            None,
            &naming,
        )
    };
    match failover::run(group, order, None, attempt).await {
        // Only the era probe tells: a modern server must answer it, while
        // any request may be refused with 400 for what it carries.
        Ok((response, index)) if members == Members::Modern && is_discover(request) => {
            let (legacy, response) = recovery::refuses_modern(response).await;
            if legacy {
                group.members[index].member.mark_legacy_only();
            }
            response
        }
        // Another request refused for want of a legacy session was not
        // processed: the member speaks only the legacy protocol, and the
        // request goes to the others (each round marks one more member,
        // so this ends).
        Ok((response, index)) if members == Members::Modern => {
            let (legacy, response) = recovery::wants_legacy_session(response).await;
            if !legacy {
                return response;
            }
            group.members[index].member.mark_legacy_only();
            Box::pin(balanced(group, request, members, keys)).await
        }
        Ok((response, _)) => response,
        Err(Failover::NoAvailableMember(refusal)) => {
            let refusal = match tool {
                Some(tool) if group.lacked_by_some(tool) => refusal.for_tool(tool),
                _ => refusal,
            };
            failover_refusal(request, group, Failover::NoAvailableMember(refusal))
        }
        Err(failed) => failover_refusal(request, group, failed),
    }
}

fn is_discover(request: &ClientRequest) -> bool {
    request.peek.method.as_deref() == Some("server/discover")
}

/// Whether a message asks for work worth spreading: not a notification or
/// a response, which ask nothing, nor a listing or a ping, which every
/// member would answer alike.
fn does_work(request: &ClientRequest) -> bool {
    let Some(method) = request.peek.method.as_deref() else {
        return false;
    };
    !request.peek.id.is_null()
        && !matches!(
            method,
            "tools/list" | "resources/list" | "resources/templates/list" | "prompts/list" | "ping"
        )
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

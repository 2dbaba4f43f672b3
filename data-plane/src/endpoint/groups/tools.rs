//! A group whose members list different tools still looks like one server
//! (see `route::tools` for the rules):
//!
//! - `tools/list` is answered here with the union of the members' tools
//!   when their names differ; when they agree it goes to a member as any
//!   request does;
//! - a `tools/call` of a tool no member lists goes to a member as any call
//!   does, which answers it its own way (an `isError` result or -32602), as
//!   the one server the group stands for would;
//! - a `tools/call` in a session whose member does not list the tool goes to
//!   a member that does, through this data plane's own session with it.
//!   That call carries the client's arguments but not its session:
//!   progress and other messages of the call do not reach the client.

use axum::response::Response;
use serde_json::{Value, json};

use super::forward::ClientRequest;
use super::local::REQUEST_DEADLINE;
use crate::route::access::AccessRules;
use crate::route::failover::{self, Failover};
use crate::route::rate::Asking;
use crate::route::table::GroupRoute;
use crate::server::jsonrpc::json_message;
use crate::upstream::UpstreamError;

/// The tool a `tools/call` names, if `request` is one.
pub(super) fn called_tool(request: &ClientRequest) -> Option<&str> {
    (request.peek.method.as_deref() == Some("tools/call"))
        .then_some(request.peek.name.as_deref())
        .flatten()
}

/// The answer to `request` when the group gives it rather than a member:
/// the union of the members' tools. `modern` requests (2026-07-28) get a
/// result in their era's shape.
pub(super) fn answer_here(
    group: &GroupRoute,
    access: &AccessRules,
    request: &ClientRequest,
    modern: bool,
) -> Option<Response> {
    let id = request.peek.id.clone();
    if request.peek.method.as_deref() != Some("tools/list") || id.is_null() {
        return None;
    }
    // A group with tool policies, or under access rules, always answers
    // itself, whole (a member's page would show what they hide).
    let policed = group.has_policies() || access.any();
    if !policed && has_cursor(request) {
        return None;
    }
    let mut catalog = group.catalog();
    if !catalog.names_differ && !policed {
        return None;
    }
    if access.any() {
        catalog.tools.retain(|tool| {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
            access.check(&request.who, &group.id, name).is_ok()
        });
    }
    let mut result = json!({ "tools": catalog.tools });
    if modern {
        result["resultType"] = json!("complete");
        result["ttlMs"] = json!(0);
        result["cacheScope"] = json!("private");
        result["_meta"] = json!({
            "io.modelcontextprotocol/serverInfo": {
                "name": group.id,
                "version": env!("CARGO_PKG_VERSION"),
            }
        });
    }
    Some(json_message(
        &json!({"jsonrpc": "2.0", "id": id, "result": result}),
    ))
}

/// Whether a `tools/list` asks for a later page: that page is a member's,
/// so the member answers it.
fn has_cursor(request: &ClientRequest) -> bool {
    serde_json::from_slice::<Value>(&request.body)
        .is_ok_and(|message| !message["params"]["cursor"].is_null())
}

/// Calls `tool` on a member of `group` that lists it, for a client whose
/// session lives on a member that does not (or a 2026-07-28 client, when
/// only legacy members list it: `modern`), and answers the client's
/// request with the result.
pub(super) async fn call_elsewhere(
    group: &GroupRoute,
    request: &ClientRequest,
    tool: &str,
    modern: bool,
) -> Response {
    let arguments = serde_json::from_slice::<Value>(&request.body)
        .ok()
        .and_then(|mut message| message["params"].get_mut("arguments").map(Value::take))
        .unwrap_or_else(|| json!({}));
    let attempt = |index: usize| {
        let member = &group.members[index].member;
        let ledger = group
            .ledger_for(index, Some(tool))
            .asking(Asking::tool_call(request.caller, tool));
        let arguments = &arguments;
        async move {
            member
                .call_tool(ledger, tool, arguments, REQUEST_DEADLINE)
                .await
        }
    };
    let id = request.peek.id.clone();
    match failover::run(group, group.order_for(Some(tool)), None, attempt).await {
        Ok((mut result, index)) => {
            // A legacy member's result, for a 2026-07-28 client.
            if modern && result.get("resultType").is_none() {
                result["resultType"] = json!("complete");
            }
            tracing::debug!(
                group = %group.id,
                member.id = %group.members[index].member.id(),
                tool,
                "called on another member: the session's member does not list the tool"
            );
            json_message(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
        }
        Err(Failover::Member {
            error:
                UpstreamError::JsonRpc {
                    code,
                    message,
                    data,
                },
            ..
        }) => {
            let mut error = json!({"code": code, "message": message});
            if let Some(data) = data {
                error["data"] = data;
            }
            json_message(&json!({"jsonrpc": "2.0", "id": id, "error": error}))
        }
        Err(Failover::NoAvailableMember(refusal)) => {
            let failed = Failover::NoAvailableMember(refusal.for_tool(tool));
            super::refusals::failover_refusal(request, group, failed)
        }
        Err(failed) => super::refusals::failover_refusal(request, group, failed),
    }
}

//! Sends one tool call to a server or a group.
//!
//! For a group the strategy orders the healthy members; a call that could not
//! reach a member (connection refused) moves on to the next one at once. A
//! call that reached a member is never resent: `tools/call` is not
//! idempotent, so its failure goes back to the caller.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument;

use crate::member::Member;
use crate::routes::RoutingTable;
use crate::upstream::UpstreamError;

/// Why a call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The name is neither a server nor a group.
    #[error("McpServer '{0}' not found")]
    UnknownServer(String),
    /// The group has no member in rotation.
    #[error("No available member in group '{0}'")]
    NoAvailableMember(String),
    /// The member failed or answered with an error.
    #[error("{}: {source} (member '{member}')", error_kind(source))]
    Upstream {
        /// The member that was called last.
        member: String,
        /// What went wrong.
        #[source]
        source: UpstreamError,
    },
}

impl CallError {
    /// The `error_type` of a `hangar_call` result (MCP Hangar's names).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::UnknownServer(_) => "McpServerNotFoundError",
            Self::NoAvailableMember(_) => "NoAvailableMemberError",
            Self::Upstream { .. } => "ToolInvocationError",
        }
    }
}

/// A short, stable prefix naming the kind of upstream error.
fn error_kind(err: &UpstreamError) -> &'static str {
    match err {
        UpstreamError::Connect(_) => "connection_failed",
        UpstreamError::Timeout(_) => "timeout",
        UpstreamError::Transport(_) => "transport_error",
        UpstreamError::ServerError { .. } => "server_error",
        UpstreamError::Rejected { .. } => "rejected",
        UpstreamError::Protocol(_) => "protocol_error",
        UpstreamError::JsonRpc { .. } => "jsonrpc_error",
    }
}

/// A result and the member that produced it.
#[derive(Debug)]
pub struct Served {
    /// The member's `CallToolResult`.
    pub result: Value,
    /// Id of the member that served the call.
    pub served_by: String,
}

/// Calls `tool` on the server or group named `target`.
pub async fn call(
    table: &RoutingTable,
    target: &str,
    tool: &str,
    arguments: &Value,
    timeout: Duration,
) -> Result<Served, CallError> {
    if let Some(group) = table.groups.get(target) {
        let candidates = group.candidates();
        if candidates.is_empty() {
            return Err(CallError::NoAvailableMember(group.id.clone()));
        }
        return call_first_reachable(&candidates, tool, arguments, timeout).await;
    }
    match table.members.get(target) {
        Some(member) => call_first_reachable(&[member], tool, arguments, timeout).await,
        None => Err(CallError::UnknownServer(target.to_owned())),
    }
}

async fn call_first_reachable(
    candidates: &[&Arc<Member>],
    tool: &str,
    arguments: &Value,
    timeout: Duration,
) -> Result<Served, CallError> {
    let mut last_error = None;
    for (attempt, member) in candidates.iter().enumerate() {
        let span = tracing::debug_span!("upstream", member.id = %member.id(), attempt);
        match member
            .call_tool(tool, arguments, timeout)
            .instrument(span)
            .await
        {
            Ok(result) => {
                return Ok(Served {
                    result,
                    served_by: member.id().to_owned(),
                });
            }
            Err(source) if !source.delivered() => {
                tracing::debug!(member.id = %member.id(), error = %source, "member unreachable, trying the next one");
                last_error = Some(CallError::Upstream {
                    member: member.id().to_owned(),
                    source,
                });
            }
            Err(source) => {
                return Err(CallError::Upstream {
                    member: member.id().to_owned(),
                    source,
                });
            }
        }
    }
    Err(last_error.expect("candidates is never empty"))
}

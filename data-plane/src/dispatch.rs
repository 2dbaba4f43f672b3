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
use crate::metrics::CallMetrics;
use crate::routes::{GroupRoute, RoutingTable};
use crate::upstream::UpstreamError;

/// JSON-RPC codes a member uses for "no such tool" and "bad arguments".
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// Why a call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The name is neither a server nor a group.
    #[error("McpServer '{name}' not found{}", if *.configured { "" } else { ": no config received from the control plane yet" })]
    UnknownServer {
        /// The name the caller gave.
        name: String,
        /// False before the first snapshot arrived.
        configured: bool,
    },
    /// The group has fewer members in rotation than `min_healthy`.
    #[error(
        "No available member in group '{group}': {healthy} of {total} members healthy, min_healthy is {min_healthy}"
    )]
    NoAvailableMember {
        /// The group.
        group: String,
        /// Members in rotation.
        healthy: usize,
        /// Members in the group.
        total: usize,
        /// The group's threshold.
        min_healthy: u32,
    },
    /// The group's `max_concurrency` had no free slot in time.
    #[error("group '{group}' is busy: {source}")]
    Overloaded {
        /// The group.
        group: String,
        /// The cap and how long the call waited.
        #[source]
        source: crate::limit::LimitError,
    },
    /// The member failed or answered with an error.
    /// Displays without the member's address (see
    /// [`UpstreamError::for_client`]): this text goes to MCP clients.
    #[error("{}: {} (member '{member}')", error_kind(source), source.for_client())]
    Upstream {
        /// The member that was called last.
        member: String,
        /// What went wrong.
        #[source]
        source: UpstreamError,
    },
}

impl CallError {
    /// The `error_type` of a `hangar_call` result.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::UnknownServer { .. } => "ServerNotFoundError",
            Self::NoAvailableMember { .. } => "NoAvailableMemberError",
            Self::Overloaded { .. } => "ConcurrencyLimitError",
            Self::Upstream { source, .. } => match source {
                UpstreamError::Timeout(_) | UpstreamError::Quiet(_) => "TimeoutError",
                UpstreamError::Saturated(_) => "ConcurrencyLimitError",
                UpstreamError::ToolNotFound(_) => "ToolNotFoundError",
                UpstreamError::JsonRpc { code, .. } if *code == METHOD_NOT_FOUND => {
                    "ToolNotFoundError"
                }
                UpstreamError::JsonRpc { code, .. } if *code == INVALID_PARAMS => {
                    "InvalidArgumentsError"
                }
                _ => "ToolInvocationError",
            },
        }
    }
}

/// A short, stable prefix naming the kind of upstream error.
fn error_kind(err: &UpstreamError) -> &'static str {
    match err {
        UpstreamError::Connect(_) => "connection_failed",
        UpstreamError::Timeout(_) => "timeout",
        UpstreamError::Quiet(_) => "read_timeout",
        UpstreamError::Transport(_) => "transport_error",
        UpstreamError::ServerError { .. } => "server_error",
        UpstreamError::Rejected { .. } => "rejected",
        UpstreamError::Protocol(_) => "protocol_error",
        UpstreamError::JsonRpc { .. } => "jsonrpc_error",
        UpstreamError::ToolNotFound(_) => "tool_not_found",
        UpstreamError::Unusable(_) => "member_unusable",
        UpstreamError::Saturated(_) => "member_busy",
        UpstreamError::Unavailable(_) => "process_unavailable",
        UpstreamError::Exited(_) => "process_exited",
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

/// Calls `tool` on the server or group named `target`. A server named
/// directly is called whatever its health: the caller asked for it.
pub async fn call(
    table: &RoutingTable,
    target: &str,
    tool: &str,
    arguments: &Value,
    timeout: Duration,
) -> Result<Served, CallError> {
    if let Some(group) = table
        .groups
        .get(target)
        .or_else(|| table.replicas.get(target))
    {
        let started = tokio::time::Instant::now();
        let _slot = match &group.limit {
            Some(limit) => {
                Some(
                    limit
                        .acquire(timeout)
                        .await
                        .map_err(|source| CallError::Overloaded {
                            group: group.id.clone(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        let timeout = timeout.saturating_sub(started.elapsed());
        let order = group_candidates(group)?;
        let candidates: Vec<Candidate<'_>> = order
            .iter()
            .map(|&i| (&group.members[i].member, &group.members[i].metrics))
            .collect();
        let (served, attempt) = call_first_reachable(&candidates, tool, arguments, timeout).await?;
        if attempt > 0 {
            group.record_failover(order[attempt]);
        }
        return Ok(served);
    }
    match table.members.get(target) {
        Some(member) => call_first_reachable(
            &[(member, member.direct_metrics())],
            tool,
            arguments,
            timeout,
        )
        .await
        .map(|(served, _)| served),
        None => Err(CallError::UnknownServer {
            name: target.to_owned(),
            configured: table.version != 0,
        }),
    }
}

/// The group's members to try (indices), or a fast failure when the group
/// is below `min_healthy`.
fn group_candidates(group: &GroupRoute) -> Result<Vec<usize>, CallError> {
    let candidates = group.candidates();
    if candidates.is_empty() || candidates.len() < group.min_healthy as usize {
        return Err(CallError::NoAvailableMember {
            group: group.id.clone(),
            healthy: candidates.len(),
            total: group.members.len(),
            min_healthy: group.min_healthy,
        });
    }
    Ok(candidates)
}

/// A member to try, and where a call to it through this route is counted.
type Candidate<'a> = (&'a Arc<Member>, &'a Arc<CallMetrics>);

/// Tries the candidates in order until one is reached; returns its answer
/// and its position in `candidates`.
async fn call_first_reachable(
    candidates: &[Candidate<'_>],
    tool: &str,
    arguments: &Value,
    timeout: Duration,
) -> Result<(Served, usize), CallError> {
    let mut last_error = None;
    for (attempt, (member, metrics)) in candidates.iter().enumerate() {
        let span = tracing::debug_span!("upstream", member.id = %member.id(), attempt);
        match member
            .call_tool(metrics, tool, arguments, timeout)
            .instrument(span)
            .await
        {
            Ok(result) => {
                let served = Served {
                    result,
                    served_by: member.id().to_owned(),
                };
                return Ok((served, attempt));
            }
            Err(source) if source.may_try_another_member() => {
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

//! Sends one tool call to a server or a group.
//!
//! A group's call goes through the failover loop ([`failover::run`]): a call
//! that could not reach a member (connection refused) moves on to the next
//! one at once; a call that reached a member is never resent (`tools/call`
//! is not idempotent), so its failure goes back to the caller.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument;

use crate::route::access::Who;
use crate::route::breaker::CircuitOpen;
use crate::route::failover::{self, Failover, NoAvailableMember, Retry};
use crate::route::member::{Ledger, Member};
use crate::route::rate::Asking;
use crate::route::retry::{Retried, RetryPolicy};
use crate::route::table::{GroupRoute, RoutingTable};
use crate::server::jsonrpc::{INVALID_PARAMS, METHOD_NOT_FOUND};
use crate::upstream::UpstreamError;
use hangar_rate::CallerKey;

/// Why a call produced no result.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// The name is neither a server nor a group.
    #[error("McpServer '{name}' not found{}", if *.configured { "" } else { ": no config received from the control plane yet" })]
    UnknownServer {
        /// The name the caller gave.
        name: String,
        /// False before the first snapshot arrived.
        configured: bool,
    },
    /// Every member of the group listed its tools, and none lists this one.
    #[error("Tool '{tool}' not found in group '{group}': no member lists it")]
    ToolNotInGroup {
        /// The group.
        group: String,
        /// The tool the caller named.
        tool: String,
    },
    /// The group has fewer members in rotation than `min_healthy`.
    #[error(transparent)]
    NoAvailableMember(NoAvailableMember),
    /// The group's circuit breaker is open.
    #[error(transparent)]
    CircuitOpen(CircuitOpen),
    /// A `tools:` policy of the group, the server or every member refuses
    /// the tool.
    #[error("{0}")]
    ToolDenied(crate::route::policy::Denial),
    /// A rate limit refused the call: of the whole config, the group, the
    /// tool, or the server of every member that could serve it.
    #[error("{0}")]
    RateLimited(hangar_rate::Refusal),
    /// The group's `max_concurrency` had no free slot in time.
    #[error("group '{group}' is busy: {source}")]
    Overloaded {
        /// The group.
        group: String,
        /// The cap and how long the call waited.
        #[source]
        source: crate::route::limit::LimitError,
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
    pub(crate) fn error_type(&self) -> &'static str {
        match self {
            Self::UnknownServer { .. } => "ServerNotFoundError",
            Self::ToolNotInGroup { .. } => "ToolNotFoundError",
            Self::NoAvailableMember(_) => "NoAvailableMemberError",
            Self::CircuitOpen(_) => "CircuitBreakerOpen",
            Self::RateLimited(_) => "RateLimitExceeded",
            Self::ToolDenied(_) => "ToolAccessDeniedError",
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
        UpstreamError::RateLimited(_) => "rate_limited",
        UpstreamError::Unavailable(_) => "process_unavailable",
        UpstreamError::Exited(_) => "process_exited",
        UpstreamError::Hung { .. } => "member_hung",
    }
}

/// A result and the member that produced it.
#[derive(Debug)]
pub(crate) struct Served {
    /// The member's `CallToolResult`.
    pub result: Value,
    /// Id of the member that served the call.
    pub served_by: String,
}

/// What one call came to, and the retries it took when its group has a
/// retry policy (`None` without one).
pub(crate) type Called = (Result<Served, CallError>, Option<Vec<Retried>>);

/// Calls `tool` on the server or group named `target` for `caller`, who
/// is `who`. A server named directly is called whatever its health: the
/// caller asked for it.
pub(crate) async fn call(
    table: &RoutingTable,
    target: &str,
    tool: &str,
    arguments: &Value,
    timeout: Duration,
    (caller, who): (CallerKey, &Who),
) -> Called {
    let asking = Asking::tool_call(caller, tool);
    // Policies first: a call no one may make costs no rate limit a token.
    let denied = match table.groups.get(target) {
        Some(group) => group.denial(tool),
        None => table
            .server_policies
            .get(target)
            .and_then(|policy| policy.check(tool).err()),
    }
    .or_else(|| table.access.check(who, target, tool).err());
    if let Some(denied) = denied {
        tracing::info!(principal = who.name(), target, tool, reason = %denied.by, "tool call refused");
        return (Err(CallError::ToolDenied(denied)), None);
    }
    if let Some(group) = table.groups.get(target) {
        if let Err(refusal) = table.rate.admit_group(target, &asking) {
            return (Err(CallError::RateLimited(refusal)), None);
        }
        return call_group(group, asking, arguments, timeout).await;
    }
    if let Err(refusal) = table.rate.admit_direct(&asking) {
        return (Err(CallError::RateLimited(refusal)), None);
    }
    if let Some(copies) = table.replicas.get(target) {
        return call_group(copies, asking, arguments, timeout).await;
    }
    (
        call_server(table, target, asking, arguments, timeout).await,
        None,
    )
}

/// A call through a group's failover loop (or a server's copies), with
/// the retries it took under the group's policy.
async fn call_group(
    group: &GroupRoute,
    asking: Asking<'_>,
    arguments: &Value,
    timeout: Duration,
) -> Called {
    let mut retries = Vec::new();
    let policy = group.retry.as_ref();
    let outcome = call_members(group, asking, arguments, timeout, policy, &mut retries).await;
    (outcome, policy.map(|_| retries))
}

async fn call_members(
    group: &GroupRoute,
    asking: Asking<'_>,
    arguments: &Value,
    timeout: Duration,
    policy: Option<&RetryPolicy>,
    retries: &mut Vec<Retried>,
) -> Result<Served, CallError> {
    let tool = asking.tool.unwrap_or_default();
    {
        if group.listed_nowhere(tool) {
            return Err(CallError::ToolNotInGroup {
                group: group.id.clone(),
                tool: tool.to_owned(),
            });
        }
        let started = tokio::time::Instant::now();
        let _slot = group
            .admit(timeout)
            .await
            .map_err(|source| CallError::Overloaded {
                group: group.id.clone(),
                source,
            })?;
        let deadline = started + timeout;
        let attempt = |index: usize| {
            let member = &group.members[index];
            // Retries share the call's deadline.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            call_member(
                &member.member,
                group.ledger_for(index, Some(tool)).asking(asking),
                tool,
                arguments,
                left,
            )
        };
        let safe = |index: usize| group.members[index].member.upstream().retry_safe(tool);
        let retry = policy.map(|policy| Retry {
            policy,
            safe: &safe,
            log: retries,
        });
        match failover::run(group, group.order_for(Some(tool)), retry, attempt).await {
            Ok((result, index)) => Ok(Served {
                result,
                served_by: group.members[index].member.id().to_owned(),
            }),
            Err(Failover::NoAvailableMember(refusal)) if group.lacked_by_some(tool) => {
                Err(CallError::NoAvailableMember(refusal.for_tool(tool)))
            }
            Err(Failover::NoAvailableMember(refusal)) => Err(CallError::NoAvailableMember(refusal)),
            Err(Failover::CircuitOpen(open)) => Err(CallError::CircuitOpen(open)),
            Err(Failover::Member {
                error: UpstreamError::RateLimited(refusal),
                ..
            }) => Err(CallError::RateLimited(refusal)),
            Err(Failover::Member { index, error }) => Err(CallError::Upstream {
                member: group.members[index].member.id().to_owned(),
                source: error,
            }),
        }
    }
}

/// A call to a server named directly.
async fn call_server(
    table: &RoutingTable,
    target: &str,
    asking: Asking<'_>,
    arguments: &Value,
    timeout: Duration,
) -> Result<Served, CallError> {
    let tool = asking.tool.unwrap_or_default();
    match table.members.get(target) {
        Some(member) => {
            let ledger = Ledger {
                metrics: member.direct_metrics(),
                breaker: None,
                outliers: None,
                tool: None,
                asking: Some(asking),
            };
            call_member(member, ledger, tool, arguments, timeout)
                .await
                .map(|result| Served {
                    result,
                    served_by: member.id().to_owned(),
                })
                .map_err(|source| match source {
                    UpstreamError::RateLimited(refusal) => CallError::RateLimited(refusal),
                    source => CallError::Upstream {
                        member: member.id().to_owned(),
                        source,
                    },
                })
        }
        None => Err(CallError::UnknownServer {
            name: target.to_owned(),
            configured: table.version != 0,
        }),
    }
}

/// One attempt of a tool call on `member`, in a span naming it.
async fn call_member(
    member: &Arc<Member>,
    ledger: Ledger<'_>,
    tool: &str,
    arguments: &Value,
    timeout: Duration,
) -> Result<Value, UpstreamError> {
    let span = tracing::debug_span!("upstream", member.id = %member.id());
    member
        .call_tool(ledger, tool, arguments, timeout)
        .instrument(span)
        .await
}

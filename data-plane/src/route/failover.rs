//! The one failover loop of the data plane. Every balanced request, a call
//! of a `hangar_call` batch or a request to `/groups/{group}/mcp`, goes
//! through [`run`]:
//!
//! 1. cap: the group's `max_concurrency` (`GroupRoute::admit`, before `run`,
//!    because the two endpoints hold the slot for different spans);
//! 2. circuit: an open circuit breaker refuses at once ([`Pool::circuit`];
//!    calls record their outcome in it where they settle);
//! 3. `min_healthy`: below it the group refuses at once;
//! 4. strategy order: the pool's members in rotation, the strategy's pick
//!    first ([`Pool::order`]), narrowed by the caller to the members that can
//!    serve this request;
//! 5. try each in turn; a request that never reached its member goes to the
//!    next one at once; a request that reached one is resent to the next
//!    only under the group's retry policy, for a tool that member marks
//!    `readOnlyHint` or `idempotentHint` ([`Retry`]), else never
//!    (`tools/call` is not idempotent);
//! 6. record: a member that served after the first pick failed tells the
//!    strategy ([`Pool::record_failover`]), so rotation continues after it.
//!
//! This is the one place that circuit breaking, outlier ejection, retries
//! and rate limits extend. The loop knows members only by index, so it is
//! tested without sockets.

use std::future::Future;

use crate::route::breaker::CircuitOpen;
use crate::route::retry::{FailureClass, Retried, RetryPolicy};

/// A group's members as the failover loop sees them.
pub(crate) trait Pool {
    /// The group's id, for errors.
    fn id(&self) -> &str;
    /// Members in the group, in rotation or not.
    fn size(&self) -> usize;
    /// The id of member `index`, for logs.
    fn member_id(&self, index: usize) -> &str;
    /// Below this many members in rotation the group refuses requests.
    fn min_healthy(&self) -> u32;
    /// Indices of the members in rotation, in the order to try them: the
    /// strategy's pick first, then the failover order.
    fn order(&self) -> Vec<usize>;
    /// Member `index` served after the strategy's first pick could not be
    /// reached.
    fn record_failover(&self, index: usize);
    /// Whether the group's circuit lets a request through now.
    fn circuit(&self) -> Result<(), CircuitOpen>;
}

/// What the loop needs to know of a failed attempt.
pub(crate) trait AttemptError {
    /// True when the request never reached the member (no connection, no
    /// process, no free slot), so another member may take it.
    fn never_delivered(&self) -> bool;
    /// What kind of failure it is, for a retry policy's `retry_on`; `None`
    /// for answers and refusals, which are never retried.
    fn failure_class(&self) -> Option<FailureClass>;
    /// The failure as MCP clients may see it.
    fn describe(&self) -> String;
}

impl AttemptError for crate::upstream::UpstreamError {
    fn never_delivered(&self) -> bool {
        self.may_try_another_member()
    }

    fn failure_class(&self) -> Option<FailureClass> {
        use crate::upstream::UpstreamError::*;
        match self {
            Timeout(_) | Quiet(_) | Hung { .. } => Some(FailureClass::Timeout),
            Transport(_) | Exited(_) => Some(FailureClass::Connection),
            ServerError { .. } => Some(FailureClass::ServerError),
            Protocol(_) => Some(FailureClass::Protocol),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        self.for_client().to_string()
    }
}

/// When a request that reached its member and failed may go to the next
/// member: the group's policy allows it and the member says the tool is
/// safe to repeat.
pub(crate) struct Retry<'a> {
    /// The group's `retry:` policy.
    pub(crate) policy: &'a RetryPolicy,
    /// Whether member `index` marks the request's tool read-only or
    /// idempotent.
    pub(crate) safe: &'a (dyn Fn(usize) -> bool + Sync),
    /// The retries made, filled in by the loop.
    pub(crate) log: &'a mut Vec<Retried>,
}

/// The group has fewer members that can serve the request than
/// `min_healthy`, or none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "No available member in group '{group}'{}: {healthy} of {total} members {}, min_healthy is {min_healthy}",
    .tool.as_ref().map_or_else(String::new, |t| format!(" for tool '{t}'")),
    if .tool.is_some() { "healthy and listing it" } else { "healthy" }
)]
pub(crate) struct NoAvailableMember {
    /// The group.
    pub group: String,
    /// Members that could serve the request.
    pub healthy: usize,
    /// Members in the group.
    pub total: usize,
    /// The group's threshold.
    pub min_healthy: u32,
    /// The tool of the call, when only members listing it could serve it.
    pub tool: Option<String>,
}

impl NoAvailableMember {
    /// The refusal of a call of `tool`, which only members listing it serve.
    pub(crate) fn for_tool(mut self, tool: &str) -> Self {
        self.tool = Some(tool.to_owned());
        self
    }
}

/// Why [`run`] produced no answer.
#[derive(Debug)]
pub(crate) enum Failover<E> {
    /// Nothing was tried: the group's circuit is open.
    CircuitOpen(CircuitOpen),
    /// Nothing was tried.
    NoAvailableMember(NoAvailableMember),
    /// The member at `index` failed after the request reached it, or it was
    /// the last of the members that could not be reached.
    Member {
        /// Index of the member in the group.
        index: usize,
        /// What went wrong there.
        error: E,
    },
}

/// Sends a request to the members of `order` in turn with `attempt` until
/// one answers; returns the answer and the index of the member that gave it.
/// `order` is [`Pool::order`], possibly narrowed to the members that can
/// serve this request. Without `retry`, a request that reached a member is
/// never sent again.
pub(crate) async fn run<P, T, E, F, Fut>(
    pool: &P,
    order: Vec<usize>,
    mut retry: Option<Retry<'_>>,
    mut attempt: F,
) -> Result<(T, usize), Failover<E>>
where
    P: Pool + ?Sized,
    E: AttemptError,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    pool.circuit().map_err(Failover::CircuitOpen)?;
    if order.is_empty() || order.len() < pool.min_healthy() as usize {
        return Err(Failover::NoAvailableMember(NoAvailableMember {
            group: pool.id().to_owned(),
            healthy: order.len(),
            total: pool.size(),
            min_healthy: pool.min_healthy(),
            tool: None,
        }));
    }
    let mut unreached = None;
    // Attempts that reached their member.
    let mut sent = 0;
    for (tried, &index) in order.iter().enumerate() {
        match attempt(index).await {
            Ok(answer) => {
                if tried > 0 {
                    pool.record_failover(index);
                }
                return Ok((answer, index));
            }
            Err(error) if error.never_delivered() => {
                tracing::debug!(
                    group = pool.id(),
                    member = pool.member_id(index),
                    "member unreachable, trying the next one"
                );
                unreached = Some(Failover::Member { index, error });
            }
            Err(error) => {
                sent += 1;
                let more = tried + 1 < order.len();
                if let Some(retry) = retry.as_mut()
                    && more
                    && retry.policy.allows(sent, error.failure_class())
                    && (retry.safe)(index)
                {
                    let delay = retry
                        .policy
                        .delay(u32::try_from(retry.log.len()).unwrap_or(u32::MAX) + 1);
                    tracing::info!(
                        group = pool.id(),
                        member = pool.member_id(index),
                        ?delay,
                        "retrying on the next member: the tool is marked safe to repeat"
                    );
                    retry.log.push(Retried {
                        member: pool.member_id(index).to_owned(),
                        error: error.describe(),
                        delay_ms: delay.as_secs_f64() * 1000.0,
                    });
                    tokio::time::sleep(delay).await;
                    continue;
                }
                return Err(Failover::Member { index, error });
            }
        }
    }
    Err(unreached.expect("order is not empty"))
}

#[cfg(test)]
#[path = "failover_tests.rs"]
mod tests;

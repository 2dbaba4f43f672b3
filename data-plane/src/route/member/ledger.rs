//! Where a call's outcome is written ([`Ledger`]): what the endpoint
//! that sends a request to a member knows of it (the group's metric
//! handles, breaker and outlier detection, the tool, who asks), handed to
//! the member for the call's `InFlightCall` to settle into.

use std::sync::Arc;

use crate::metrics::MemberCalls;
use crate::route::breaker::CircuitBreaker;
use crate::route::outlier::Outliers;
use crate::route::rate::Asking;

/// Where a call's outcome is written: the metric handles of the group (or
/// of the server named directly) and member it went through, and the
/// group's circuit breaker, if it went through a group.
#[derive(Debug, Clone, Copy)]
pub struct Ledger<'a> {
    /// Counters and latency of the call, by tool.
    pub metrics: &'a MemberCalls,
    /// The group's breaker.
    pub breaker: Option<&'a Arc<CircuitBreaker>>,
    /// The group's outlier detection and the member's index in the group.
    pub(crate) outliers: Option<(&'a Arc<Outliers>, usize)>,
    /// The tool called, when its latency is kept apart (`least_latency`).
    pub(crate) tool: Option<&'a str>,
    /// Who calls what, for the server's rate limits; `None` for requests
    /// no limit counts (streams, notifications, probes).
    pub(crate) asking: Option<Asking<'a>>,
}

impl<'a> Ledger<'a> {
    /// This ledger for a request that the server's rate limits count.
    pub(crate) fn asking(self, asking: Asking<'a>) -> Self {
        Self {
            asking: Some(asking),
            ..self
        }
    }

    /// The tool a `tools/call` names, for the `tool` label: every path
    /// that sends one says so in `asking` (the rate limits count calls by
    /// tool too), so the endpoints need not pass it twice.
    pub(crate) fn called_tool(&self) -> Option<&'a str> {
        self.asking.as_ref().and_then(|asking| asking.tool)
    }
}

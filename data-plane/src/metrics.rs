//! The data plane's call metrics: counters and latency histograms that the
//! hot path records into. They are served at `/metrics` with the state the
//! routing table holds (`endpoint::metrics`).
//!
//! Events (calls and their latency) are counted where a call settles
//! (`route::member::InFlightCall`) through [`CallMetrics`] handles that
//! the routing table builds once per snapshot for every group member, so a
//! call touches a few atomics and one histogram lock: no label lookup and no
//! allocation on the hot path. State (health, calls in flight, the config in
//! force) is read from the routing table when Prometheus scrapes.
//!
//! Every data plane has its own [`Metrics`] (no process-global recorder),
//! so several data planes in one process keep their numbers apart.
//! Labels carry server and group ids from the config, never endpoints,
//! tool names or arguments.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::upstream::UpstreamError;

/// Upper bounds of the call latency buckets, in seconds: from a fast local
/// member (sub-millisecond) to tools that run for minutes.
const LATENCY_BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// How one call to a member ended; the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// The member answered (a tool error or a JSON-RPC error is an answer).
    Ok,
    /// The member refused the request (HTTP 4xx) or does not list the tool.
    Rejected,
    /// No connection could be made; the call moved to another member if any.
    Unreachable,
    /// No answer within the deadline.
    Timeout,
    /// The member failed: transport error, HTTP 5xx, or an invalid answer.
    Error,
    /// The caller went away before the call settled.
    Cancelled,
}

impl CallOutcome {
    const ALL: [Self; 6] = [
        Self::Ok,
        Self::Rejected,
        Self::Unreachable,
        Self::Timeout,
        Self::Error,
        Self::Cancelled,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Rejected => "rejected",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }

    /// True when the member answered (its latency is a service time).
    pub fn is_answer(self) -> bool {
        matches!(self, Self::Ok | Self::Rejected)
    }

    /// The outcome of a call that ended with `err`.
    pub fn of(err: &UpstreamError) -> Self {
        match err {
            UpstreamError::JsonRpc { .. } => Self::Ok,
            UpstreamError::Rejected { .. } | UpstreamError::ToolNotFound(_) => Self::Rejected,
            UpstreamError::Connect(_)
            | UpstreamError::Unusable(_)
            | UpstreamError::Unavailable(_) => Self::Unreachable,
            // Nothing was sent: the member was busy, not wrong.
            UpstreamError::Saturated(_) | UpstreamError::RateLimited(_) => Self::Rejected,
            UpstreamError::Timeout(_) | UpstreamError::Quiet(_) | UpstreamError::Hung { .. } => {
                Self::Timeout
            }
            UpstreamError::Transport(_)
            | UpstreamError::Exited(_)
            | UpstreamError::ServerError { .. }
            | UpstreamError::Protocol(_) => Self::Error,
        }
    }
}

impl EncodeLabelValue for CallOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    group: String,
    member: String,
    outcome: CallOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MemberLabels {
    group: String,
    member: String,
}

type LatencyFamily = Family<MemberLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The call counters and latency histograms of one data plane, by label.
#[derive(Debug, Clone)]
pub struct CallFamilies {
    calls: Family<CallLabels, Counter>,
    latency: LatencyFamily,
}

impl Default for CallFamilies {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl CallFamilies {
    /// Adds the families to the registry served at `/metrics`.
    pub(crate) fn register(self, registry: &mut Registry) {
        registry.register(
            "hangar_calls",
            "Requests sent to a member, by group (empty when the server was named directly) and outcome",
            self.calls,
        );
        registry.register(
            "hangar_call_duration_seconds",
            "Time until a member's complete answer, of calls with outcome ok or rejected",
            self.latency,
        );
    }

    /// The handles of `member` in `group` (`""` for calls that name the
    /// server itself). Allocates; call it when a routing table is built,
    /// never per call. The same labels always give the same series, so
    /// counts carry on across snapshots.
    pub fn handles(&self, group: &str, member: &str) -> Arc<CallMetrics> {
        let calls = CallOutcome::ALL.map(|outcome| {
            self.calls.get_or_create_owned(&CallLabels {
                group: group.to_owned(),
                member: member.to_owned(),
                outcome,
            })
        });
        let latency = self.latency.get_or_create_owned(&MemberLabels {
            group: group.to_owned(),
            member: member.to_owned(),
        });
        Arc::new(CallMetrics { calls, latency })
    }
}

/// Where the calls of one member in one group are counted.
#[derive(Debug, Clone)]
pub struct CallMetrics {
    /// One counter per [`CallOutcome`], in the order of `CallOutcome::ALL`.
    calls: [Counter; 6],
    latency: Histogram,
}

impl CallMetrics {
    /// Counts one settled call.
    pub fn record(&self, outcome: CallOutcome) {
        self.calls[outcome as usize].inc();
    }

    /// Records the latency of an answered call (see [`CallOutcome::is_answer`]).
    pub fn observe_latency(&self, elapsed: std::time::Duration) {
        self.latency.observe(elapsed.as_secs_f64());
    }
}

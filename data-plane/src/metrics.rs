//! The data plane's call metrics: counters and latency histograms that the
//! hot path records into, by group, member, tool and outcome. They are
//! served at `/metrics` with the state the routing table holds
//! (`endpoint::metrics`).
//!
//! Events (calls and their latency) are counted where a call settles
//! (`route::member::InFlightCall`) through [`CallMetrics`] handles. Each
//! member of each group (and each member for calls that name its server)
//! has a [`MemberCalls`]: its handles by tool, made when the routing table
//! is built and again when a member's tool list changes, read lock-free.
//! A call costs one map lookup of its tool name, a few atomics and one
//! histogram lock: no label lookup and no allocation.
//!
//! The `tool` label is bounded by what members list: a tool some member of
//! the group (or the server, for calls that name it) lists has its own
//! series; any other name counts as [`OTHER_TOOL`], so a client naming
//! tools at random adds no series; requests that call no tool (the
//! handshake, `tools/list`, notifications, streams of `/groups/{g}/mcp`)
//! count under [`NO_TOOL`].
//!
//! The series are encoded from the routing table in force at each scrape,
//! so those of members, groups and tools the table no longer has are gone
//! with them, while a member that stays keeps its [`MemberCalls`] (and its
//! counts) across snapshots. A series shows once it has counted a call.
//!
//! Every data plane has its own registry (no process-global recorder),
//! so several data planes in one process keep their numbers apart.
//! Labels carry server and group ids from the config and the names of
//! tools members list, never endpoints or arguments.

// Looked up on every call, by names from the config and the members:
// a fast seeded hash, not SipHash.
use foldhash::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

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

/// The `tool` label of a `tools/call` whose tool no member of its group
/// (or its server) lists, or one beyond [`MAX_TOOL_LABELS`].
pub(crate) const OTHER_TOOL: &str = "other";
/// The `tool` label of requests that call no tool.
pub(crate) const NO_TOOL: &str = "";

/// Most tools of one group (or server) with series of their own; the rest
/// count as [`OTHER_TOOL`]. Each costs a member seven series and a
/// histogram, so a member listing thousands of tools cannot flood the
/// scrape.
pub(crate) const MAX_TOOL_LABELS: usize = 256;

/// Where calls of one member, through one group, of one tool are counted.
#[derive(Debug)]
pub struct CallMetrics {
    /// One counter per [`CallOutcome`], in the order of `CallOutcome::ALL`.
    calls: [Counter; 6],
    latency: Histogram,
}

impl Default for CallMetrics {
    fn default() -> Self {
        Self {
            calls: Default::default(),
            latency: Histogram::new(LATENCY_BUCKETS),
        }
    }
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

    /// Whether it has counted a call: only then are its series shown.
    fn is_used(&self) -> bool {
        self.calls.iter().any(|c| c.get() > 0)
    }
}

/// The calls of one member through one group (or naming its server), by
/// tool. Kept across snapshots while the member stays in the group, so
/// its counts carry on.
#[derive(Debug, Default)]
pub struct MemberCalls {
    by_tool: ArcSwap<ToolCalls>,
}

/// A tool label and its handle.
type ToolSeries = (Box<str>, Arc<CallMetrics>);

/// The handles of one member by tool label, replaced whole when the
/// tools listed change.
#[derive(Debug, Default)]
struct ToolCalls {
    /// Each tool listed, by name.
    listed: HashMap<Box<str>, Arc<CallMetrics>>,
    /// Calls of any other tool.
    other: Arc<CallMetrics>,
    /// Requests that call no tool.
    none: Arc<CallMetrics>,
}

impl MemberCalls {
    /// Where a request that calls `tool` (or none) is counted. On the hot
    /// path: one lock-free load and one lookup; the caller keeps the handle
    /// until the call settles.
    pub fn of(&self, tool: Option<&str>) -> Arc<CallMetrics> {
        let calls = self.by_tool.load();
        match tool {
            None => calls.none.clone(),
            Some(tool) => calls.listed.get(tool).unwrap_or(&calls.other).clone(),
        }
    }

    /// Gives each of `tools` (distinct names) its own series from now on,
    /// and drops those of tools no longer among them; the handles of tools
    /// that stay, and of the other calls, keep their counts. Names that are
    /// labels of their own ([`OTHER_TOOL`], [`NO_TOOL`]) count as other
    /// tools. Called when a table is built and when tool lists change,
    /// never per call; callers take turns (the routing table's relabel
    /// lock), so no update is lost.
    pub fn label_tools(&self, tools: &[&str]) {
        let wanted: Vec<&str> = tools
            .iter()
            .copied()
            .filter(|t| *t != OTHER_TOOL && *t != NO_TOOL)
            .collect();
        let old = self.by_tool.load_full();
        let unchanged =
            wanted.len() == old.listed.len() && wanted.iter().all(|t| old.listed.contains_key(*t));
        if unchanged {
            return;
        }
        let listed = wanted
            .iter()
            .map(|&t| (Box::from(t), old.listed.get(t).cloned().unwrap_or_default()))
            .collect();
        self.by_tool.store(Arc::new(ToolCalls {
            listed,
            other: old.other.clone(),
            none: old.none.clone(),
        }));
    }

    /// Each tool label and its handle that has counted a call, in the
    /// order they are shown: no tool, the listed tools by name, other.
    fn used(&self) -> Vec<ToolSeries> {
        let calls = self.by_tool.load();
        let mut listed: Vec<_> = calls
            .listed
            .iter()
            .filter(|(_, m)| m.is_used())
            .map(|(t, m)| (t.clone(), m.clone()))
            .collect();
        listed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        std::iter::once((Box::from(NO_TOOL), calls.none.clone()))
            .chain(listed)
            .chain(std::iter::once((
                Box::from(OTHER_TOOL),
                calls.other.clone(),
            )))
            .filter(|(_, m)| m.is_used())
            .collect()
    }
}

/// The `hangar_calls` and `hangar_call_duration_seconds` families of the
/// members in `calls`, each given with its group (`""` for calls that name
/// the server) and member id, in the order to show them.
pub(crate) fn encode_calls(
    encoder: &mut DescriptorEncoder<'_>,
    calls: &[(&str, &str, &MemberCalls)],
) -> Result<(), std::fmt::Error> {
    let series: Vec<(&str, &str, Vec<ToolSeries>)> = calls
        .iter()
        .map(|(group, member, calls)| (*group, *member, calls.used()))
        .filter(|(_, _, used)| !used.is_empty())
        .collect();
    let help = "Requests sent to a member, by group (empty when the server was named directly), tool (empty for requests that call none; other for a tool no member lists) and outcome";
    let mut family = encoder.encode_descriptor("hangar_calls", help, None, MetricType::Counter)?;
    for (group, member, by_tool) in &series {
        for (tool, metrics) in by_tool {
            for outcome in CallOutcome::ALL {
                let labels = [
                    ("group", *group),
                    ("member", *member),
                    ("tool", &**tool),
                    ("outcome", outcome.as_str()),
                ];
                metrics.calls[outcome as usize].encode(family.encode_family(&labels)?)?;
            }
        }
    }
    let help = "Time until a member's complete answer, of calls with outcome ok or rejected";
    let mut family = encoder.encode_descriptor(
        "hangar_call_duration_seconds",
        help,
        None,
        MetricType::Histogram,
    )?;
    for (group, member, by_tool) in &series {
        for (tool, metrics) in by_tool {
            let labels = [("group", *group), ("member", *member), ("tool", &**tool)];
            metrics.latency.encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;

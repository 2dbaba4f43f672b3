//! `GET /metrics`: the data plane's Prometheus registry, read from the
//! routing table in force when Prometheus scrapes: the call counters and
//! latency histograms its members hold ([`crate::metrics`]) and the state
//! (health, calls in flight, the config in force), so keeping the state
//! costs the hot path nothing, and the series of members, groups and
//! tools a snapshot dropped are gone with them.
//!
//! Every data plane has its own [`Metrics`] (no process-global recorder),
//! so several data planes in one process keep their numbers apart.

use std::sync::Arc;

use hangar_balance::GroupState;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::route::member::Member;
use crate::route::rate::{Limit, RateLimits};
use crate::route::table::{GroupRoute, Origin, Routes};

/// A data plane's registry, as served at `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
}

impl Metrics {
    /// The metrics of the data plane whose routing table is `routes`.
    pub fn new(routes: Arc<Routes>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(TableCollector { routes }));
        Self {
            registry: Arc::new(registry),
        }
    }
}

/// `GET /metrics`. Not behind the MCP request guard: a scraper names the
/// data plane however its service discovery does (the guard would refuse
/// such a `Host`), and the metrics carry no secrets: ids from the config
/// and numbers.
pub(crate) fn router(metrics: Arc<Metrics>) -> axum::Router {
    hangar_runtime::metrics::router(metrics.registry.clone())
}

/// Reads the routing table in force at scrape time.
#[derive(Debug)]
struct TableCollector {
    routes: Arc<Routes>,
}

impl Collector for TableCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let table = self.routes.load();
        let mut members: Vec<_> = table.members.values().collect();
        members.sort_by(|a, b| a.id().cmp(b.id()));
        let mut groups: Vec<_> = table.groups.values().collect();
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        let gauge = |v: u64| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));

        let e = &mut encoder;
        calls(e, &groups, &members)?;
        let by_member = ("member", members.as_slice());
        per_label(
            e,
            "hangar_member_healthy",
            "Whether the member is in rotation on this data plane (1) or not (0).",
            by_member,
            |m| gauge(m.is_healthy().into()),
        )?;
        per_label(
            e,
            "hangar_member_consecutive_failures",
            "Failed probes or calls of the member in a row.",
            by_member,
            |m| gauge(m.consecutive_failures().into()),
        )?;
        per_label(
            e,
            "hangar_member_rotation_changes",
            "Times the member entered or left rotation.",
            by_member,
            |m| ConstCounter::new(m.rotation_changes()),
        )?;
        per_label(
            e,
            "hangar_calls_in_flight",
            "Requests sent to the member that have not settled yet.",
            by_member,
            |m| gauge(m.in_flight().into()),
        )?;
        let by_group = ("group", groups.as_slice());
        per_label(
            e,
            "hangar_group_healthy_members",
            "Members of the group in rotation.",
            by_group,
            |g| gauge(g.healthy_count() as u64),
        )?;
        group_states(e, &groups)?;
        per_label(
            e,
            "hangar_group_circuit_open",
            "Whether the group's circuit breaker refuses calls (1) or not (0).",
            by_group,
            |g| gauge(g.breaker.view().open.into()),
        )?;
        per_label(
            e,
            "hangar_group_circuit_opened",
            "Times the group's circuit breaker opened since its failure_threshold was set.",
            by_group,
            |g| ConstCounter::new(g.breaker.view().opened),
        )?;
        per_label(
            e,
            "hangar_group_ejected_members",
            "Members of the group ejected by outlier detection now.",
            by_group,
            |g| gauge(g.ejected().len() as u64),
        )?;
        per_label(
            e,
            "hangar_group_outlier_ejections",
            "Times outlier detection ejected a member of the group.",
            by_group,
            |g| ConstCounter::new(g.outliers.as_ref().map_or(0, |o| o.ejections())),
        )?;
        rate_limits(e, &table.rate)?;
        let sources = [Origin::ControlPlane, Origin::Cache, Origin::None];
        let by_source = ("source", sources.as_slice());
        per_label(
            e,
            "hangar_config_source",
            "Where the config in force came from: 1 for its source, 0 for the others.",
            by_source,
            |o| gauge((*o == table.origin).into()),
        )?;
        let help = "Version of the config in force (0 = none yet).";
        let version =
            e.encode_descriptor("hangar_config_version", help, None, MetricType::Gauge)?;
        gauge(table.version).encode(version)
    }
}

/// The call counters and latency of every group's members (in the order
/// given, members in config order), then of the servers named directly.
fn calls(
    e: &mut DescriptorEncoder<'_>,
    groups: &[&GroupRoute],
    members: &[&Arc<Member>],
) -> Result<(), std::fmt::Error> {
    let through_groups = groups.iter().flat_map(|g| {
        g.members
            .iter()
            .map(|m| (g.id.as_str(), m.member.id(), &*m.metrics))
    });
    let direct = members.iter().map(|m| ("", m.id(), &**m.direct_metrics()));
    let all: Vec<_> = through_groups.chain(direct).collect();
    crate::metrics::encode_calls(e, &all)
}

/// Each group's state on this data plane: 1 for the one it is in, 0 for
/// the others, so a panel or an alert can match on the `state` label.
fn group_states(
    e: &mut DescriptorEncoder<'_>,
    groups: &[&GroupRoute],
) -> Result<(), std::fmt::Error> {
    if groups.is_empty() {
        return Ok(());
    }
    const STATES: [GroupState; 4] = [
        GroupState::Ready,
        GroupState::Partial,
        GroupState::Unavailable,
        GroupState::CircuitOpen,
    ];
    let help = "The group's state on this data plane (ready, partial, unavailable below min_healthy, circuit_open): 1 for the one it is in, 0 for the others.";
    let mut family = e.encode_descriptor("hangar_group_state", help, None, MetricType::Gauge)?;
    for group in groups {
        let now = group.state();
        for state in STATES {
            let labels = [("group", group.id.as_str()), ("state", state.as_str())];
            ConstGauge::new(i64::from(state == now)).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// Each rate limit's counts, labelled by its id and scope, and the share
/// of the bucket all callers share on this data plane.
fn rate_limits(e: &mut DescriptorEncoder<'_>, rates: &RateLimits) -> Result<(), std::fmt::Error> {
    let mut limits: Vec<&Arc<Limit>> = rates.iter().collect();
    if limits.is_empty() {
        return Ok(());
    }
    limits.sort_by(|a, b| a.id.cmp(&b.id));
    type Count = fn(hangar_rate::Usage) -> u64;
    let counters: [(&str, &str, Count); 2] = [
        (
            "hangar_rate_limit_admitted",
            "Calls a rate limit let through.",
            |u| u.admitted,
        ),
        (
            "hangar_rate_limit_refused",
            "Calls a rate limit refused (429 or RateLimitExceeded), by limit and scope.",
            |u| u.refused,
        ),
    ];
    for (name, help, count) in counters {
        let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
        for limit in &limits {
            let labels = [("limit", limit.id.as_str()), ("scope", limit.scope())];
            ConstCounter::new(count(limit.limiter.usage()))
                .encode(family.encode_family(&labels)?)?;
        }
    }
    let help = "Calls a second the bucket all callers share refills at on this data plane: its share of a fleet limit, or the whole of a data-plane one.";
    let mut family =
        e.encode_descriptor("hangar_rate_limit_local_rps", help, None, MetricType::Gauge)?;
    for limit in limits.iter().filter(|l| l.limiter.local().is_some()) {
        let rps = limit.limiter.local().map_or(0.0, |r| r.rps);
        let labels = [("limit", limit.id.as_str()), ("scope", limit.scope())];
        ConstGauge::new(rps).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Something a per-label metric is read from, and its label value.
trait Labelled {
    fn label(&self) -> &str;
}

impl Labelled for &Arc<Member> {
    fn label(&self) -> &str {
        self.id()
    }
}

impl Labelled for &GroupRoute {
    fn label(&self) -> &str {
        &self.id
    }
}

impl Labelled for Origin {
    fn label(&self) -> &str {
        self.as_str()
    }
}

/// One metric family with one series per item, labelled `label="item"`.
fn per_label<T: Labelled, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &'static str,
    help: &str,
    (label, items): (&'static str, &[T]),
    metric: impl Fn(&T) -> M,
) -> Result<(), std::fmt::Error> {
    let Some(first) = items.first() else {
        return Ok(());
    };
    let kind = metric(first).metric_type();
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for item in items {
        metric(item).encode(family.encode_family(&[(label, item.label())])?)?;
    }
    Ok(())
}

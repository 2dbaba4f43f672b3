//! The control plane's Prometheus metrics, served at `/metrics` on the gRPC
//! listener (the server also accepts HTTP/1.1 for it).
//!
//! `/metrics` carries no authentication, whatever guards the gRPC services:
//! scrapers rarely hold API tokens, and the page holds nothing secret, only
//! counts, durations and versions (no node ids, endpoints or config text).
//!
//! Events (applies, snapshots sent, ACK latency, NACKs) are counted where
//! they happen; the fleet by state and the config version are read when
//! Prometheus scrapes. Every control plane has its own [`Metrics`], so
//! several in one process keep their numbers apart.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use crate::fleet::{Fleet, PlaneState};
use crate::state::ConfigState;

/// Upper bounds of the push latency buckets, in seconds: a data plane on
/// the same host ACKs within a millisecond, one across a slow link or
/// under load within seconds.
const PUSH_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How an apply ended; the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ApplyResult {
    /// A new version was stored and pushed.
    Applied,
    /// The config equals the one in force; no version was made.
    Unchanged,
    /// The config did not validate; nothing changed.
    Invalid,
    /// It would have removed every server, unasked; nothing changed.
    Refused,
    /// The store could not write it; nothing changed.
    Failed,
    /// Another replica stored a config first; nothing changed here.
    Conflict,
}

impl ApplyResult {
    const ALL: [Self; 6] = [
        Self::Applied,
        Self::Unchanged,
        Self::Invalid,
        Self::Refused,
        Self::Failed,
        Self::Conflict,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Invalid => "invalid",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::Conflict => "conflict",
        }
    }
}

impl EncodeLabelValue for ApplyResult {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ApplyLabels {
    result: ApplyResult,
}

/// A control plane's metrics, as served at `/metrics`.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    /// One counter per [`ApplyResult`], in the order of `ApplyResult::ALL`.
    applies: [Counter; 6],
    snapshots_sent: Counter,
    nacks: Counter,
    push: Histogram,
}

// === impl Metrics ===

impl Metrics {
    /// The metrics of the control plane holding `state` and `fleet`.
    pub(crate) fn new(state: Arc<ConfigState>, fleet: Arc<Fleet>) -> Self {
        let mut registry = Registry::default();
        let family = Family::<ApplyLabels, Counter>::default();
        // Every result shows from the start, so rates work before the first of each.
        let applies =
            ApplyResult::ALL.map(|result| family.get_or_create_owned(&ApplyLabels { result }));
        let snapshots_sent = Counter::default();
        let nacks = Counter::default();
        let push = Histogram::new(PUSH_BUCKETS);
        registry.register(
            "hangar_config_applies",
            "Applies received, by result",
            family,
        );
        registry.register(
            "hangar_snapshots_sent",
            "Snapshots sent to data planes",
            snapshots_sent.clone(),
        );
        registry.register(
            "hangar_snapshot_nacks",
            "Snapshots data planes rejected",
            nacks.clone(),
        );
        registry.register(
            "hangar_snapshot_push_duration_seconds",
            "Time from sending a snapshot to a data plane until it acknowledged that version",
            push.clone(),
        );
        registry.register_collector(Box::new(StateCollector { state, fleet }));
        Self {
            registry: Arc::new(registry),
            applies,
            snapshots_sent,
            nacks,
            push,
        }
    }

    /// Counts one apply.
    pub(crate) fn applied(&self, result: ApplyResult) {
        self.applies[result as usize].inc();
    }

    /// Counts a snapshot sent; returns when, for [`Metrics::acked`].
    pub(crate) fn snapshot_sent(&self) -> Instant {
        self.snapshots_sent.inc();
        Instant::now()
    }

    /// Records the time from a snapshot's send until its ACK.
    pub(crate) fn acked(&self, sent: Instant) {
        let elapsed: Duration = sent.elapsed();
        self.push.observe(elapsed.as_secs_f64());
    }

    /// Counts a NACK.
    pub(crate) fn nacked(&self) {
        self.nacks.inc();
    }
}

/// `GET /metrics`, to be served beside the gRPC services.
pub(crate) fn router(metrics: Arc<Metrics>) -> axum::Router {
    hangar_runtime::metrics::router(metrics.registry.clone())
}

/// Reads the config in force and the fleet at scrape time.
#[derive(Debug)]
struct StateCollector {
    state: Arc<ConfigState>,
    fleet: Arc<Fleet>,
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let version = self.state.current().version;
        let now = Instant::now();
        let expiry = self.fleet.expiry();
        let mut by_state = [
            (PlaneState::Connected, 0u64),
            (PlaneState::Stale, 0),
            (PlaneState::Disconnected, 0),
        ];
        let mut behind = 0u64;
        for plane in self.fleet.planes() {
            let state = plane.state(now, expiry);
            if let Some((_, count)) = by_state.iter_mut().find(|(s, _)| *s == state) {
                *count += 1;
            }
            if state == PlaneState::Connected && plane.acked_version != version {
                behind += 1;
            }
        }
        let gauge = |v: u64| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));

        let help = "Data planes the control plane knows, by stream state.";
        let mut family =
            encoder.encode_descriptor("hangar_data_planes", help, None, MetricType::Gauge)?;
        for (state, count) in by_state {
            let labels = [("state", state.as_str())];
            gauge(count).encode(family.encode_family(&labels)?)?;
        }
        let help = "Connected data planes that have not acknowledged the config version in force.";
        gauge(behind).encode(encoder.encode_descriptor(
            "hangar_data_planes_behind",
            help,
            None,
            MetricType::Gauge,
        )?)?;
        let help = "Version of the config in force (0 = none applied yet).";
        gauge(version).encode(encoder.encode_descriptor(
            "hangar_config_version",
            help,
            None,
            MetricType::Gauge,
        )?)
    }
}

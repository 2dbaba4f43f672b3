//! Health across replicas: each replica on etcd shares what its data planes
//! last reported, and `status` on any replica rolls up all of them.
//!
//! A replica writes `{prefix}/health/{replica-id}/{node-id}` for each data
//! plane it knows, on a lease as long as the data-plane expiry, whenever
//! its fleet changes (at most once a second) and at least three times per
//! expiry. A replica that dies stops renewing, so its reports vanish when
//! the lease runs out, just as its data planes would expire locally. Ages
//! travel as "silent for N ms" rather than instants, which mean nothing on
//! another machine.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hangar_proto::v1::{GroupHealth, LimitUsage, MemberHealth};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::etcd::EtcdStore;
use crate::fleet::{DataPlane, Fleet};
use hangar_runtime::error_chain;

/// How long `status` waits for other replicas' reports before it answers
/// with this replica's alone: status must keep answering during an outage.
const READ_PATIENCE: Duration = Duration::from_millis(500);
/// Fleet changes closer together than this are shared as one write.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// This replica's view of the other replicas' data planes.
#[derive(Debug, Clone)]
pub(crate) struct Peers {
    store: EtcdStore,
    replica: String,
}

// === impl Peers ===

impl Peers {
    /// Peers of `replica` (a name unique among the replicas) in `store`.
    pub(crate) fn new(store: EtcdStore, replica: String) -> Self {
        Self { store, replica }
    }

    /// The data planes the other replicas reported, as of now; none when
    /// etcd does not answer in time (logged).
    pub(crate) async fn planes(&self) -> Vec<DataPlane> {
        let records = match self.store.other_health(&self.replica, READ_PATIENCE).await {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "status without other replicas' data planes");
                return Vec::new();
            }
        };
        let now = Instant::now();
        let read = hangar_runtime::unix_ms();
        records
            .iter()
            .filter_map(|value| match serde_json::from_slice::<SharedPlane>(value) {
                Ok(shared) => Some(shared.into_plane(now, read)),
                Err(err) => {
                    tracing::warn!(error = %err, "ignoring a health report in etcd");
                    None
                }
            })
            .collect()
    }

    /// Shares this replica's data planes until `shutdown`.
    pub(crate) async fn share(self, fleet: Arc<Fleet>, shutdown: CancellationToken) {
        let ttl = fleet.expiry();
        let mut changes = fleet.changes();
        let mut lease = None;
        let mut failing = false;
        loop {
            let now = Instant::now();
            let written = hangar_runtime::unix_ms();
            let records = fleet
                .planes()
                .iter()
                .map(|plane| {
                    let shared = SharedPlane::of(plane, now, written);
                    let value = serde_json::to_vec(&shared).expect("SharedPlane always serializes");
                    (plane.node_id.clone(), value)
                })
                .collect();
            match self
                .store
                .share_health(&self.replica, records, ttl, lease)
                .await
            {
                Ok(new) => {
                    lease = Some(new);
                    if failing {
                        tracing::info!("sharing data-plane health again");
                        failing = false;
                    }
                }
                Err(err) => {
                    if !failing {
                        tracing::warn!(error = %error_chain(&err), "cannot share data-plane health; retrying");
                    }
                    failing = true;
                }
            }
            let next = async {
                tokio::time::sleep(MIN_INTERVAL).await;
                tokio::select! {
                    _ = changes.changed() => {}
                    () = tokio::time::sleep(ttl / 3) => {}
                }
            };
            tokio::select! {
                () = next => {}
                () = shutdown.cancelled() => break,
            }
            changes.borrow_and_update();
        }
        // A replica that stops takes its reports with it, so the data
        // planes failing over elsewhere are not listed twice until expiry.
        if let Some(lease) = lease {
            self.store.revoke(lease).await;
        }
    }
}

/// Every data plane of the fleet, ordered by node id: this replica's, and
/// with etcd those the other replicas reported. A data plane that moved
/// between replicas can be reported by both for a moment: this replica's
/// view wins, then the freshest of the others.
pub(crate) async fn every_plane(fleet: &Fleet, peers: Option<&Peers>) -> Vec<DataPlane> {
    let mut planes = fleet.planes();
    if let Some(peers) = peers {
        let mut others = peers.planes().await;
        others.sort_by_key(|p| std::cmp::Reverse(p.last_seen));
        for plane in others {
            if !planes.iter().any(|p| p.node_id == plane.node_id) {
                planes.push(plane);
            }
        }
        planes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    }
    planes
}

/// A data plane as written to etcd.
#[derive(Debug, Serialize, Deserialize)]
struct SharedPlane {
    node_id: String,
    address: Option<std::net::SocketAddr>,
    listen_addr: String,
    labels: HashMap<String, String>,
    build_version: String,
    /// The data plane's process (absent in records of older replicas).
    #[serde(default)]
    instance: String,
    held_version: u64,
    connected: bool,
    /// When the report was written (ms since the Unix epoch), so that the
    /// reports of a replica that died age while its lease runs out.
    written_unix_ms: u64,
    connected_ms: u64,
    silent_ms: u64,
    acked_version: u64,
    last_nack: Option<String>,
    health: Vec<SharedMember>,
    /// Groups whose circuit breaker is open on the data plane (absent in
    /// records of older replicas).
    #[serde(default)]
    circuits_open: Vec<String>,
    /// Members ejected by outlier detection, by group (absent in records
    /// of older replicas).
    #[serde(default)]
    ejected: BTreeMap<String, Vec<String>>,
    /// Where each group's members disagree on tools (absent in records of
    /// older replicas).
    #[serde(default)]
    tool_warnings: BTreeMap<String, Vec<String>>,
    /// Rate limit traffic, by limit id (absent in records of older
    /// replicas, and before the data plane's first report).
    #[serde(default)]
    limits: Option<Vec<SharedUsage>>,
}

/// [`LimitUsage`] as written to etcd.
#[derive(Debug, Serialize, Deserialize)]
struct SharedUsage {
    limit: String,
    offered_rps: f64,
    admitted_rps: f64,
    refused_rps: f64,
    local_rps: f64,
    local_burst: f64,
    fleet: bool,
}

/// [`MemberHealth`] as written to etcd.
#[derive(Debug, Serialize, Deserialize)]
struct SharedMember {
    server_id: String,
    healthy: bool,
    consecutive_failures: u32,
    calls: u64,
    errors: u64,
    in_flight: u32,
    p50_ms: f64,
    p99_ms: f64,
    last_error: String,
    /// Copies of a server with replicas, and those in rotation (absent in
    /// records of older replicas).
    #[serde(default)]
    copies: u32,
    #[serde(default)]
    copies_in_rotation: u32,
}

// === impl SharedPlane ===

impl SharedPlane {
    fn of(plane: &DataPlane, now: Instant, written_unix_ms: u64) -> Self {
        let ms = |since: Instant| {
            u64::try_from(now.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX)
        };
        Self {
            node_id: plane.node_id.clone(),
            address: plane.address,
            listen_addr: plane.listen_addr.clone(),
            labels: plane.labels.clone(),
            build_version: plane.build_version.clone(),
            instance: plane.instance.clone(),
            held_version: plane.held_version,
            connected: plane.connected,
            written_unix_ms,
            connected_ms: ms(plane.connected_at),
            silent_ms: ms(plane.last_seen),
            acked_version: plane.acked_version,
            last_nack: plane.last_nack.clone(),
            health: plane
                .health
                .values()
                .map(|m| SharedMember {
                    server_id: m.server_id.clone(),
                    healthy: m.healthy,
                    consecutive_failures: m.consecutive_failures,
                    calls: m.calls,
                    errors: m.errors,
                    in_flight: m.in_flight,
                    p50_ms: m.p50_ms,
                    p99_ms: m.p99_ms,
                    last_error: m.last_error.clone(),
                    copies: m.copies,
                    copies_in_rotation: m.copies_in_rotation,
                })
                .collect(),
            circuits_open: plane
                .groups
                .values()
                .filter(|g| g.circuit_open)
                .map(|g| g.group_id.clone())
                .collect(),
            ejected: plane
                .groups
                .values()
                .filter(|g| !g.ejected.is_empty())
                .map(|g| (g.group_id.clone(), g.ejected.clone()))
                .collect(),
            tool_warnings: plane
                .groups
                .values()
                .filter(|g| !g.tool_warnings.is_empty())
                .map(|g| (g.group_id.clone(), g.tool_warnings.clone()))
                .collect(),
            limits: plane.limits.as_ref().map(|limits| {
                limits
                    .values()
                    .map(|l| SharedUsage {
                        limit: l.limit.clone(),
                        offered_rps: l.offered_rps,
                        admitted_rps: l.admitted_rps,
                        refused_rps: l.refused_rps,
                        local_rps: l.local_rps,
                        local_burst: l.local_burst,
                        fleet: l.fleet,
                    })
                    .collect()
            }),
        }
    }

    /// The plane as of `now`, read at `read_unix_ms`. Clocks of replicas
    /// are assumed to agree to well within the expiry; a report from the
    /// future counts as just written.
    fn into_plane(self, now: Instant, read_unix_ms: u64) -> DataPlane {
        let since_written = read_unix_ms.saturating_sub(self.written_unix_ms);
        let ago = |ms: u64| {
            now.checked_sub(Duration::from_millis(ms.saturating_add(since_written)))
                .unwrap_or(now)
        };
        let health: BTreeMap<String, MemberHealth> = self
            .health
            .into_iter()
            .map(|m| {
                let member = MemberHealth {
                    server_id: m.server_id.clone(),
                    healthy: m.healthy,
                    consecutive_failures: m.consecutive_failures,
                    calls: m.calls,
                    errors: m.errors,
                    in_flight: m.in_flight,
                    p50_ms: m.p50_ms,
                    p99_ms: m.p99_ms,
                    last_error: m.last_error,
                    copies: m.copies,
                    copies_in_rotation: m.copies_in_rotation,
                };
                (m.server_id, member)
            })
            .collect();
        let mut groups: BTreeMap<String, GroupHealth> = BTreeMap::new();
        fn group(groups: &mut BTreeMap<String, GroupHealth>, id: String) -> &mut GroupHealth {
            groups.entry(id.clone()).or_insert_with(|| GroupHealth {
                group_id: id,
                ..GroupHealth::default()
            })
        }
        for id in self.circuits_open {
            group(&mut groups, id).circuit_open = true;
        }
        for (id, members) in self.ejected {
            group(&mut groups, id).ejected = members;
        }
        for (id, warnings) in self.tool_warnings {
            group(&mut groups, id).tool_warnings = warnings;
        }
        DataPlane {
            node_id: self.node_id,
            address: self.address,
            listen_addr: self.listen_addr,
            labels: self.labels,
            build_version: self.build_version,
            instance: self.instance,
            held_version: self.held_version,
            connected_at: ago(self.connected_ms),
            connected: self.connected,
            last_seen: ago(self.silent_ms),
            acked_version: self.acked_version,
            last_nack: self.last_nack,
            health,
            groups,
            limits: self.limits.map(|limits| {
                limits
                    .into_iter()
                    .map(|l| {
                        let usage = LimitUsage {
                            limit: l.limit.clone(),
                            offered_rps: l.offered_rps,
                            admitted_rps: l.admitted_rps,
                            refused_rps: l.refused_rps,
                            local_rps: l.local_rps,
                            local_burst: l.local_burst,
                            fleet: l.fleet,
                        };
                        (l.limit, usage)
                    })
                    .collect()
            }),
            // Never registered in this replica's fleet, so no stream's
            // messages are matched against it.
            connection: u64::MAX,
        }
    }
}

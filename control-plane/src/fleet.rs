//! The data planes and what they last told us.
//!
//! Each data-plane stream registers itself here with a connection id. A data
//! plane that reconnects under the same node id replaces its old entry; the
//! old stream's late messages are ignored because its connection id no
//! longer matches. A data plane whose stream ended stays listed as
//! `disconnected` until it has been silent for the expiry, then it is
//! forgotten. Only connected data planes that reported within the expiry
//! count in the health rollup; their member health is kept tallied per
//! server (`tally`) as reports come, so that what the fleet sees failing is
//! read from counts rather than from every data plane's last report.

mod tally;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hangar_proto::v1::{GroupHealth, HealthReport, Hello, LimitUsage, MemberHealth};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use self::tally::{HealthTally, same_rotation};

/// Identifies one stream of one data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connection {
    /// The data plane's node id.
    pub node_id: String,
    id: u64,
}

/// A second process asked to join under the node id of a data plane that
/// is connected and reporting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "node id '{node_id}' is in use by another data plane, connected{}: give each data plane its own --node-id",
    address.map(|a| format!(" from {a}")).unwrap_or_default()
)]
pub(crate) struct NodeIdInUse {
    /// The node id.
    pub node_id: String,
    /// Where the data plane holding it connected from.
    pub address: Option<SocketAddr>,
}

/// Where a data plane stands, as `hangarctl get dataplanes` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlaneState {
    /// Stream open and reporting.
    Connected,
    /// Stream open, but silent for longer than the expiry.
    Stale,
    /// Stream closed; forgotten after the expiry.
    Disconnected,
}

impl PlaneState {
    /// The name used in status output.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Stale => "stale",
            Self::Disconnected => "disconnected",
        }
    }
}

/// What the control plane knows about one data plane.
#[derive(Debug, Clone)]
pub(crate) struct DataPlane {
    /// Node id from the data plane's hello.
    pub node_id: String,
    /// Peer address of the stream.
    pub address: Option<SocketAddr>,
    /// Address the data plane serves MCP on, as it said in its hello.
    pub listen_addr: String,
    /// Labels from the hello.
    pub labels: HashMap<String, String>,
    /// Build version from the hello.
    pub build_version: String,
    /// The process's instance id from the hello (empty from older data
    /// planes).
    pub instance: String,
    /// Version the data plane held when it connected.
    pub held_version: u64,
    /// When the stream opened.
    pub connected_at: Instant,
    /// Whether the stream is still open.
    pub connected: bool,
    /// Last message of any kind on the stream.
    pub last_seen: Instant,
    /// Last version the data plane acknowledged (0 = none).
    pub acked_version: u64,
    /// Reason of the last NACK, if the data plane rejected a snapshot.
    pub last_nack: Option<String>,
    /// Member health from the last report, by server id.
    pub health: BTreeMap<String, MemberHealth>,
    /// Group breakers from the last report, by group id.
    pub groups: BTreeMap<String, GroupHealth>,
    /// Rate limit traffic from the last report, by limit id; `None` before
    /// the first report.
    pub limits: Option<BTreeMap<String, LimitUsage>>,
    pub(crate) connection: u64,
}

impl DataPlane {
    /// The plane's state at `now` for an expiry of `expiry`.
    pub(crate) fn state(&self, now: Instant, expiry: Duration) -> PlaneState {
        if !self.connected {
            PlaneState::Disconnected
        } else if now.saturating_duration_since(self.last_seen) > expiry {
            PlaneState::Stale
        } else {
            PlaneState::Connected
        }
    }
}

/// A snapshot a data plane rejected, as the status page lists it.
#[derive(Debug, Clone)]
pub(crate) struct Nack {
    /// The data plane's node id.
    pub node_id: String,
    /// The version it rejected.
    pub version: u64,
    /// Why, in its words (cut at [`NACK_REASON_CHARS`]).
    pub reason: String,
    /// When the NACK came.
    pub at: Instant,
}

/// NACKs kept for the status page, newest first; older ones are dropped.
pub(crate) const RECENT_NACKS: usize = 20;
/// Characters of a NACK's reason kept in that list: enough to act on,
/// while a data plane cannot make the control plane hold megabytes.
pub(crate) const NACK_REASON_CHARS: usize = 1024;

/// Registry of data planes.
#[derive(Debug)]
pub(crate) struct Fleet {
    planes: Mutex<Planes>,
    next_connection: AtomicU64,
    expiry: Duration,
    /// Bumped on every change a status watcher should see.
    changes: watch::Sender<u64>,
    /// `unhealthy_everywhere` as of the last change of the tally: every
    /// stream of a push reads it, so it is derived once, not per stream.
    unhealthy: Mutex<Arc<HashSet<String>>>,
    /// More than this share of the data planes that report a server, and
    /// at least [`MIN_FAILING_PLANES`], must see it failing to eject it
    /// fleet-wide.
    quorum: f64,
    /// The servers out of rotation fleet-wide; streams re-send the
    /// snapshot when it changes.
    ejected: watch::Sender<Arc<BTreeSet<String>>>,
    /// Bumped on every health report, for rate limit shares that follow
    /// the demand reports carry.
    reports: watch::Sender<u64>,
    /// The last [`RECENT_NACKS`] NACKs of this control plane's streams,
    /// newest first: a data plane's own row keeps only its last one, and
    /// forgets it at its next ACK.
    nacks: Mutex<VecDeque<Nack>>,
}

/// The data planes, and the health of those that count.
#[derive(Debug, Default)]
struct Planes {
    by_node: BTreeMap<String, DataPlane>,
    /// The data planes whose health is in `tally` (connected, and heard
    /// from within the expiry as of the last sweep), by their last message
    /// and connection: the first entry is the first to go stale.
    counting: BTreeMap<(Instant, u64), String>,
    /// The member health of the counting data planes.
    tally: HealthTally,
}

impl Planes {
    /// Moves `plane` to `now` in `counting`; one that had stopped counting
    /// (silent past the expiry) counts again.
    fn touch(
        counting: &mut BTreeMap<(Instant, u64), String>,
        tally: &mut HealthTally,
        plane: &mut DataPlane,
        now: Instant,
    ) {
        let node = match counting.remove(&(plane.last_seen, plane.connection)) {
            Some(node) => node,
            None => {
                tally.add(&plane.health);
                plane.node_id.clone()
            }
        };
        plane.last_seen = now;
        counting.insert((now, plane.connection), node);
    }

    /// Takes `plane`'s health out of the tally if it counts.
    fn uncount(&mut self, plane: &DataPlane) {
        if self
            .counting
            .remove(&(plane.last_seen, plane.connection))
            .is_some()
        {
            self.tally.remove(&plane.health);
        }
    }

    /// Stops counting the data planes silent for longer than `expiry`.
    fn drop_stale(&mut self, now: Instant, expiry: Duration) {
        while let Some((&(seen, connection), _)) = self.counting.first_key_value() {
            if now.saturating_duration_since(seen) <= expiry {
                break;
            }
            let node = self.counting.pop_first().map(|(_, node)| node);
            if let Some(plane) = node.and_then(|node| self.by_node.get(&node))
                && plane.connection == connection
            {
                self.tally.remove(&plane.health);
            }
        }
    }
}

/// Data planes that must see a server failing before it is ejected for
/// every data plane: one alone never decides for the others.
pub(crate) const MIN_FAILING_PLANES: usize = 2;

// === impl Fleet ===

impl Fleet {
    /// An empty fleet; data planes silent for `expiry` stop counting.
    pub(crate) fn new(expiry: Duration) -> Self {
        Self {
            planes: Mutex::new(Planes::default()),
            next_connection: AtomicU64::new(0),
            expiry,
            changes: watch::Sender::new(0),
            unhealthy: Mutex::default(),
            quorum: 0.5,
            ejected: watch::Sender::new(Arc::default()),
            reports: watch::Sender::new(0),
            nacks: Mutex::default(),
        }
    }

    /// Sets the share of reporting data planes that must see a server
    /// failing to eject it fleet-wide (1 never ejects).
    pub(crate) fn with_quorum(mut self, quorum: f64) -> Self {
        self.quorum = quorum;
        self
    }

    /// The servers out of rotation fleet-wide, following changes.
    pub(crate) fn ejected(&self) -> watch::Receiver<Arc<BTreeSet<String>>> {
        self.ejected.subscribe()
    }

    /// Derives what the fleet's health says from the tally, if it changed,
    /// telling the streams when the servers out of rotation changed. Runs
    /// under the lock of `planes`, so two changes publish in their order.
    fn publish_health(&self, planes: &mut Planes) {
        if !planes.tally.take_changed() {
            return;
        }
        *self.unhealthy.lock() = Arc::new(planes.tally.unhealthy_everywhere());
        let ejected = planes.tally.ejected(self.quorum, MIN_FAILING_PLANES);
        self.ejected.send_if_modified(|current| {
            if **current == ejected {
                return false;
            }
            tracing::info!(servers = ?ejected, "servers out of rotation fleet-wide");
            *current = Arc::new(ejected);
            true
        });
    }

    /// How long a data plane may stay silent before it stops counting.
    pub(crate) fn expiry(&self) -> Duration {
        self.expiry
    }

    /// Follows health reports, every one of them.
    pub(crate) fn reports(&self) -> watch::Receiver<u64> {
        self.reports.subscribe()
    }

    /// Follows changes of the fleet (connects, ACKs, health flips, ...).
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Registers a new stream from a data plane. A data plane that
    /// reconnects (the same process) replaces its old entry; another
    /// process with the node id of a data plane that is connected and
    /// reporting is refused, so two never merge into one row.
    pub(crate) fn connect(
        &self,
        hello: &Hello,
        address: Option<SocketAddr>,
    ) -> Result<Connection, NodeIdInUse> {
        let now = Instant::now();
        let mut planes = self.planes.lock();
        if let Some(live) = planes.by_node.get(&hello.node_id).filter(|p| {
            p.state(now, self.expiry) == PlaneState::Connected
                && !p.instance.is_empty()
                && !hello.instance.is_empty()
                && p.instance != hello.instance
        }) {
            return Err(NodeIdInUse {
                node_id: hello.node_id.clone(),
                address: live.address,
            });
        }
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let plane = DataPlane {
            node_id: hello.node_id.clone(),
            address,
            listen_addr: hello.listen_addr.clone(),
            labels: hello.labels.clone(),
            build_version: hello.build_version.clone(),
            instance: hello.instance.clone(),
            held_version: hello.held_version,
            connected_at: now,
            connected: true,
            last_seen: now,
            acked_version: hello.held_version,
            last_nack: None,
            health: BTreeMap::new(),
            groups: BTreeMap::new(),
            limits: None,
            connection: id,
        };
        if let Some(old) = planes.by_node.insert(hello.node_id.clone(), plane) {
            planes.uncount(&old);
        }
        planes.counting.insert((now, id), hello.node_id.clone());
        self.publish_health(&mut planes);
        drop(planes);
        self.bump();
        Ok(Connection {
            node_id: hello.node_id.clone(),
            id,
        })
    }

    /// Marks a data plane whose stream ended.
    pub(crate) fn disconnect(&self, conn: &Connection) {
        let now = Instant::now();
        let mut planes = self.planes.lock();
        let plane = planes
            .by_node
            .get(&conn.node_id)
            .filter(|p| p.connection == conn.id)
            .cloned();
        let changed = plane.is_some();
        if let Some(plane) = plane {
            planes.uncount(&plane);
            if let Some(plane) = planes.by_node.get_mut(&conn.node_id) {
                plane.connected = false;
                plane.last_seen = now;
            }
        }
        planes.drop_stale(now, self.expiry);
        self.publish_health(&mut planes);
        drop(planes);
        if changed {
            self.bump();
        }
    }

    /// Records that the data plane applied `version`.
    pub(crate) fn ack(&self, conn: &Connection, version: u64) {
        self.update(conn, |p| {
            p.acked_version = version;
            p.last_nack = None;
            true
        });
    }

    /// Records that the data plane rejected `version`.
    pub(crate) fn nack(&self, conn: &Connection, version: u64, reason: String) {
        let at = Instant::now();
        self.update(conn, |p| {
            p.last_nack = Some(format!("version {version}: {reason}"));
            let mut nacks = self.nacks.lock();
            nacks.truncate(RECENT_NACKS - 1);
            nacks.push_front(Nack {
                node_id: p.node_id.clone(),
                version,
                reason: reason.chars().take(NACK_REASON_CHARS).collect(),
                at,
            });
            true
        });
    }

    /// The last NACKs of this control plane's streams, newest first.
    pub(crate) fn recent_nacks(&self) -> Vec<Nack> {
        self.nacks.lock().iter().cloned().collect()
    }

    /// Replaces the data plane's member health with a new report. Watchers
    /// hear of it only when health changed, not for every counter.
    pub(crate) fn report(&self, conn: &Connection, report: HealthReport) {
        // Built before the lock: every data plane reports, often.
        let health: BTreeMap<String, MemberHealth> = report
            .members
            .into_iter()
            .map(|m| (m.server_id.clone(), m))
            .collect();
        let groups: BTreeMap<String, GroupHealth> = report
            .groups
            .into_iter()
            .map(|g| (g.group_id.clone(), g))
            .collect();
        let limits: BTreeMap<String, LimitUsage> = report
            .limits
            .into_iter()
            .map(|l| (l.limit.clone(), l))
            .collect();
        let now = Instant::now();
        let mut planes = self.planes.lock();
        let changed = self.touch(&mut planes, conn, now, |p, tally| {
            let circuits_changed = p.groups.len() != groups.len()
                || p.groups.iter().any(|(id, old)| {
                    groups
                        .get(id)
                        .is_none_or(|new| new.circuit_open != old.circuit_open)
                });
            if !same_rotation(&p.health, &health) {
                tally.remove(&p.health);
                tally.add(&health);
            }
            let changed = !same_health(&p.health, &health) || circuits_changed;
            p.health = health;
            p.groups = groups;
            p.limits = Some(limits);
            changed
        });
        planes.drop_stale(now, self.expiry);
        self.publish_health(&mut planes);
        drop(planes);
        if changed {
            self.bump();
        }
        self.reports.send_modify(|n| *n += 1);
    }

    /// Forgets disconnected data planes silent for longer than the expiry,
    /// and stops counting the health of connected ones that went silent.
    pub(crate) fn expire(&self) {
        let now = Instant::now();
        let mut planes = self.planes.lock();
        let before = planes.by_node.len();
        planes.by_node.retain(|_, p| {
            p.connected || now.saturating_duration_since(p.last_seen) <= self.expiry
        });
        let removed = before != planes.by_node.len();
        planes.drop_stale(now, self.expiry);
        self.publish_health(&mut planes);
        drop(planes);
        if removed {
            self.bump();
        }
    }

    /// A copy of every data plane, ordered by node id.
    pub(crate) fn planes(&self) -> Vec<DataPlane> {
        self.planes.lock().by_node.values().cloned().collect()
    }

    /// Servers that every counting data plane reporting them sees failing,
    /// as of the last report, departure or expiry sweep: a data plane that
    /// went silent stops counting with the next of those.
    pub(crate) fn unhealthy_everywhere(&self) -> Arc<HashSet<String>> {
        self.unhealthy.lock().clone()
    }

    fn update(&self, conn: &Connection, f: impl FnOnce(&mut DataPlane) -> bool) {
        let now = Instant::now();
        let mut planes = self.planes.lock();
        let changed = self.touch(&mut planes, conn, now, |plane, _| f(plane));
        // A data plane silent past the expiry that spoke again counts again.
        self.publish_health(&mut planes);
        drop(planes);
        if changed {
            self.bump();
        }
    }

    /// Runs `f` on the data plane of `conn` (with the health tally), if
    /// that connection is still its own, after marking it heard from at
    /// `now`; whether anything watchers see changed (a silent plane that
    /// spoke again counts again).
    fn touch(
        &self,
        planes: &mut Planes,
        conn: &Connection,
        now: Instant,
        f: impl FnOnce(&mut DataPlane, &mut HealthTally) -> bool,
    ) -> bool {
        let Planes {
            by_node,
            counting,
            tally,
        } = planes;
        match by_node.get_mut(&conn.node_id) {
            Some(plane) if plane.connection == conn.id && plane.connected => {
                let was_stale = plane.state(now, self.expiry) == PlaneState::Stale;
                Planes::touch(counting, tally, plane, now);
                f(plane, tally) || was_stale
            }
            _ => false,
        }
    }

    fn bump(&self) {
        self.changes.send_modify(|epoch| *epoch += 1);
    }
}

/// Same rotation state for every member (counters aside).
fn same_health(a: &BTreeMap<String, MemberHealth>, b: &BTreeMap<String, MemberHealth>) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, va), (kb, vb))| {
            ka == kb
                && va.healthy == vb.healthy
                && va.consecutive_failures == vb.consecutive_failures
        })
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
pub(crate) mod tests;

//! Rolls the data planes' health reports up into per-server and per-group
//! state for `hangarctl status` and the status page, which both gather
//! their inputs through [`Source`] and follow changes with [`Changes`].
//!
//! Only data planes that are connected and reported within the expiry count.
//! A server is `ready` when every data plane that reports it sees it healthy,
//! `degraded` when only some do, `dead` when none do, and `unknown` when no
//! data plane reports it yet. A group member counts as healthy when at least
//! one data plane can use it: a member only one data plane cannot reach is
//! that data plane's local problem.

mod limits;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hangar_balance::GroupState;
use hangar_config::{Config, Group, Server};
use hangar_proto::v1::{DataPlaneStatus, GroupStatus, ServerStatus, Snapshot, StatusResponse};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::fleet::{DataPlane, Fleet, Nack, PlaneState};
use crate::replicas::Peers;
use crate::state::{ConfigState, Current};

/// Changes closer together than this are sent to a watcher as one status.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Where a status comes from: the config in force, this control plane's
/// data planes and, on etcd, the other replicas'.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    state: Arc<ConfigState>,
    fleet: Arc<Fleet>,
    peers: Option<Peers>,
}

/// Everything one status is built from, read at one moment.
#[derive(Debug)]
pub(crate) struct Gathered {
    /// The config in force.
    pub current: Current,
    /// Every data plane, ordered by node id.
    pub planes: Vec<DataPlane>,
    /// The servers out of rotation fleet-wide.
    pub ejected: Arc<BTreeSet<String>>,
    /// This control plane's last NACKs, newest first.
    pub nacks: Vec<Nack>,
    /// Silence after which a data plane stops counting.
    pub expiry: Duration,
}

/// Wakes a watcher when the status may have changed.
#[derive(Debug)]
pub(crate) struct Changes {
    fleet: watch::Receiver<u64>,
    config: watch::Receiver<Arc<Snapshot>>,
    refresh: Duration,
}

// === impl Source ===

impl Source {
    pub(crate) fn new(state: Arc<ConfigState>, fleet: Arc<Fleet>, peers: Option<Peers>) -> Self {
        Self {
            state,
            fleet,
            peers,
        }
    }

    /// Reads the inputs of a status now.
    pub(crate) async fn gather(&self) -> Gathered {
        let planes = crate::replicas::every_plane(&self.fleet, self.peers.as_ref()).await;
        Gathered {
            // After the read from etcd, so the config is the freshest one.
            current: self.state.current(),
            planes,
            ejected: self.fleet.ejected().borrow().clone(),
            nacks: self.fleet.recent_nacks(),
            expiry: self.fleet.expiry(),
        }
    }

    /// Follows changes of config and fleet, and wakes at least every
    /// `refresh` (ages move on).
    pub(crate) fn changes(&self, refresh: Duration) -> Changes {
        Changes {
            fleet: self.fleet.changes(),
            config: self.state.subscribe(),
            refresh,
        }
    }
}

// === impl Gathered ===

impl Gathered {
    /// The status, as `hangarctl status` shows it.
    pub(crate) fn rollup(&self) -> StatusResponse {
        rollup(
            self.current.version,
            &self.current.config,
            &self.planes,
            self.expiry,
            &self.ejected,
        )
    }

    /// The data planes that count in the rollup at `now`.
    pub(crate) fn counting(&self, now: Instant) -> impl Iterator<Item = &DataPlane> {
        self.planes
            .iter()
            .filter(move |p| p.state(now, self.expiry) == PlaneState::Connected)
    }
}

// === impl Changes ===

impl Changes {
    /// Waits for a change or the refresh period, then lets a burst of
    /// changes settle; `false` once the control plane is going away.
    pub(crate) async fn next(&mut self) -> bool {
        tokio::select! {
            changed = self.fleet.changed() => if changed.is_err() { return false },
            changed = self.config.changed() => if changed.is_err() { return false },
            () = tokio::time::sleep(self.refresh) => {}
        }
        tokio::time::sleep(DEBOUNCE).await;
        self.fleet.borrow_and_update();
        self.config.borrow_and_update();
        true
    }
}

/// Builds the status of config `version` from the data planes; those not
/// heard from within `expiry` are listed but do not count. `ejected` are
/// the servers out of rotation fleet-wide.
pub(crate) fn rollup(
    version: u64,
    config: &Config,
    planes: &[DataPlane],
    expiry: Duration,
    ejected: &BTreeSet<String>,
) -> StatusResponse {
    let now = Instant::now();
    let counting: Vec<&DataPlane> = planes
        .iter()
        .filter(|p| p.state(now, expiry) == PlaneState::Connected)
        .collect();
    let servers: Vec<ServerStatus> = config
        .servers
        .iter()
        .filter_map(|(id, server)| {
            let described = describe(server)?;
            let mut status = server_status(id, described, &counting);
            status.fleet_ejected = ejected.contains(id);
            Some(status)
        })
        .collect();
    let groups = config
        .groups()
        .map(|(id, group)| group_status(id, group, &servers, &counting))
        .collect();
    let data_planes = planes
        .iter()
        .map(|p| DataPlaneStatus {
            node_id: p.node_id.clone(),
            address: p.address.map(|a| a.to_string()).unwrap_or_default(),
            listen_addr: p.listen_addr.clone(),
            acked_version: p.acked_version,
            last_nack: p.last_nack.clone().unwrap_or_default(),
            last_report_age_ms: millis(now - p.last_seen),
            connected_for_ms: if p.connected {
                millis(now - p.connected_at)
            } else {
                0
            },
            state: p.state(now, expiry).as_str().to_owned(),
            labels: p.labels.clone(),
            build_version: p.build_version.clone(),
            held_version: p.held_version,
        })
        .collect();
    StatusResponse {
        version,
        servers,
        groups,
        data_planes,
        limits: limits::rollup(config, &counting),
    }
}

/// What status says about a server's config: its mode, where it is, and
/// only the names of the headers it gets (values may be secrets).
fn describe(server: &Server) -> Option<ServerStatus> {
    match server {
        Server::Remote(remote) => Some(ServerStatus {
            mode: "remote".to_owned(),
            endpoint: remote.endpoint.to_string(),
            header_names: remote
                .headers
                .keys()
                .cloned()
                .chain(
                    remote
                        .basic_auth
                        .as_ref()
                        .map(|_| "Authorization".to_owned()),
                )
                .collect(),
            ..Default::default()
        }),
        Server::Subprocess(sub) => Some(ServerStatus {
            mode: "subprocess".to_owned(),
            command: sub.command.join(" "),
            replicas: sub.replicas,
            ..Default::default()
        }),
        Server::Group(_) => None,
    }
}

fn server_status(id: &str, described: ServerStatus, planes: &[&DataPlane]) -> ServerStatus {
    let mut status = ServerStatus {
        id: id.to_owned(),
        ..described
    };
    for plane in planes {
        let Some(health) = plane.health.get(id) else {
            continue;
        };
        // A copy out of rotation is a problem of that data plane too,
        // though the server still serves there.
        if !health.healthy || health.copies_in_rotation < health.copies {
            status.failing_on.push(plane.node_id.clone());
        }
        status.reported_by += 1;
        status.calls += health.calls;
        status.p50_ms = status.p50_ms.max(health.p50_ms);
        status.p99_ms = status.p99_ms.max(health.p99_ms);
        status.errors += health.errors;
        if health.healthy {
            status.healthy_on += 1;
        }
        if health.consecutive_failures >= status.consecutive_failures {
            status.consecutive_failures = health.consecutive_failures;
            if !health.last_error.is_empty() {
                status.last_error = health.last_error.clone();
            }
        }
    }
    status.state = match (status.healthy_on, status.reported_by) {
        (_, 0) => "unknown",
        (0, _) => "dead",
        // Healthy everywhere, but a copy is out of rotation somewhere.
        (h, r) if h == r && status.failing_on.is_empty() => "ready",
        _ => "degraded",
    }
    .to_owned();
    status
}

fn group_status(
    id: &str,
    group: &Group,
    servers: &[ServerStatus],
    planes: &[&DataPlane],
) -> GroupStatus {
    let members: Vec<&ServerStatus> = group
        .members
        .iter()
        .filter_map(|m| servers.iter().find(|s| s.id == m.id))
        .collect();
    // A member out of rotation fleet-wide serves no data plane.
    let healthy = members
        .iter()
        .filter(|s| s.healthy_on > 0 && !s.fleet_ejected)
        .count() as u32;
    let total = group.members.len() as u32;
    let reported = members.iter().any(|s| s.reported_by > 0);
    let circuit_open_on: Vec<String> = planes
        .iter()
        .filter(|p| p.groups.get(id).is_some_and(|g| g.circuit_open))
        .map(|p| p.node_id.clone())
        .collect();
    // A member one data plane cannot use still serves the others, but that
    // data plane's calls avoid it: the group is not ready there.
    // Outlier detection ejects a member from one group on one data plane.
    let ejected: Vec<String> = planes
        .iter()
        .flat_map(|p| {
            let members = p.groups.get(id).map(|g| g.ejected.as_slice());
            members
                .unwrap_or_default()
                .iter()
                .map(|m| format!("{m}@{}", p.node_id))
        })
        .collect();
    // Data planes see the same members, so mostly the same words.
    let mut tool_warnings: Vec<String> = Vec::new();
    for warning in planes
        .iter()
        .filter_map(|p| p.groups.get(id))
        .flat_map(|g| &g.tool_warnings)
    {
        if !tool_warnings.contains(warning) {
            tool_warnings.push(warning.clone());
        }
    }
    let degraded_on: Vec<String> = planes
        .iter()
        .filter(|p| {
            p.groups.get(id).is_some_and(|g| !g.ejected.is_empty())
                || group.members.iter().any(|m| {
                    p.health
                        .get(&m.id)
                        .is_some_and(|h| !h.healthy || h.copies_in_rotation < h.copies)
                })
        })
        .map(|p| p.node_id.clone())
        .collect();
    let state = if reported {
        GroupState::of(healthy as usize, total as usize, group.min_healthy)
            .with_local_outages(!degraded_on.is_empty())
            .with_circuit(!circuit_open_on.is_empty())
            .as_str()
    } else {
        "unknown"
    };
    GroupStatus {
        id: id.to_owned(),
        strategy: group.strategy.as_str().to_owned(),
        state: state.to_owned(),
        healthy_members: healthy,
        total_members: total,
        min_healthy: group.min_healthy,
        circuit_open_on,
        degraded_on,
        ejected,
        tool_warnings,
    }
}

/// Whole milliseconds of `d`, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use hangar_proto::v1::Hello;

    use super::*;
    use crate::fleet::Fleet;
    use crate::fleet::tests::report;

    const EXPIRY: Duration = Duration::from_secs(30);

    /// A group whose members all serve somewhere is still not `ready` while
    /// one data plane has a member out of rotation: status says `degraded`
    /// and names that data plane.
    #[tokio::test(start_paused = true)]
    async fn a_member_out_on_one_data_plane_degrades_the_group() {
        let config = hangar_config::load(
            "config.yaml",
            "mcp_servers:\n  a: {mode: remote, endpoint: http://a}\n  b: {mode: remote, endpoint: http://b}\n  g: {mode: group, members: [{id: a}, {id: b}]}\n",
        )
        .unwrap();
        let fleet = Fleet::new(EXPIRY);
        let hello = |node: &str| Hello {
            node_id: node.into(),
            ..Default::default()
        };
        let one = fleet.connect(&hello("dp-1"), None).unwrap();
        let two = fleet.connect(&hello("dp-2"), None).unwrap();
        fleet.report(&one, report(&[("a", true), ("b", true)]));
        fleet.report(&two, report(&[("a", true), ("b", false)]));
        let status = rollup(1, &config, &fleet.planes(), EXPIRY, &BTreeSet::new());
        let group = &status.groups[0];
        assert_eq!(group.state, "degraded");
        assert_eq!(group.degraded_on, ["dp-2"]);
        assert_eq!(group.healthy_members, 2);
        let b = status.servers.iter().find(|s| s.id == "b").unwrap();
        assert_eq!(
            (b.state.as_str(), b.healthy_on, b.reported_by),
            ("degraded", 1, 2)
        );

        fleet.report(&two, report(&[("a", true), ("b", true)]));
        let status = rollup(1, &config, &fleet.planes(), EXPIRY, &BTreeSet::new());
        assert_eq!(status.groups[0].state, "ready");
        assert!(status.groups[0].degraded_on.is_empty());

        // A server with replicas is healthy while any copy is, but one copy
        // out of rotation still degrades it and its groups there.
        let mut copies = report(&[("a", true), ("b", true)]);
        copies.members[1].copies = 2;
        copies.members[1].copies_in_rotation = 1;
        fleet.report(&two, copies);
        let status = rollup(1, &config, &fleet.planes(), EXPIRY, &BTreeSet::new());
        let b = status.servers.iter().find(|s| s.id == "b").unwrap();
        assert_eq!(
            (b.state.as_str(), b.failing_on.as_slice()),
            ("degraded", &["dp-2".to_owned()][..])
        );
        assert_eq!(status.groups[0].state, "degraded");
    }
}

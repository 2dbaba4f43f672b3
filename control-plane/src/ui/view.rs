//! What the status page shows, as JSON: the rollup `hangarctl status`
//! prints (states, counts, shares), with each group's members as every
//! counting data plane sees them and this control plane's recent NACKs.
//!
//! States are the rollup's words, never worked out again here: the page
//! and the CLI cannot disagree about a group.

use std::collections::BTreeMap;

use hangar_proto::v1::{
    DataPlaneStatus, GroupStatus, LimitShareStatus, LimitStatus, MemberHealth, ServerStatus,
};
use serde::Serialize;
use tokio::time::Instant;

use crate::fleet::{DataPlane, Nack};
use crate::status::{Gathered, millis};

/// Data planes listed one by one under a member; the rest are counted.
/// Those that do not see the member fully in rotation come first, so a
/// fleet of thousands still shows who has a problem, in bounded bytes.
const SEEN_BY_LISTED: usize = 24;

/// The whole page.
#[derive(Debug, Serialize)]
pub(crate) struct StatusView {
    /// Version of the config in force (0 before the first apply).
    version: u64,
    /// Groups in config order, with their members.
    groups: Vec<GroupView>,
    /// Every remote and subprocess server, in config order.
    servers: Vec<ServerView>,
    /// Every data plane known, ordered by node id.
    data_planes: Vec<DataPlaneView>,
    /// NACKs this control plane received, newest first.
    nacks: Vec<NackView>,
    /// Rate limits of the config, with their traffic.
    rate_limits: Vec<LimitView>,
}

/// A group and its state, as `hangarctl status` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct GroupView {
    name: String,
    /// `ready`, `degraded`, `partial`, `unavailable`, `circuit_open` or `unknown`.
    state: String,
    strategy: String,
    healthy_members: u32,
    total_members: u32,
    min_healthy: u32,
    degraded_on: Vec<String>,
    circuit_open_on: Vec<String>,
    /// Members outlier detection ejected, as `member@node_id`.
    ejected: Vec<String>,
    tool_warnings: Vec<String>,
    members: Vec<MemberView>,
}

/// One member of a group.
#[derive(Debug, Serialize)]
pub(crate) struct MemberView {
    name: String,
    /// The server's state: `ready`, `degraded`, `dead` or `unknown`.
    state: String,
    weight: u32,
    priority: i32,
    /// Out of rotation on every data plane (the fleet quorum).
    fleet_ejected: bool,
    /// Counting data planes that report the member, the unwell first, at
    /// most [`SEEN_BY_LISTED`].
    seen_by: Vec<SeenView>,
    /// Data planes beyond those listed that see it in rotation...
    more_in_rotation: usize,
    /// ...and that do not.
    more_out: usize,
}

/// A member as one data plane sees it.
#[derive(Debug, Serialize)]
pub(crate) struct SeenView {
    node_id: String,
    /// `in_rotation`, `failing` (out of rotation), `ejected` (from this
    /// group by outlier detection) or `copies_out` (a copy of a server
    /// with replicas is out).
    state: &'static str,
    consecutive_failures: u32,
    last_error: String,
    copies: u32,
    copies_in_rotation: u32,
    p99_ms: f64,
}

/// A remote or subprocess server.
#[derive(Debug, Serialize)]
pub(crate) struct ServerView {
    name: String,
    /// `remote` or `subprocess`.
    mode: String,
    /// `ready`, `degraded`, `dead` or `unknown`.
    state: String,
    /// The endpoint, or the command line of a subprocess.
    target: String,
    replicas: u32,
    healthy_on: u32,
    reported_by: u32,
    failing_on: Vec<String>,
    fleet_ejected: bool,
    consecutive_failures: u32,
    last_error: String,
    calls: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
}

/// A data plane.
#[derive(Debug, Serialize)]
pub(crate) struct DataPlaneView {
    node_id: String,
    /// `connected`, `stale` or `disconnected`.
    state: String,
    address: String,
    listen_addr: String,
    acked_version: u64,
    /// Connected, and not on the version in force.
    behind: bool,
    last_report_age_ms: u64,
    connected_for_ms: u64,
    build_version: String,
    labels: BTreeMap<String, String>,
    last_nack: String,
}

/// A snapshot a data plane rejected.
#[derive(Debug, Serialize)]
pub(crate) struct NackView {
    node_id: String,
    version: u64,
    reason: String,
    age_ms: u64,
}

/// A rate limit and its traffic over the fleet.
#[derive(Debug, Serialize)]
pub(crate) struct LimitView {
    /// The limit's id (`all`, `group/G`, `server/S/tool/T`, `env`).
    limit: String,
    /// The id in words.
    name: String,
    /// `fleet` or `data_plane`.
    scope: String,
    rps: f64,
    burst: u32,
    per_caller_rps: f64,
    per_caller_burst: u32,
    admitted_rps: f64,
    refused_rps: f64,
    data_planes: Vec<LimitShareView>,
}

/// One data plane's part of a rate limit.
#[derive(Debug, Serialize)]
pub(crate) struct LimitShareView {
    node_id: String,
    share_rps: f64,
    offered_rps: f64,
    admitted_rps: f64,
    refused_rps: f64,
}

/// The page's view of `gathered` at `now`.
pub(crate) fn build(gathered: &Gathered, now: Instant) -> StatusView {
    let status = gathered.rollup();
    let counting: Vec<&DataPlane> = gathered.counting(now).collect();
    let groups = status
        .groups
        .into_iter()
        .map(|group| {
            let members = gathered
                .current
                .config
                .groups()
                .find(|(id, _)| *id == group.id)
                .map(|(_, config)| config.members.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|member| {
                    let server = status.servers.iter().find(|s| s.id == member.id);
                    let mut view = member_view(&group.id, &member.id, &counting);
                    view.state = server.map(|s| s.state.clone()).unwrap_or_default();
                    view.fleet_ejected = server.is_some_and(|s| s.fleet_ejected);
                    view.weight = member.weight;
                    view.priority = member.priority;
                    view
                })
                .collect();
            group_view(group, members)
        })
        .collect();
    let version = status.version;
    StatusView {
        version,
        groups,
        servers: status.servers.into_iter().map(server_view).collect(),
        data_planes: status
            .data_planes
            .into_iter()
            .map(|p| plane_view(p, version))
            .collect(),
        nacks: gathered.nacks.iter().map(|n| nack_view(n, now)).collect(),
        rate_limits: status.limits.into_iter().map(limit_view).collect(),
    }
}

fn group_view(group: GroupStatus, members: Vec<MemberView>) -> GroupView {
    GroupView {
        name: group.id,
        state: group.state,
        strategy: group.strategy,
        healthy_members: group.healthy_members,
        total_members: group.total_members,
        min_healthy: group.min_healthy,
        degraded_on: group.degraded_on,
        circuit_open_on: group.circuit_open_on,
        ejected: group.ejected,
        tool_warnings: group.tool_warnings,
        members,
    }
}

/// `member` of `group` as each counting data plane that reports it sees it.
fn member_view(group: &str, member: &str, counting: &[&DataPlane]) -> MemberView {
    let mut seen: Vec<SeenView> = counting
        .iter()
        .filter_map(|plane| {
            let health = plane.health.get(member)?;
            let ejected = plane
                .groups
                .get(group)
                .is_some_and(|g| g.ejected.iter().any(|m| m == member));
            Some(seen_view(&plane.node_id, health, ejected))
        })
        .collect();
    // Stable: within each kind, node id order stays.
    seen.sort_by_key(|s| s.state == "in_rotation");
    let rest = seen.split_off(seen.len().min(SEEN_BY_LISTED));
    let more_in_rotation = rest.iter().filter(|s| s.state == "in_rotation").count();
    MemberView {
        name: member.to_owned(),
        state: String::new(),
        weight: 0,
        priority: 0,
        fleet_ejected: false,
        seen_by: seen,
        more_in_rotation,
        more_out: rest.len() - more_in_rotation,
    }
}

fn seen_view(node_id: &str, health: &MemberHealth, ejected: bool) -> SeenView {
    let state = if !health.healthy {
        "failing"
    } else if ejected {
        "ejected"
    } else if health.copies_in_rotation < health.copies {
        "copies_out"
    } else {
        "in_rotation"
    };
    SeenView {
        node_id: node_id.to_owned(),
        state,
        consecutive_failures: health.consecutive_failures,
        last_error: health.last_error.clone(),
        copies: health.copies,
        copies_in_rotation: health.copies_in_rotation,
        p99_ms: health.p99_ms,
    }
}

fn server_view(s: ServerStatus) -> ServerView {
    let target = if s.mode == "subprocess" {
        s.command
    } else {
        s.endpoint
    };
    ServerView {
        name: s.id,
        mode: s.mode,
        state: s.state,
        target,
        replicas: s.replicas,
        healthy_on: s.healthy_on,
        reported_by: s.reported_by,
        failing_on: s.failing_on,
        fleet_ejected: s.fleet_ejected,
        consecutive_failures: s.consecutive_failures,
        last_error: s.last_error,
        calls: s.calls,
        errors: s.errors,
        p50_ms: s.p50_ms,
        p99_ms: s.p99_ms,
    }
}

fn plane_view(p: DataPlaneStatus, version: u64) -> DataPlaneView {
    DataPlaneView {
        behind: p.state == "connected" && p.acked_version != version,
        node_id: p.node_id,
        state: p.state,
        address: p.address,
        listen_addr: p.listen_addr,
        acked_version: p.acked_version,
        last_report_age_ms: p.last_report_age_ms,
        connected_for_ms: p.connected_for_ms,
        build_version: p.build_version,
        labels: p.labels.into_iter().collect(),
        last_nack: p.last_nack,
    }
}

fn nack_view(nack: &Nack, now: Instant) -> NackView {
    NackView {
        node_id: nack.node_id.clone(),
        version: nack.version,
        reason: nack.reason.clone(),
        age_ms: millis(now.saturating_duration_since(nack.at)),
    }
}

fn limit_view(l: LimitStatus) -> LimitView {
    LimitView {
        name: hangar_rate::ids::label(&l.limit),
        limit: l.limit,
        scope: l.scope,
        rps: l.rps,
        burst: l.burst,
        per_caller_rps: l.per_caller_rps,
        per_caller_burst: l.per_caller_burst,
        admitted_rps: l.admitted_rps,
        refused_rps: l.refused_rps,
        data_planes: l.data_planes.into_iter().map(share_view).collect(),
    }
}

fn share_view(p: LimitShareStatus) -> LimitShareView {
    LimitShareView {
        node_id: p.node_id,
        share_rps: p.share_rps,
        offered_rps: p.offered_rps,
        admitted_rps: p.admitted_rps,
        refused_rps: p.refused_rps,
    }
}

//! `hangar_status`: this data plane's own view of its groups and members.
//!
//! The control plane's `hangarctl status` rolls up every data plane; this
//! tool answers from one, which is what a client beside it experiences.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::route::outlier::LazyNow;
use crate::route::table::RoutingTable;

/// The tool's output.
#[derive(Debug, Serialize)]
pub(crate) struct LocalStatus {
    config_version: u64,
    /// `control_plane`, `cache` (served from `--cache-dir` since start) or `none`.
    config_source: &'static str,
    groups: Vec<GroupView>,
    servers: Vec<ServerView>,
}

#[derive(Debug, Serialize)]
struct GroupView {
    name: String,
    strategy: &'static str,
    /// `ready`, `partial`, `unavailable` or `circuit_open`, as `hangarctl
    /// status` names them.
    state: &'static str,
    healthy: usize,
    total: usize,
    min_healthy: u32,
    /// Failed calls in a row through the group (its circuit breaker's count).
    consecutive_failures: u32,
    members: Vec<MemberView>,
}

#[derive(Debug, Serialize)]
struct MemberView {
    id: String,
    in_rotation: bool,
    weight: u32,
    priority: i32,
}

/// A server as MCP clients see it: by its id from the config, never by its
/// address (that is for operators, in `hangarctl status`).
#[derive(Debug, Serialize)]
struct ServerView {
    id: String,
    healthy: bool,
    consecutive_failures: u32,
    in_flight: u32,
    calls: u64,
    errors: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    last_error: String,
}

/// The local view of `table`, groups and servers sorted by name.
pub(crate) fn local_status(table: &RoutingTable) -> LocalStatus {
    let mut groups: Vec<GroupView> = table
        .groups
        .values()
        .map(|g| {
            let mut now = LazyNow::default();
            let healthy = g.healthy_count();
            let total = g.members.len();
            let breaker = g.breaker.view();
            let state = g.state().as_str();
            GroupView {
                name: g.id.clone(),
                strategy: g.strategy().as_str(),
                state,
                healthy,
                total,
                min_healthy: g.min_healthy,
                consecutive_failures: breaker.consecutive_failures,
                members: g
                    .members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| MemberView {
                        id: m.member.id().to_owned(),
                        in_rotation: g.in_rotation(i, &mut now),
                        weight: m.weight,
                        priority: m.priority,
                    })
                    .collect(),
            }
        })
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let mut servers: Vec<ServerView> = table
        .members
        .values()
        .map(|m| {
            let report = m.report();
            ServerView {
                id: report.server_id,
                healthy: report.healthy,
                consecutive_failures: report.consecutive_failures,
                in_flight: report.in_flight,
                calls: report.calls,
                errors: report.errors,
                last_error: m.last_error_for_clients(),
            }
        })
        .collect();
    servers.sort_by(|a, b| a.id.cmp(&b.id));
    LocalStatus {
        config_version: table.version,
        config_source: table.origin.as_str(),
        groups,
        servers,
    }
}

/// JSON Schema of the tool's input: no arguments.
pub(crate) fn input_schema() -> Map<String, Value> {
    match json!({"type": "object", "properties": {}, "additionalProperties": false}) {
        Value::Object(map) => map,
        _ => unreachable!("the schema literal is an object"),
    }
}

//! Step 3 of loading: compile a [`Config`] into the [`v1::Snapshot`] the
//! control plane pushes to data planes.

use std::time::Duration;

use hangar_proto::v1;

use crate::model::{Config, Group, RemoteServer, Strategy};

impl Config {
    /// The snapshot for config `version` (0 is reserved for "no config").
    ///
    /// Servers and groups keep file order. Every member starts `eligible`;
    /// taking members out of rotation fleet-wide is the control plane's call.
    pub fn to_snapshot(&self, version: u64) -> v1::Snapshot {
        v1::Snapshot {
            version,
            servers: self.remotes().map(|(id, s)| server(id, s)).collect(),
            groups: self.groups().map(|(id, g)| group(id, g)).collect(),
        }
    }
}

impl From<Strategy> for v1::Strategy {
    fn from(strategy: Strategy) -> Self {
        match strategy {
            Strategy::RoundRobin => Self::RoundRobin,
            Strategy::Random => Self::Random,
            Strategy::LeastConnections => Self::LeastConnections,
            Strategy::WeightedRoundRobin => Self::WeightedRoundRobin,
            Strategy::Priority => Self::Priority,
        }
    }
}

fn server(id: &str, server: &RemoteServer) -> v1::Server {
    v1::Server {
        id: id.to_owned(),
        endpoint: server.endpoint.to_string(),
        probe_interval_ms: millis_ceil(server.health_check_interval),
        max_consecutive_failures: server.max_consecutive_failures,
        // Fleet health is not config; the control plane sets it when sending.
        fleet_unhealthy: false,
    }
}

fn group(id: &str, group: &Group) -> v1::Group {
    let members = group.members.iter().map(|m| v1::Member {
        server_id: m.id.clone(),
        weight: m.weight,
        priority: m.priority,
        eligible: true,
    });
    v1::Group {
        id: id.to_owned(),
        strategy: v1::Strategy::from(group.strategy).into(),
        min_healthy: group.min_healthy,
        members: members.collect(),
    }
}

/// Rounds up, so a positive interval (validation rejects 0) never becomes
/// 0 ms; saturates instead of wrapping.
fn millis_ceil(d: Duration) -> u64 {
    let millis = d.as_nanos().div_ceil(1_000_000);
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_up_to_whole_millis() {
        assert_eq!(millis_ceil(Duration::from_secs(10)), 10_000);
        assert_eq!(millis_ceil(Duration::from_micros(1)), 1);
        assert_eq!(millis_ceil(Duration::from_secs_f64(0.0015)), 2);
        assert_eq!(millis_ceil(Duration::MAX), u64::MAX);
    }

    #[test]
    fn strategies_map_to_proto() {
        let names: Vec<&str> = Strategy::ALL
            .iter()
            .map(|&s| v1::Strategy::from(s).as_str_name())
            .collect();
        assert_eq!(
            names,
            [
                "STRATEGY_ROUND_ROBIN",
                "STRATEGY_RANDOM",
                "STRATEGY_LEAST_CONNECTIONS",
                "STRATEGY_WEIGHTED_ROUND_ROBIN",
                "STRATEGY_PRIORITY",
            ]
        );
    }
}

//! The validated config model: what [`crate::load`] returns.
//!
//! Every value here has passed validation, so consumers need no further
//! checks: endpoints are http(s) URLs with a path, member ids name remote
//! servers of the same config, numbers are in range.

use std::fmt;
use std::time::Duration;

use indexmap::IndexMap;
use url::Url;

/// A whole config file (`mcp_servers:` in MCP Hangar's `config.yaml`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Servers and groups by id, in file order.
    pub servers: IndexMap<String, Server>,
}

/// One entry under `mcp_servers`, chosen by its `mode`.
#[derive(Debug, Clone, PartialEq)]
pub enum Server {
    /// `mode: remote`: an MCP server reached over Streamable HTTP.
    Remote(RemoteServer),
    /// `mode: group`: remote servers balanced behind one id.
    Group(Group),
}

/// A `mode: remote` server.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteServer {
    /// Full URL of the MCP endpoint. A bare authority in the file
    /// (`http://host:8080`) is normalised to the `/mcp` path.
    pub endpoint: Url,
    /// Active probe period (`health_check_interval_s`, default 60 s).
    pub health_check_interval: Duration,
    /// Consecutive failures before the server leaves rotation
    /// (`max_consecutive_failures`, default 3, at least 1).
    pub max_consecutive_failures: u32,
    /// Free text for humans.
    pub description: Option<String>,
}

/// A `mode: group` server.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// How members are picked (default [`Strategy::RoundRobin`]).
    pub strategy: Strategy,
    /// Healthy members needed for the group to count as healthy (default 1,
    /// at most the number of members).
    pub min_healthy: u32,
    /// Members in file order; never empty, ids unique.
    pub members: Vec<Member>,
    /// Free text for humans.
    pub description: Option<String>,
}

/// One entry of a group's `members` list.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Id of a [`Server::Remote`] in the same config.
    pub id: String,
    /// Share for weighted strategies (default 1, at least 1).
    pub weight: u32,
    /// Rank for [`Strategy::Priority`] (default 1, any `i32`); the balancer
    /// defines which end of the range it prefers.
    pub priority: i32,
}

/// A load-balancing strategy; `as_str` is its one name everywhere (config,
/// proto, metric labels).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// `round_robin`: members in turn. MCP Hangar's default.
    #[default]
    RoundRobin,
    /// `random`: a uniformly random member.
    Random,
    /// `least_connections`: the member with the fewest calls in flight.
    LeastConnections,
    /// `weighted_round_robin`: in turn, in proportion to `weight`.
    WeightedRoundRobin,
    /// `priority`: members by their `priority` rank, failing over in order.
    Priority,
}

// === impl Config ===

impl Config {
    /// The `mode: group` entries, in file order.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &Group)> {
        self.servers.iter().filter_map(|(id, server)| match server {
            Server::Group(group) => Some((id.as_str(), group)),
            Server::Remote(_) => None,
        })
    }

    /// The `mode: remote` entries, in file order.
    pub fn remotes(&self) -> impl Iterator<Item = (&str, &RemoteServer)> {
        self.servers.iter().filter_map(|(id, server)| match server {
            Server::Remote(remote) => Some((id.as_str(), remote)),
            Server::Group(_) => None,
        })
    }
}

// === impl RemoteServer ===

impl RemoteServer {
    /// `health_check_interval_s` when the file leaves it out.
    pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(60);
    /// `max_consecutive_failures` when the file leaves it out.
    pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 3;
}

// === impl Group ===

impl Group {
    /// `min_healthy` when the file leaves it out.
    pub const DEFAULT_MIN_HEALTHY: u32 = 1;
}

// === impl Member ===

impl Member {
    /// `weight` when the file leaves it out.
    pub const DEFAULT_WEIGHT: u32 = 1;
    /// `priority` when the file leaves it out.
    pub const DEFAULT_PRIORITY: i32 = 1;
}

// === impl Strategy ===

impl Strategy {
    /// Every strategy, in the order the docs and error messages list them.
    pub const ALL: &'static [Strategy] = &[
        Self::RoundRobin,
        Self::Random,
        Self::LeastConnections,
        Self::WeightedRoundRobin,
        Self::Priority,
    ];

    /// The snake_case name used in config files, e.g. `round_robin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::Random => "random",
            Self::LeastConnections => "least_connections",
            Self::WeightedRoundRobin => "weighted_round_robin",
            Self::Priority => "priority",
        }
    }

    /// The strategy named `name` (exact snake_case match), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_names_round_trip() {
        for &strategy in Strategy::ALL {
            assert_eq!(Strategy::from_name(strategy.as_str()), Some(strategy));
            assert_eq!(strategy.to_string(), strategy.as_str());
        }
        assert_eq!(Strategy::from_name("RoundRobin"), None);
    }
}

//! Config files for tests, shaped like MCP Hangar's recipe 05.

use std::fmt::Write;

/// Server ids of the recipe, in order.
pub const RECIPE_MEMBERS: [&str; 3] = ["my-mcp", "my-mcp-backup", "my-mcp-3"];
/// The recipe's group id.
pub const RECIPE_GROUP: &str = "my-mcp-group";

/// One member of a test group.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// Server id.
    pub id: String,
    /// MCP endpoint URL.
    pub endpoint: String,
    /// Weight for `weighted_round_robin`.
    pub weight: u32,
    /// Priority for `priority` (lower is preferred).
    pub priority: i32,
}

/// A config with one server per member and one group over them.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// Strategy name as written in the config.
    pub strategy: String,
    /// The group's `min_healthy`.
    pub min_healthy: u32,
    /// Probe period of every server, in seconds.
    pub health_check_interval_s: f64,
    /// Ejection threshold of every server.
    pub max_consecutive_failures: u32,
    /// The members, in order.
    pub members: Vec<MemberSpec>,
}

impl GroupConfig {
    /// The recipe's group (`round_robin`, weights 1) over `endpoints`, with
    /// the recipe's member ids. Tests probe faster than the recipe's 10 s.
    pub fn recipe(endpoints: &[String]) -> Self {
        Self {
            strategy: "round_robin".into(),
            min_healthy: 1,
            health_check_interval_s: 0.1,
            max_consecutive_failures: 2,
            members: RECIPE_MEMBERS
                .iter()
                .zip(endpoints)
                .map(|(id, endpoint)| MemberSpec {
                    id: (*id).to_owned(),
                    endpoint: endpoint.clone(),
                    weight: 1,
                    priority: 1,
                })
                .collect(),
        }
    }

    /// The config file text.
    pub fn yaml(&self) -> String {
        let mut yaml = String::from("mcp_servers:\n");
        for m in &self.members {
            let _ = write!(
                yaml,
                "  {}:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: {}\n    max_consecutive_failures: {}\n",
                m.id, m.endpoint, self.health_check_interval_s, self.max_consecutive_failures
            );
        }
        let _ = write!(
            yaml,
            "  {RECIPE_GROUP}:\n    mode: group\n    strategy: {}\n    min_healthy: {}\n    members:\n",
            self.strategy, self.min_healthy
        );
        for m in &self.members {
            let _ = writeln!(
                yaml,
                "      - id: {}\n        weight: {}\n        priority: {}",
                m.id, m.weight, m.priority
            );
        }
        yaml
    }
}

/// Recipe 05 with the given endpoints (one per member) and probe settings.
pub fn recipe(endpoints: &[String], health_check_interval_s: f64, max_failures: u32) -> String {
    GroupConfig {
        health_check_interval_s,
        max_consecutive_failures: max_failures,
        ..GroupConfig::recipe(endpoints)
    }
    .yaml()
}

//! Config files for tests, shaped like MCP Hangar's recipe 05.

use std::fmt::Write;

/// Server ids of the recipe, in order.
pub const RECIPE_MEMBERS: [&str; 3] = ["my-mcp", "my-mcp-backup", "my-mcp-3"];
/// The recipe's group id.
pub const RECIPE_GROUP: &str = "my-mcp-group";

/// Recipe 05 with the given endpoints (one per member) and probe settings.
/// Tests probe faster than the recipe's 10 s so that state changes quickly.
pub fn recipe(endpoints: &[String], health_check_interval_s: f64, max_failures: u32) -> String {
    let mut yaml = String::from("mcp_servers:\n");
    for (id, endpoint) in RECIPE_MEMBERS.iter().zip(endpoints) {
        let _ = write!(
            yaml,
            "  {id}:\n    mode: remote\n    endpoint: \"{endpoint}\"\n    \
             health_check_interval_s: {health_check_interval_s}\n    \
             max_consecutive_failures: {max_failures}\n"
        );
    }
    let _ = write!(
        yaml,
        "  {RECIPE_GROUP}:\n    mode: group\n    strategy: round_robin\n    min_healthy: 1\n    members:\n"
    );
    for id in RECIPE_MEMBERS.iter().take(endpoints.len()) {
        let _ = writeln!(yaml, "      - id: {id}\n        weight: 1");
    }
    yaml
}

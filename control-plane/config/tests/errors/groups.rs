//! Group semantics: member references, counts and strategies.

use super::with_a;

#[test]
fn member_names_missing_server() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    members:",
        "      - id: a",
        "      - id: nope",
    ]);
    assert_eq!(
        got,
        "config.yaml:9:13: mcp_servers.g.members[1].id: no server named 'nope'"
    );
}

#[test]
fn group_in_group() {
    let got = with_a(&[
        "  inner:",
        "    mode: group",
        "    members: [{id: a}]",
        "  outer:",
        "    mode: group",
        "    members:",
        "      - id: inner",
    ]);
    assert_eq!(
        got,
        "config.yaml:11:13: mcp_servers.outer.members[0].id: 'inner' is a group; groups cannot contain groups"
    );
}

#[test]
fn duplicate_member() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    members:",
        "      - id: a",
        "      - id: a",
    ]);
    assert_eq!(
        got,
        "config.yaml:9:13: mcp_servers.g.members[1].id: duplicate member 'a' (also members[0])"
    );
}

#[test]
fn empty_members() {
    let got = with_a(&["  g:", "    mode: group", "    members: []"]);
    assert_eq!(
        got,
        "config.yaml:7:14: mcp_servers.g.members: must not be empty"
    );
}

#[test]
fn weight_zero() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    members:",
        "      - id: a",
        "        weight: 0",
    ]);
    assert_eq!(
        got,
        "config.yaml:9:17: mcp_servers.g.members[0].weight: must be at least 1, got 0"
    );
}

#[test]
fn min_healthy_above_member_count() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    min_healthy: 2",
        "    members:",
        "      - id: a",
    ]);
    assert_eq!(
        got,
        "config.yaml:7:18: mcp_servers.g.min_healthy: must be at most the number of members (1), got 2"
    );
}

#[test]
fn unknown_strategy() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    strategy: fastest",
        "    members: [{id: a}]",
    ]);
    assert_eq!(
        got,
        "config.yaml:7:15: mcp_servers.g.strategy: unknown strategy 'fastest' (expected one of: \
         round_robin, random, least_connections, weighted_round_robin, priority, least_latency)"
    );
}

#[test]
fn circuit_breaker_threshold_and_keys() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    circuit_breaker:",
        "      failure_threshold: 0",
        "      reset_timeout_s: -1",
        "      half_open: true",
        "    members: [{id: a}]",
    ]);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 3, "{got}");
    assert!(
        lines[0].starts_with("config.yaml:8:26: mcp_servers.g.circuit_breaker.failure_threshold:"),
        "{got}"
    );
    assert!(
        lines[1].starts_with("config.yaml:9:24: mcp_servers.g.circuit_breaker.reset_timeout_s:"),
        "{got}"
    );
    assert_eq!(
        lines[2],
        "config.yaml:10:7: mcp_servers.g.circuit_breaker.half_open: unknown key 'half_open' (expected one of: failure_threshold, reset_timeout_s)"
    );
}

/// Every mistake in `outlier_detection:` is named, all at once.
#[test]
fn outlier_detection_values_and_keys() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    outlier_detection:",
        "      consecutive_failures: 0",
        "      max_ejection_percent: 150",
        "      slow_start_s: -1",
        "      interval: 10",
        "    members: [{id: a}]",
    ]);
    assert_eq!(
        got,
        "config.yaml:8:29: mcp_servers.g.outlier_detection.consecutive_failures: must be at least 1, got 0\n\
         config.yaml:9:29: mcp_servers.g.outlier_detection.max_ejection_percent: must be at most 100, got 150\n\
         config.yaml:10:21: mcp_servers.g.outlier_detection.slow_start_s: must be 0 (no slow start) or more, got -1\n\
         config.yaml:11:7: mcp_servers.g.outlier_detection.interval: unknown key 'interval' (expected one of: enabled, consecutive_failures, base_ejection_time_s, max_ejection_time_s, max_ejection_percent, slow_start_s)"
    );
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    outlier_detection: {base_ejection_time_s: 60, max_ejection_time_s: 30}",
        "    members: [{id: a}]",
    ]);
    assert_eq!(
        got,
        "config.yaml:7:72: mcp_servers.g.outlier_detection.max_ejection_time_s: must be at least base_ejection_time_s (60), got 30"
    );
}

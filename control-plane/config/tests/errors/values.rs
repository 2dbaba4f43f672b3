//! Bad values: endpoints, modes and types.

use super::{errors, with_a};

#[test]
fn endpoint_without_scheme() {
    let got = errors(&[
        "mcp_servers:",
        "  a:",
        "    mode: remote",
        "    endpoint: localhost:8080",
    ]);
    assert_eq!(
        got,
        "config.yaml:4:15: mcp_servers.a.endpoint: 'localhost:8080' is not an http or https URL (missing 'http://'?)"
    );
}

#[test]
fn endpoint_with_other_scheme() {
    let got = errors(&[
        "mcp_servers:",
        "  a:",
        "    mode: remote",
        "    endpoint: \"ftp://x\"",
    ]);
    assert_eq!(
        got,
        "config.yaml:4:15: mcp_servers.a.endpoint: 'ftp://x' is not an http or https URL"
    );
}

#[test]
fn endpoint_not_a_url() {
    let got = errors(&[
        "mcp_servers:",
        "  a:",
        "    mode: remote",
        "    endpoint: http://h:99999",
    ]);
    assert_eq!(
        got,
        "config.yaml:4:15: mcp_servers.a.endpoint: invalid URL 'http://h:99999': invalid port number"
    );
}

/// Modes MCP Hangar has but Hangar lacks; their other keys are not checked.
#[test]
fn docker_mode_is_unsupported() {
    let got = errors(&[
        "mcp_servers:",
        "  math:",
        "    mode: docker",
        "    image: mcp-math:latest",
    ]);
    assert_eq!(
        got,
        "config.yaml:3:11: mcp_servers.math.mode: mode 'docker' is not supported yet (supported: remote, subprocess, group)"
    );
}

#[test]
fn unknown_mode() {
    let got = errors(&["mcp_servers:", "  a:", "    mode: lambda"]);
    assert_eq!(
        got,
        "config.yaml:3:11: mcp_servers.a.mode: unknown mode 'lambda' (expected remote, subprocess or group)"
    );
}

#[test]
fn wrong_type() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    members:",
        "      - id: a",
        "        weight: lots",
    ]);
    assert_eq!(
        got,
        "config.yaml:9:17: mcp_servers.g.members[0].weight: expected an integer, got string 'lots'"
    );
}

/// A quoted number is a string in YAML, and the message says so.
#[test]
fn quoted_number_is_a_string() {
    let got = with_a(&["    health_check_interval_s: \"10\""]);
    assert_eq!(
        got,
        "config.yaml:5:30: mcp_servers.a.health_check_interval_s: expected a number of seconds, got string '10'"
    );
}

#[test]
fn stall_timeout_may_be_zero_but_not_negative() {
    let got = super::errors(&[
        "mcp_servers:",
        "  a:",
        "    mode: remote",
        "    endpoint: http://h",
        "    stall_timeout_s: -1",
    ]);
    assert_eq!(
        got,
        "config.yaml:5:22: mcp_servers.a.stall_timeout_s: must be 0 (no hang watch) or more, got -1"
    );
}

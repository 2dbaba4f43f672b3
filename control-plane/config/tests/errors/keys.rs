//! Unknown, unsupported, missing and repeated keys.

use super::{errors, with_a};

#[test]
fn unknown_top_level_key() {
    let got = errors(&["mcp_servers: {}", "servers: {}"]);
    assert_eq!(
        got,
        "config.yaml:2:1: servers: unknown key 'servers' (expected one of: mcp_servers, retry, rate_limit, auth, access)"
    );
}

#[test]
fn unknown_server_key() {
    let got = with_a(&["    endpont: http://i"]);
    assert_eq!(
        got,
        "config.yaml:5:5: mcp_servers.a.endpont: unknown key 'endpont' (expected one of: \
         mode, endpoint, description, health_check_interval_s, max_consecutive_failures, \
         headers, auth, tls, http, max_concurrency, stall_timeout_s, rate_limit, tools, idle_ttl_s)"
    );
}

#[test]
fn unknown_member_key() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    members:",
        "      - id: a",
        "        wieght: 2",
    ]);
    assert_eq!(
        got,
        "config.yaml:9:9: mcp_servers.g.members[0].wieght: unknown key 'wieght' (expected one of: id, weight, priority, tools)"
    );
}

/// MCP Hangar keys Hangar lacks are named as such, not as typos.
#[test]
fn unsupported_known_key() {
    let got = with_a(&["    auto_start: true"]);
    assert_eq!(
        got,
        "config.yaml:5:5: mcp_servers.a.auto_start: key 'auto_start' is not supported yet"
    );
}

/// MCP Hangar's `tools` as a list of definitions is not supported; its
/// access policy form is, and its patterns are checked.
#[test]
fn tool_policies_are_checked() {
    let got = with_a(&[
        "    tools: []",
        "  b:",
        "    mode: remote",
        "    endpoint: http://b",
        "    tools: {allow_list: ['[unclosed', ''], approval_list: [x]}",
        "  g:",
        "    mode: group",
        "    tools: {}",
        "    members: [{id: a, tools: {deny_list: 'x'}}]",
    ]);
    assert_eq!(
        got,
        "config.yaml:5:12: mcp_servers.a.tools: a list of tool definitions is not supported yet: give an access policy, {allow_list: [...], deny_list: [...]}\n\
         config.yaml:9:26: mcp_servers.b.tools.allow_list[0]: '[unclosed' is not a pattern: unclosed character class; missing ']'\n\
         config.yaml:9:39: mcp_servers.b.tools.allow_list[1]: a pattern has 1 to 256 characters\n\
         config.yaml:9:44: mcp_servers.b.tools.approval_list: key 'approval_list' is not supported yet (calls held for approval)\n\
         config.yaml:12:5: mcp_servers.g.tools: limits nothing: give allow_list or deny_list\n\
         config.yaml:13:42: mcp_servers.g.members[0].tools.deny_list: expected a list of strings, got string 'x'"
    );
}

/// MCP Hangar's inline member servers get a hint towards references.
#[test]
fn inline_member_server_is_unsupported() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    members:",
        "      - id: a",
        "        mode: remote",
    ]);
    assert_eq!(
        got,
        "config.yaml:9:9: mcp_servers.g.members[0].mode: key 'mode' is not supported yet in a member \
         (define the server under mcp_servers and list its id)"
    );
}

#[test]
fn member_without_id() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    members:",
        "      - id: a",
        "      - weight: 2",
    ]);
    assert_eq!(
        got,
        "config.yaml:9:9: mcp_servers.g.members[1]: missing required key 'id'"
    );
}

#[test]
fn missing_members() {
    let got = with_a(&["  g:", "    mode: group"]);
    assert_eq!(
        got,
        "config.yaml:5:3: mcp_servers.g: missing required key 'members'"
    );
}

#[test]
fn missing_endpoint() {
    let got = errors(&[
        "mcp_servers:",
        "  a:",
        "    mode: remote",
        "    health_check_interval_s: 5",
    ]);
    assert_eq!(
        got,
        "config.yaml:2:3: mcp_servers.a: missing required key 'endpoint'"
    );
}

#[test]
fn missing_mode() {
    let got = errors(&["mcp_servers:", "  a:", "    endpoint: http://h"]);
    assert_eq!(
        got,
        "config.yaml:2:3: mcp_servers.a: missing required key 'mode'"
    );
}

#[test]
fn duplicate_key() {
    let got = with_a(&["    endpoint: http://i"]);
    assert_eq!(
        got,
        "config.yaml:5:5: mcp_servers.a.endpoint: duplicate key 'endpoint' (first on line 4)"
    );
}

#[test]
fn duplicate_server() {
    let got = with_a(&["  a:", "    mode: remote", "    endpoint: http://i"]);
    assert_eq!(
        got,
        "config.yaml:5:3: mcp_servers.a: duplicate key 'a' (first on line 2)"
    );
}

#[test]
fn retry_policies_are_checked() {
    let got = super::with_a(&[
        "retry:",
        "  default_policy: {max_attempts: 0, backoff: sometimes}",
        "  per_mcp_server:",
        "    nope: {max_attempts: 2}",
    ]);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 3, "{got}");
    assert!(
        lines[0].contains("retry.default_policy.max_attempts: must be at least 1"),
        "{got}"
    );
    assert!(
        lines[1].contains("retry.default_policy.backoff: unknown backoff 'sometimes'"),
        "{got}"
    );
    assert!(
        lines[2].contains("retry.per_mcp_server.nope: no server or group named 'nope'"),
        "{got}"
    );
}

/// Ids follow MCP Hangar's rule; a group's id is part of its URL.
#[test]
fn server_ids_follow_the_id_rule() {
    let got = with_a(&[
        "  \"my group\":",
        "    mode: group",
        "    members: [{id: a}]",
    ]);
    assert_eq!(
        got,
        "config.yaml:5:3: mcp_servers.my group: server id 'my group' may hold only letters, digits, '_' and '-', 1 to 64 of them (as in MCP Hangar): a group's id names it in URLs (/groups/{id}/mcp)"
    );
}

//! Configs that must be rejected, asserting the full message a user sees:
//! `file:line:column: path: message`, one line per mistake.

#[path = "errors/auth.rs"]
mod auth;
#[path = "errors/groups.rs"]
mod groups;
#[path = "errors/keys.rs"]
mod keys;
#[path = "errors/limits.rs"]
mod limits;
#[path = "errors/members.rs"]
mod members;
#[path = "errors/rate_limits.rs"]
mod rate_limits;
#[path = "errors/values.rs"]
mod values;

/// Joins lines with `\n` so each test reads like the file, line numbers
/// being the 1-based index into the slice.
fn yaml(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn errors(lines: &[&str]) -> String {
    match hangar_config::load("config.yaml", &yaml(lines)) {
        Ok(config) => panic!("expected errors, loaded {config:?}"),
        Err(errors) => errors.to_string(),
    }
}

/// Lines 1-4: one valid remote server `a`, for groups to reference.
const REMOTE_A: [&str; 4] = [
    "mcp_servers:",
    "  a:",
    "    mode: remote",
    "    endpoint: http://h",
];

/// `REMOTE_A` followed by `rest`.
fn with_a(rest: &[&str]) -> String {
    let lines: Vec<&str> = REMOTE_A.iter().chain(rest).copied().collect();
    errors(&lines)
}

#[test]
fn yaml_syntax_error() {
    let got = errors(&[
        "mcp_servers:",
        "  a:",
        "    mode: remote",
        "   endpoint: http://h",
    ]);
    assert_eq!(
        got,
        "config.yaml:4:4: invalid YAML: did not find expected key, while parsing a block mapping at line 2 column 3"
    );
}

/// An empty file (or only comments) lacks its one required key; like every
/// error, this one has a position: the start of the file.
#[test]
fn empty_file() {
    assert_eq!(
        errors(&["# nothing yet"]),
        "config.yaml:1:1: missing required key 'mcp_servers'"
    );
    assert_eq!(
        errors(&[]),
        "config.yaml:1:1: missing required key 'mcp_servers'"
    );
}

#[test]
fn null_server_map() {
    assert_eq!(
        errors(&["mcp_servers:"]),
        "config.yaml:1:1: mcp_servers: expected a mapping, got null"
    );
}

/// Every mistake is reported, sorted by position, not just the first.
#[test]
fn all_errors_are_reported_in_order() {
    let got = errors(&[
        "mcp_servers:",
        "  g:",
        "    mode: group",
        "    strategy: fastest",
        "    members:",
        "      - id: a",
        "        weight: 0",
        "  a:",
        "    mode: remote",
        "    endpoint: ftp://h",
    ]);
    assert_eq!(
        got,
        "config.yaml:4:15: mcp_servers.g.strategy: unknown strategy 'fastest' (expected one of: \
         round_robin, random, least_connections, weighted_round_robin, priority, least_latency)\n\
         config.yaml:7:17: mcp_servers.g.members[0].weight: must be at least 1, got 0\n\
         config.yaml:10:15: mcp_servers.a.endpoint: 'ftp://h' is not an http or https URL"
    );
}

/// A file that cannot be read is one error with no position.
#[test]
fn unreadable_file() {
    let path = std::path::Path::new("does-not-exist/config.yaml");
    let got = hangar_config::load_file(path)
        .expect_err("missing file")
        .to_string();
    assert_eq!(
        got,
        "does-not-exist/config.yaml: cannot read does-not-exist/config.yaml: No such file or directory (os error 2)"
    );
}

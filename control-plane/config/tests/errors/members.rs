//! Remote server options (headers, auth, TLS, timeouts, concurrency) and
//! subprocess servers.

use super::{errors, with_a};

#[test]
fn bad_headers_are_each_named() {
    let got = with_a(&[
        "    headers:",
        "      \"Bad Name\": x",
        "      Content-Type: text/plain",
        "      X-Key: \"${API KEY}\"",
        "    http:",
        "      headers:",
        "        x-key: again",
    ]);
    assert_eq!(
        got,
        "config.yaml:6:7: mcp_servers.a.headers.Bad Name: 'Bad Name' is not a valid header name\n\
         config.yaml:7:7: mcp_servers.a.headers.Content-Type: header 'Content-Type' is set by Hangar itself\n\
         config.yaml:8:14: mcp_servers.a.headers.X-Key: '${API KEY}' is not a reference: expected ${NAME}, ${NAME:-default} or ${file:PATH} (write $$ for a literal $) (at character 0)"
    );
}

#[test]
fn a_header_set_twice_across_sections_is_refused() {
    let got = with_a(&[
        "    headers:",
        "      Authorization: \"Bearer ${A}\"",
        "    auth:",
        "      type: bearer",
        "      bearer_token: \"${B}\"",
    ]);
    assert_eq!(
        got,
        "config.yaml:9:7: mcp_servers.a.auth.bearer_token: header 'Authorization' is set twice (headers, http.headers and auth combine)"
    );
}

#[test]
fn auth_needs_its_secret_and_a_known_type() {
    let got = with_a(&[
        "    auth:",
        "      type: bearer",
        "  b:",
        "    mode: remote",
        "    endpoint: http://h",
        "    auth: {type: oauth}",
    ]);
    assert_eq!(
        got,
        "config.yaml:5:5: mcp_servers.a.auth: missing required key 'bearer_token'\n\
         config.yaml:10:18: mcp_servers.b.auth.type: unknown auth type 'oauth' (expected one of: bearer, api_key, basic, none)"
    );
}

#[test]
fn tls_and_timeouts_are_checked() {
    let got = with_a(&[
        "    tls: {verify_ssl: \"no\"}",
        "    http: {connect_timeout: 0, read_timeout: soon, max_retries: -1}",
        "    max_concurrency: 0",
        "  b:",
        "    mode: remote",
        "    endpoint: http://h",
        "    tls: {ca_cert_path: /etc/ca.pem}",
    ]);
    assert_eq!(
        got,
        "config.yaml:5:23: mcp_servers.a.tls.verify_ssl: expected true or false, got string 'no'\n\
         config.yaml:6:29: mcp_servers.a.http.connect_timeout: must be greater than 0, got 0\n\
         config.yaml:6:46: mcp_servers.a.http.read_timeout: expected a number of seconds, got string 'soon'\n\
         config.yaml:6:65: mcp_servers.a.http.max_retries: must be at least 0, got -1\n\
         config.yaml:7:22: mcp_servers.a.max_concurrency: must be at least 1, got 0\n\
         config.yaml:11:5: mcp_servers.b.tls: tls applies to https endpoints only, and 'http://h/mcp' is http"
    );
}

#[test]
fn subprocess_servers_need_a_program() {
    let got = errors(&[
        "mcp_servers:",
        "  a:",
        "    mode: subprocess",
        "  b:",
        "    mode: subprocess",
        "    command: []",
        "    replicas: 65",
        "    endpoint: http://h",
        "  c:",
        "    mode: subprocess",
        "    command: {python: 3}",
        "    env: {\"A=B\": x}",
    ]);
    assert_eq!(
        got,
        "config.yaml:2:3: mcp_servers.a: missing required key 'command'\n\
         config.yaml:6:14: mcp_servers.b.command: must name a program\n\
         config.yaml:7:15: mcp_servers.b.replicas: must be at most 64, got 65\n\
         config.yaml:8:5: mcp_servers.b.endpoint: key 'endpoint' applies to mode: remote servers, not here (expected one of: mode, command, args, env, cwd, replicas, description, health_check_interval_s, max_consecutive_failures, max_concurrency, stall_timeout_s, rate_limit, tools, idle_ttl_s)\n\
         config.yaml:11:15: mcp_servers.c.command: expected a program or a list of program and arguments, got a mapping\n\
         config.yaml:12:11: mcp_servers.c.env.A=B: 'A=B' is not a valid environment variable name"
    );
}

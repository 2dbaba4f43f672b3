//! `rate_limit` blocks that cannot work: every mistake named with its
//! place, all at once.

use super::{errors, with_a};

#[test]
fn sizes_out_of_range_and_a_burst_without_a_rate() {
    let got = errors(&[
        "rate_limit:",
        "  rps: 0",
        "  burst: 0",
        "  per_caller: {burst: 3}",
        "mcp_servers: {}",
    ]);
    assert_eq!(
        got,
        "config.yaml:2:8: rate_limit.rps: must be more than 0, got 0\n\
         config.yaml:3:10: rate_limit.burst: must be at least 1, got 0\n\
         config.yaml:4:16: rate_limit.per_caller.burst: needs rps: a burst without a refill rate would admit it once and never again"
    );
}

#[test]
fn inner_limits_larger_than_their_outer_one_can_never_be_met() {
    let got = with_a(&[
        "  g:",
        "    mode: group",
        "    members: [{id: a}]",
        "    rate_limit:",
        "      rps: 10",
        "      burst: 10",
        "      per_caller: {rps: 20, burst: 5}",
        "      tools:",
        "        search: {rps: 50, burst: 100}",
    ]);
    assert_eq!(
        got,
        "config.yaml:11:25: mcp_servers.g.rate_limit.per_caller.rps: 20 calls a second can never be reached under the limit all callers share (10 a second)\n\
         config.yaml:13:23: mcp_servers.g.rate_limit.tools.search.rps: 50 calls a second can never be reached under the limit of its group or server (10 a second)\n\
         config.yaml:13:34: mcp_servers.g.rate_limit.tools.search.burst: a burst of 100 can never be reached under the limit of its group or server (burst 10)"
    );
}

#[test]
fn unknown_scope_method_tool_name_and_misplaced_tools() {
    let got = errors(&[
        "rate_limit:",
        "  rps: 5",
        "  scope: region",
        "  methods: [tools/call, tools/run]",
        "  tools: {x: {rps: 1}}",
        "mcp_servers:",
        "  a:",
        "    mode: remote",
        "    endpoint: http://h",
        "    rate_limit:",
        "      tools: {'bad name': {rps: 1}, ok: {}}",
    ]);
    assert_eq!(
        got,
        "config.yaml:3:10: rate_limit.scope: unknown scope 'region' (expected fleet or data_plane)\n\
         config.yaml:4:25: rate_limit.methods[1]: unknown method 'tools/run' (expected one of: tools/call, tools/list, resources/read, resources/list, resources/templates/list, resources/subscribe, prompts/get, prompts/list, completion/complete, initialize, ping, *)\n\
         config.yaml:5:3: rate_limit.tools: per-tool limits sit under a group's or server's rate_limit (mcp_servers.<id>.rate_limit.tools)\n\
         config.yaml:11:15: mcp_servers.a.rate_limit.tools.bad name: 'bad name' is not a tool name (1 to 128 letters, digits, '_', '-', '.' or '/')\n\
         config.yaml:11:37: mcp_servers.a.rate_limit.tools.ok: limits nothing: give rps (and burst) or per_caller"
    );
}

/// A bad limit changes nothing: the whole config is refused, even though
/// the rest of it is fine.
#[test]
fn an_empty_block_limits_nothing() {
    let got = with_a(&["    rate_limit: {}"]);
    assert_eq!(
        got,
        "config.yaml:5:5: mcp_servers.a.rate_limit: limits nothing: give rps (and burst), per_caller or tools"
    );
}

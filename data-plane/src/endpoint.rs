//! What MCP clients talk to: the data plane's own MCP server (`hangar_call`,
//! `hangar_status`) at `/mcp` and over stdio, the transparent group
//! endpoint `/groups/{group}/mcp`, and a group served over stdio.
//!
//! # Layout
//! - [`mcp`]: the rmcp `ServerHandler` with `hangar_call` and `hangar_status`, and its HTTP service.
//! - [`hangar_call`]: the batch tool's input, output and execution.
//! - [`hangar_status`]: this data plane's view of its groups and members.
//! - [`groups`]: `/groups/{group}/mcp`, a group that looks like one MCP server.
//! - [`stdio`]: `--stdio --group`: the same group endpoint over stdin/stdout.
//! - [`metrics`]: `GET /metrics`, the Prometheus registry.

pub(crate) mod groups;
pub(crate) mod hangar_call;
pub(crate) mod hangar_status;
pub(crate) mod mcp;
pub(crate) mod metrics;
pub(crate) mod stdio;

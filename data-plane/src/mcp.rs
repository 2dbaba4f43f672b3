//! The data plane's own MCP server: `hangar_call` and `hangar_status` over Streamable HTTP at
//! `/mcp` and over stdio, on rmcp, which speaks every protocol era
//! (sessions for 2024-11-05 … 2025-11-25 clients, stateless 2026-07-28).
//!
//! # Layout
//! - [`guard`]: JSON-RPC checks and the body limit in front of the server,
//!   reading messages with `envelope`.
//! - [`hangar_call`]: the batch tool's input, output and execution.
//! - [`hangar_status`]: this data plane's view of its groups and members.
//! - [`server`]: the rmcp `ServerHandler` and the HTTP service.

mod envelope;
pub mod guard;
pub mod hangar_call;
pub mod hangar_status;
pub mod server;

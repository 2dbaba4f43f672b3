//! Pieces of the benches (`hangar-bench`, `hangar-strategy-bench`): a load generator speaking MCP over HTTP, nginx
//! as a reference proxy, and process measurements from `/proc`.
//!
//! # Layout
//! - [`load`]: closed-loop MCP load (keep-alive connections, N workers).
//! - [`nginx`]: a plain nginx reverse proxy over the same backends.
//! - [`procfs`]: RSS and CPU time of a process.
//! - [`stack`]: the release control plane and data plane as processes.

pub mod load;
pub mod nginx;
pub mod procfs;
pub mod stack;

//! Pieces of `hangar-bench`: a load generator speaking MCP over HTTP, nginx
//! as a reference proxy, and process measurements from `/proc`.
//!
//! # Layout
//! - [`load`]: closed-loop MCP load (keep-alive connections, N workers).
//! - [`nginx`]: a plain nginx reverse proxy over the same backends.
//! - [`procfs`]: RSS and CPU time of a process.

pub mod load;
pub mod nginx;
pub mod procfs;

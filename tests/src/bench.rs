//! Pieces of the benches (`hangar-bench`, `hangar-strategy-bench`,
//! `hangar-rate-bench`, `hangar-fleet-bench`, ...): a load generator
//! speaking MCP over HTTP, nginx as a reference proxy, simulated data
//! planes, process measurements from `/proc`, and a runner that stops a
//! bench's processes on Ctrl-C or SIGTERM.
//!
//! # Layout
//! - [`fleet`]: simulated data planes on the control-plane stream.
//! - [`load`]: closed-loop MCP load (keep-alive connections, N workers).
//! - [`nginx`]: a plain nginx reverse proxy over the same backends.
//! - [`procfs`]: RSS and CPU time of a process.
//! - [`stack`]: the release control plane and data plane as processes.
//! - [`sdk_client`]: latency as the official Python SDK client sees it.
//! - [`targets`]: the figures a run is held to, beside their targets.

pub mod fleet;
pub mod load;
pub mod nginx;
pub mod procfs;
pub mod sdk_client;
pub mod stack;
pub mod targets;

use std::future::Future;

/// Runs `bench` until it ends or Ctrl-C or SIGTERM comes; then drops it,
/// and with it every process it started (each is killed by PID on drop):
/// exiting without dropping would leave members and Hangar running.
/// `Ok(None)` when a signal stopped it.
pub async fn until_signal<T>(
    bench: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        done = bench => done.map(Some),
        _ = tokio::signal::ctrl_c() => Ok(None),
        _ = terminate.recv() => Ok(None),
    }
}

/// The turns of `rounds` rounds over `count` paths, as indices: every path
/// once a round, the order rotating by one each round, so that no path is
/// always first or always after the same one.
pub fn rotating_turns(rounds: usize, count: usize) -> impl Iterator<Item = usize> {
    (0..rounds).flat_map(move |round| (0..count).map(move |turn| (round + turn) % count))
}

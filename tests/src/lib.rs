//! Test harness for Hangar: fake MCP servers and in-process builders for the
//! control plane and data plane, used by the end-to-end tests in `tests/`.
//!
//! # Layout
//! - [`fake_mcp`]: a fast Streamable HTTP MCP server with the example server's tools.
//! - [`bench`](mod@bench): load generation and measurements for `hangar-bench`.
//! - [`browser`]: a real headless Chromium over WebDriver, for the status page.
//! - [`chaos`]: member faults and what clients see, for `hangar-chaos-bench`.
//! - [`configs`]: recipe-shaped config files.
//! - [`control_plane`]: an in-process control plane with a temporary state dir.
//! - [`conversation`]: a session client kept running between a test's steps.
//! - [`etcd`]: a real etcd on loopback, for replicated control planes.
//! - [`data_plane`]: an in-process data plane and an rmcp client for it.
//! - [`metrics`]: scraping `/metrics` and reading the samples.
//! - [`otlp`]: an OTLP collector that keeps the spans it gets.
//! - [`pki`]: a CA and certificates generated per test, as PEM files.
//! - [`jwt`]: an identity provider of a test: its keys, JWKS and signed tokens.
//! - [`process`]: running client programs that print JSON lines, and
//!   reading a server binary's log lines.
//! - [`python_sdk`]: the example server and client on the official Python SDK.
//! - [`ts_sdk`]: clients on the official TypeScript SDK.
//! - [`raw`]: a raw Streamable HTTP client for wire-level checks.
//! - [`stack`]: a control plane and a data plane with a config applied.
//! - [`eventually`]: bounded polling instead of fixed sleeps.
//! - [`witness`]: a simulated data plane reporting a chosen health view.
//! - [`everything`]: the MCP project's reference server, `server-everything`.

pub mod bench;
pub mod browser;
pub mod chaos;
pub mod configs;
pub mod control_plane;
pub mod conversation;
pub mod data_plane;
pub mod etcd;
pub mod eventually;
pub mod everything;
pub mod fake_mcp;
pub mod jwt;
pub mod metrics;
pub mod otlp;
pub mod pki;
pub mod process;
pub mod python_sdk;
pub mod raw;
pub mod stack;
pub mod ts_sdk;
pub mod witness;

/// A loopback port that was free a moment ago, for programs that can only
/// be told a fixed port (the Python example servers, a binary restarted on the same
/// address). Bind port 0 instead wherever the program reports its address.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The first file named `name` in a directory of `PATH`: a program the
/// tests run from the system when it is installed.
pub(crate) fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

//! `FakeMcp`: a fast in-process MCP server over Streamable HTTP, for tests and
//! benchmarks.
//!
//! On the wire it behaves like the Python SDK server in `examples/python/server.py`
//! (same tools, results, status codes and error bodies) but answers in
//! microseconds:
//!
//! - **Legacy eras** (2024-11-05 … 2025-11-25): `initialize`, `ping`,
//!   `tools/list`, `tools/call`; notifications get 202. Stateful by default: an
//!   `Mcp-Session-Id` is minted at `initialize` and required afterwards (400
//!   without it, 404 when unknown; DELETE ends it). [`FakeMcp::stateless`]
//!   drops sessions entirely. Requests are answered as one SSE `message` event
//!   unless [`FakeMcp::json_response`] is set.
//! - **2026-07-28**: selected by the `MCP-Protocol-Version` header; stateless,
//!   `server/discover` plus tools, headers checked against the body.
//!
//! Stopping ([`FakeMcpHandle::stop`], [`FakeMcpHandle::shutdown`] or dropping
//! the handle) closes the listener and cuts every open connection at once, as
//! if the process died, so a later connect is refused.
//! [`FakeMcpHandle::restart`] serves again on the same port with no sessions.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use hangar_tests::fake_mcp::FakeMcp;
//! let mut a = FakeMcp::new("a").stateless().start().await;
//! let url = a.url(); // http://127.0.0.1:PORT/mcp
//! a.stop().await; // connections to `url` are now refused
//! a.restart().await?; // same port, fresh sessions
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `server`: axum routes; `server/legacy.rs` and `server/modern.rs` per era.
//! - `protocol`: JSON-RPC parsing, reply framing, MCP constants and results.
//! - `tools`: the example server's tools.
//! - `listener`: connection tracking so that stopping cuts live connections.
//! - `tls`: HTTPS for [`FakeMcp::tls`].

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderValue;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::listener::{Connections, TrackingListener};
use self::protocol::ServerInfo;
use self::state::{Run, Shared};

mod listener;
mod protocol;
mod server;
mod state;
mod tls;
mod tools;

/// Builder for a fake MCP server; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct FakeMcp {
    name: String,
    stateless: bool,
    json_response: bool,
    latency: Duration,
    bearer: Option<String>,
    tls: Option<crate::pki::CertFiles>,
    fail_calls: bool,
    hold_streams_open: bool,
}

impl FakeMcp {
    /// A stateful, SSE-answering server whose results report `served_by: name`
    /// and whose `serverInfo.name` is `fake-mcp-<name>`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            stateless: false,
            json_response: false,
            latency: Duration::ZERO,
            bearer: None,
            tls: None,
            fail_calls: false,
            hold_streams_open: false,
        }
    }

    /// Requires `Authorization: Bearer <token>` on `/mcp`; anything else
    /// gets 401, as a hosted MCP server does.
    pub fn require_bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// Serves HTTPS with this certificate and key (see [`crate::pki`]).
    pub fn tls(mut self, cert: &crate::pki::CertFiles) -> Self {
        self.tls = Some(cert.clone());
        self
    }

    /// Serves without sessions (the SDK's `stateless_http`): no `Mcp-Session-Id`
    /// is minted, any request works without `initialize`, DELETE is 405.
    pub fn stateless(mut self) -> Self {
        self.stateless = true;
        self
    }

    /// Answers legacy requests as `application/json` (`true`) or as one SSE
    /// event (`false`, the default). Modern requests are always JSON.
    pub fn json_response(mut self, json: bool) -> Self {
        self.json_response = json;
        self
    }

    /// Adds `latency` to every tool call except `whoami` (the example server's
    /// `--latency-ms`). Default: none.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Answers every `tools/call` with HTTP 500 once it has it (the call was
    /// delivered); probes and listings still succeed.
    pub fn fail_calls(mut self) -> Self {
        self.fail_calls = true;
        self
    }

    /// Keeps each SSE answer's stream open after the response event, until
    /// the server stops (servers that end their streams late, or that send
    /// more on them).
    pub fn hold_streams_open(mut self) -> Self {
        self.hold_streams_open = true;
        self
    }

    /// Starts serving on an ephemeral port of 127.0.0.1.
    ///
    /// # Panics
    /// If no loopback port can be bound, which leaves a test nothing to run.
    pub async fn start(self) -> FakeMcpHandle {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        self.start_on(addr)
            .await
            .expect("bind an ephemeral port on 127.0.0.1")
    }

    /// Starts serving on `addr` (port 0 picks a free one).
    pub async fn start_on(self, addr: SocketAddr) -> io::Result<FakeMcpHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(self, addr));
        let running = Running::spawn(listener, Arc::clone(&shared));
        tracing::debug!(server.addr = %addr, name = %shared.name, "fake mcp started");
        Ok(FakeMcpHandle {
            shared,
            running: Some(running),
        })
    }
}

// === impl FakeMcpHandle ===

/// A running (or stopped) fake server. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeMcpHandle {
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl FakeMcpHandle {
    /// The bound address; it stays the same across [`restart`](Self::restart).
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The MCP endpoint, `http://127.0.0.1:PORT/mcp` (`https` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/mcp", self.shared.addr)
    }

    /// Requests refused for a missing or wrong bearer token.
    pub fn unauthorized(&self) -> u64 {
        self.shared.unauthorized.load(Ordering::Relaxed)
    }

    /// The instance name reported as `served_by`.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// `tools/call` requests answered since the handle was created, whatever
    /// the tool (unknown tools and `whoami` included); kept across restarts.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// The `traceparent` headers of the last requests that carried one
    /// (at most 64), oldest first.
    pub fn traceparents(&self) -> Vec<String> {
        self.shared.traceparents.lock().iter().cloned().collect()
    }

    /// The `params._meta.traceparent` of the last requests that carried
    /// one (at most 64), oldest first.
    pub fn meta_traceparents(&self) -> Vec<String> {
        self.shared
            .meta_traceparents
            .lock()
            .iter()
            .cloned()
            .collect()
    }

    /// Changes the latency added to every tool call from now on (see
    /// [`FakeMcp::latency`]).
    pub fn set_latency(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.shared.latency_nanos.store(nanos, Ordering::Relaxed);
    }

    /// Tool calls in progress right now (`whoami` excluded, like the example server).
    pub fn in_flight(&self) -> u64 {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Live legacy sessions (always 0 when stateless or stopped).
    pub fn sessions(&self) -> usize {
        self.shared.sessions.lock().len()
    }

    /// Whether the server is accepting connections.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stops accepting, cuts every open connection (in-flight calls included)
    /// and forgets all sessions. Returns once the port is closed, so a connect
    /// made afterwards is refused. Idempotent.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
            self.shared.sessions.lock().clear();
            tracing::debug!(server.addr = %self.shared.addr, "fake mcp stopped");
        }
    }

    /// Stops the server if it runs, then serves again on the same address with
    /// no sessions. Counters carry over. Fails if the port was taken meanwhile.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.stop().await;
        let listener = TcpListener::bind(self.shared.addr).await?;
        self.running = Some(Running::spawn(listener, Arc::clone(&self.shared)));
        tracing::debug!(server.addr = %self.shared.addr, "fake mcp restarted");
        Ok(())
    }

    /// Stops the server for good (see [`stop`](Self::stop)).
    pub async fn shutdown(mut self) {
        self.stop().await;
    }
}

impl Drop for FakeMcpHandle {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            // Cannot await here: cut everything and let the serve task finish alone.
            running.cancel();
        }
    }
}

// === impl Running ===

/// One run of the server, from bind to stop.
#[derive(Debug)]
struct Running {
    stop: CancellationToken,
    connections: Arc<Connections>,
    task: JoinHandle<()>,
}

impl Running {
    fn spawn(listener: TcpListener, shared: Arc<Shared>) -> Self {
        let stop = CancellationToken::new();
        let connections = Arc::new(Connections::default());
        let tls = shared.tls.clone();
        let router = server::router(Arc::new(Run {
            shared,
            stop: stop.clone(),
        }));
        let listener = TrackingListener::new(listener, Arc::clone(&connections));
        let signal = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            // Serving a bound listener only ends on the signal.
            match tls {
                Some(acceptor) => {
                    let listener = tls::TlsListener::new(listener, acceptor);
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(signal)
                        .await;
                }
                None => {
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(signal)
                        .await;
                }
            }
        });
        Self {
            stop,
            connections,
            task,
        }
    }

    fn cancel(&self) {
        self.stop.cancel();
        self.connections.close_all();
    }

    /// Cancels and waits until the listener is closed and every connection task
    /// has ended; a panic in the server is re-raised here.
    async fn stop(self) {
        self.cancel();
        if let Err(error) = self.task.await
            && error.is_panic()
        {
            std::panic::resume_unwind(error.into_panic());
        }
    }
}

impl Shared {
    fn new(config: FakeMcp, addr: SocketAddr) -> Self {
        let server_info = ServerInfo {
            name: format!("fake-mcp-{}", config.name),
            version: env!("CARGO_PKG_VERSION"),
        };
        let modern_members = protocol::modern_members(&server_info);
        let mut modern_list_members = br#","ttlMs":0,"cacheScope":"private""#.to_vec();
        modern_list_members.extend_from_slice(&modern_members);
        Self {
            name: config.name,
            stateless: config.stateless,
            json_response: config.json_response,
            latency_nanos: std::sync::atomic::AtomicU64::new(
                u64::try_from(config.latency.as_nanos()).unwrap_or(u64::MAX),
            ),
            addr,
            tools_list: tools::list(),
            discover: protocol::discover_result(&server_info),
            modern_members,
            modern_list_members,
            server_info,
            sessions: Mutex::default(),
            calls: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            bearer: config.bearer.map(|token| {
                HeaderValue::from_str(&format!("Bearer {token}")).expect("a test token is ASCII")
            }),
            unauthorized: AtomicU64::new(0),
            tls: config.tls.as_ref().map(tls::acceptor),
            fail_calls: config.fail_calls,
            hold_streams_open: config.hold_streams_open,
            traceparents: Mutex::default(),
            meta_traceparents: Mutex::default(),
        }
    }
}

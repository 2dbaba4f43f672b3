//! Hangar's data plane: an MCP proxy that runs beside MCP clients, follows
//! the control plane's snapshots, balances every tool call locally with its
//! group's strategy, probes members, and keeps serving its last snapshot
//! when the control plane is gone.
//!
//! # Layout (a request goes down this list; `docs/architecture.md` has the map)
//! - `server`: the HTTP side: listener, limits, admission, guard, JSON-RPC errors.
//! - `endpoint`: what clients talk to: `/mcp` (`hangar_call`), `/groups/{group}/mcp`, stdio.
//! - `route`: the routing table, members and their health, the failover loop.
//! - [`upstream`]: the MCP clients of members (HTTP, and stdio processes).
//! - `control`: the control-plane stream and the snapshot cache.
//! - `metrics`: the call counters and latency histograms the hot path records.
//! - [`observe`]: traces and the access log of each MCP request.
//! - `fields`: how HTTP/1.1 header fields are read (framing, and a head's fields with one allocation), for both sides.

mod control;
mod endpoint;
mod fields;
mod metrics;
pub mod observe;
mod readiness;
mod route;
mod server;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::control::Identity;
use crate::control::cache::{CacheError, SnapshotCache};
use crate::endpoint::mcp::HangarServer;
use crate::endpoint::metrics::Metrics;
use crate::route::table::{Origin, Routes};
pub use crate::server::listener::{Admission, Limits};

/// Everything a data plane needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Control-plane gRPC URLs, tried in turn.
    pub control_planes: Vec<String>,
    /// Node id, unique in the fleet.
    pub node_id: String,
    /// Where the last good snapshot is kept, if anywhere.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Token and TLS for the control plane.
    pub client: hangar_proto::client::ClientConfig,
}

impl Settings {
    /// Settings for one control plane, with no cache and no credentials.
    pub fn new(control_plane: impl Into<String>, node_id: impl Into<String>) -> Self {
        Self {
            control_planes: vec![control_plane.into()],
            node_id: node_id.into(),
            cache_dir: None,
            client: hangar_proto::client::ClientConfig::default(),
        }
    }
}

/// A data plane's shared state: the routing table and its MCP server.
#[derive(Debug, Clone)]
pub struct DataPlane {
    routes: Arc<Routes>,
    metrics: Arc<Metrics>,
    /// Traces and the access log of MCP requests.
    observer: observe::Observer,
    /// Cancelled from outside: stop taking work and drain.
    shutdown: CancellationToken,
    /// Cancelled once serving has drained: ends sessions, streams, probes
    /// and the control-plane stream.
    halt: CancellationToken,
}

impl DataPlane {
    /// A data plane with an empty routing table. Cancelling `shutdown` makes
    /// serving stop taking work and drain (see [`DataPlane::serve_http`]);
    /// probes and the control-plane task stop when serving has ended.
    pub fn new(shutdown: CancellationToken) -> Self {
        let halt = CancellationToken::new();
        let routes = Arc::new(Routes::new(halt.clone()));
        Self {
            metrics: Arc::new(Metrics::new(routes.clone())),
            routes,
            observer: observe::Observer::default(),
            shutdown,
            halt,
        }
    }

    /// This data plane telling its MCP requests to `observer` (traces,
    /// the access log).
    pub fn with_observer(mut self, observer: observe::Observer) -> Self {
        self.observer = observer;
        self
    }

    /// The routing table.
    pub fn routes(&self) -> &Arc<Routes> {
        &self.routes
    }

    /// The metrics served at `/metrics`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Starts following the control plane in the background.
    ///
    /// With a cache directory, the cached snapshot (if any) is put in force
    /// first, so calls are served at once even when the control plane is
    /// down; the control plane's snapshots then replace it and are cached.
    pub fn spawn_control(
        &self,
        settings: &Settings,
        listen_addr: String,
    ) -> Result<(), CacheError> {
        let cache = match &settings.cache_dir {
            Some(dir) => Some(self.restore(SnapshotCache::open(dir)?)),
            None => None,
        };
        let identity = Identity {
            node_id: settings.node_id.clone(),
            listen_addr,
            instance: uuid::Uuid::new_v4().to_string(),
        };
        tokio::spawn(route::jwt::fetch::run(
            self.routes.jwt().clone(),
            cache.clone(),
            self.halt.clone(),
        ));
        let task = control::run(
            settings.control_planes.clone(),
            settings.client.clone(),
            identity,
            self.routes.clone(),
            cache,
            self.halt.clone(),
        );
        let span = tracing::info_span!("control", node.id = %settings.node_id);
        tokio::spawn(tracing::Instrument::instrument(task, span));
        Ok(())
    }

    /// Puts the cached snapshot in force, if there is a usable one.
    fn restore(&self, cache: SnapshotCache) -> SnapshotCache {
        let dir = cache.dir().display().to_string();
        match cache.load_api_keys() {
            Ok(Some(keys)) => self.routes.api_keys().install(&keys),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %hangar_runtime::error_chain(&err), "ignoring the cached API keys")
            }
        }
        // Shares first: the snapshot's fleet limits start on them.
        match cache.load_shares() {
            Ok(Some(shares)) => self.routes.apply_shares(&shares),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %hangar_runtime::error_chain(&err), "ignoring the cached rate limit shares")
            }
        }
        match cache.load() {
            Ok(Some(snapshot)) => match self.routes.apply(&snapshot, Origin::Cache) {
                Ok(()) => {
                    tracing::info!(config.version = snapshot.version, cache.dir = %dir, "serving the cached snapshot until the control plane answers")
                }
                Err(reason) => {
                    tracing::warn!(cache.dir = %dir, %reason, "ignoring an unusable cached snapshot")
                }
            },
            Ok(None) => tracing::info!(cache.dir = %dir, "no cached snapshot yet"),
            Err(err) => {
                tracing::warn!(error = %hangar_runtime::error_chain(&err), "ignoring the snapshot cache")
            }
        }
        cache
    }

    /// The MCP server of this data plane.
    pub fn mcp_server(&self) -> HangarServer {
        HangarServer::new(self.routes.clone())
    }

    /// Serves MCP over HTTP on an already bound listener within `limits`
    /// until shutdown. Then new connections are refused, calls in flight
    /// get [`Limits::shutdown_grace`] to finish, and everything else ends
    /// (see `server::listener`); returns when that is done.
    pub async fn serve_http(&self, listener: TcpListener, limits: &Limits) -> std::io::Result<()> {
        let front = self.front(listener.local_addr()?, limits);
        let connections = Arc::default();
        server::listener::serve(
            listener,
            front,
            connections,
            limits,
            &self.shutdown,
            &self.halt,
        )
        .await;
        self.routes.processes_stopped().await;
        Ok(())
    }

    /// [`DataPlane::serve_http`] on `threads` threads of their own, each
    /// with a single-threaded runtime, its own connections and its own pool
    /// of connections to members (see `server::threads`); background work
    /// stays on the caller's runtime.
    pub async fn serve_http_on_threads(
        &self,
        listener: std::net::TcpListener,
        threads: std::num::NonZeroUsize,
        limits: &Limits,
    ) -> std::io::Result<()> {
        let front = self.front(listener.local_addr()?, limits);
        let mut serving = server::threads::Threads::start(
            listener,
            threads,
            &front,
            limits,
            &self.shutdown,
            &self.halt,
        )?;
        serving.drained().await;
        self.halt.cancel();
        // Stdio members started by requests run on the serving threads.
        self.routes.processes_stopped().await;
        serving.stop().await;
        Ok(())
    }

    /// The front serving MCP over HTTP at `addr` within `limits`.
    fn front(&self, addr: SocketAddr, limits: &Limits) -> server::front::Front {
        let hosts = allowed_hosts(addr, &limits.allowed_hosts);
        let (service, sessions) = endpoint::mcp::http_service(
            self.mcp_server(),
            hosts.clone(),
            limits.max_request_bytes,
            self.halt.child_token(),
        );
        let guard = server::guard::Guard {
            allowed: server::host::Allowed {
                hosts: hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                listen_port: addr.port(),
                origins: limits
                    .allowed_origins
                    .iter()
                    .map(|o| o.to_ascii_lowercase())
                    .collect(),
            },
            body: server::request_body::BodyLimits {
                max_bytes: limits.max_request_bytes,
                timeout: limits.request_body_timeout,
                budget: server::request_body::BodyBudget::new(limits.max_buffered_request_bytes),
            },
        };
        let admission = Admission::new(limits.max_concurrent_requests, limits.max_event_streams);
        let direct = endpoint::mcp::direct::DirectCalls::new(self.routes.clone(), sessions.clone());
        let router = axum::Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn_with_state(
                sessions,
                endpoint::mcp::refusals::refusals,
            ))
            .layer(axum::middleware::from_fn_with_state(
                guard.clone(),
                server::guard::guard_layer,
            ))
            // After the guard's layer, so the guard does not apply to it.
            .merge(endpoint::metrics::router(self.metrics.clone()));
        let anonymous =
            server::anonymous::AnonymousClients::for_listener(addr, limits.allow_anonymous_clients);
        tracing::info!(listen.addr = %addr, "serving MCP at /mcp and /groups/NAME/mcp, metrics at /metrics");
        server::front::Front::new(
            admission,
            anonymous,
            guard,
            (self.routes.clone(), direct),
            router,
            self.observer.clone(),
        )
    }

    /// Serves one MCP client over stdin/stdout as if it were the group
    /// `group`, until it closes stdin.
    pub async fn serve_stdio_group(&self, group: String) -> std::io::Result<()> {
        let served =
            endpoint::stdio::serve(self.routes.clone(), group, self.shutdown.clone()).await;
        self.halt.cancel();
        self.routes.processes_stopped().await;
        served
    }

    /// Builds only `group` and the servers it is made of from every
    /// snapshot (for [`DataPlane::serve_stdio_group`]): an IDE window that
    /// serves one group starts no other group's subprocess servers. Call
    /// before [`DataPlane::spawn_control`].
    pub fn scope_to_group(&self, group: String) {
        self.routes.scope_to_group(group);
    }

    /// Starts each subprocess member when a `hangar_call` first needs it (for
    /// [`DataPlane::serve_stdio`]): an IDE window pays for no process it
    /// does not call. Call before [`DataPlane::spawn_control`].
    pub fn start_processes_on_first_use(&self) {
        self.routes.start_processes_on_first_use();
    }

    /// Limits every tool call through this data plane to `rps` a second,
    /// `burst` at once, for this data plane alone and on top of the config's
    /// limits (MCP Hangar's `MCP_RATE_LIMIT_RPS` and `_BURST`). Call before
    /// the first snapshot.
    pub fn limit_every_call(&self, rps: f64, burst: u32) {
        self.routes
            .limit_every_call(hangar_rate::Rate::new(rps, f64::from(burst)));
    }

    /// Serves one MCP client over stdin/stdout until it closes stdin.
    pub async fn serve_stdio(&self) -> anyhow::Result<()> {
        use rmcp::ServiceExt;
        let running = self
            .mcp_server()
            .serve((tokio::io::stdin(), tokio::io::stdout()))
            .await?;
        let served = tokio::select! {
            r = running.waiting() => r.map(drop),
            () = self.shutdown.cancelled() => Ok(()),
        };
        self.halt.cancel();
        self.routes.processes_stopped().await;
        Ok(served?)
    }
}

/// `Host` values accepted on the MCP endpoint: loopback names, the listen
/// address itself when bound elsewhere, and the names the operator added.
/// Guards against DNS rebinding.
fn allowed_hosts(addr: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let ip = addr.ip();
    if ip.is_unspecified() && extra.is_empty() {
        // 0.0.0.0 is no name a client uses: say what will be refused.
        tracing::warn!(listen.addr = %addr, "listening on all interfaces, but only loopback Host names are accepted; name the others with --allowed-hosts");
    } else if !ip.is_loopback() && !ip.is_unspecified() {
        hosts.push(ip.to_string());
    }
    hosts.extend(extra.iter().map(|h| h.to_ascii_lowercase()));
    hosts
}

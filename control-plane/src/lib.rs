//! Hangar's control plane: holds the versioned config, persists it in an
//! embedded store or in etcd shared by several replicas, streams snapshots
//! to every connected data plane over gRPC and rolls their health reports
//! up for `hangarctl status` and a live status page.
//!
//! # Layout
//! - [`auth`]: tokens and TLS: who may call which API.
//! - `store`: the state directory (atomic, crash-safe writes), and the
//!   choice between it and etcd; `stored`: what both stores keep and say.
//! - [`etcd`]: the config key shared by replicas: compare-and-swap writes, a watch.
//! - `state`: the config in force; validates, versions and publishes applies.
//! - `replicas`: data-plane health shared between replicas through etcd.
//! - `fleet`: connected data planes, their acked versions and health reports.
//! - `status`: the health rollup per server and group, and of rate limits.
//! - `shares`: fleet-wide rate limits divided among the data planes by demand.
//! - `session_keys`: the fleet's keys for sealing session ids, stored and rotated.
//! - `api_keys`: API keys of MCP clients, issued and kept as hashes.
//! - `documents`: the store of those secrets (state directory or etcd).
//! - `admin`: the `AdminService` gRPC service (apply, status).
//! - `stream`: the `DataPlaneService` bidirectional stream.
//! - `metrics`: Prometheus metrics at `/metrics`, on the gRPC listener.
//! - `traces`: spans of applies and snapshot pushes, over OTLP.
//! - `ui`: the status page at `/` and its data, on the gRPC listener.
//! - `listener`: TLS handshakes that offer HTTP/2 and HTTP/1.1 on the one port.

pub(crate) mod admin;
pub(crate) mod api_keys;
pub mod auth;
pub(crate) mod documents;
pub mod etcd;
pub(crate) mod fleet;
pub(crate) mod listener;
pub(crate) mod metrics;
pub(crate) mod replicas;
pub(crate) mod session_keys;
pub(crate) mod shares;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod store;
pub(crate) mod stored;
pub(crate) mod stream;
pub(crate) mod traces;
pub(crate) mod ui;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hangar_proto::v1::admin_service_server::AdminServiceServer;
use hangar_proto::v1::data_plane_service_server::DataPlaneServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::auth::{Access, AdminGate, DataPlaneGate, ExposureError, ServerTls};
use crate::etcd::{EtcdSettings, EtcdStore};
use crate::fleet::Fleet;
use crate::metrics::Metrics;
use crate::replicas::Peers;
use crate::state::{ConfigState, LoadError};
use crate::store::{ConfigStore, Store};

/// Everything the control plane needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the config is kept.
    pub store: StoreLocation,
    /// A data plane silent for this long stops counting in the health
    /// rollup; a disconnected one is forgotten after it.
    pub dataplane_expiry: Duration,
    /// A member is out of rotation fleet-wide when more than this share of
    /// the data planes that report it, and at least two, see it failing.
    pub fleet_quorum: f64,
    /// Tokens of the admin and data-plane APIs.
    pub access: Access,
    /// TLS for the listener (HTTP/2 and HTTP/1.1 alike); plaintext when `None`.
    pub tls: Option<ServerTls>,
    /// How often the fleet's session key is replaced; the key before stays
    /// valid until the next rotation.
    pub session_key_rotation: Duration,
    /// Where spans of applies and snapshot pushes go; none when `None`.
    pub tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
}

impl Settings {
    /// Default of [`Settings::dataplane_expiry`]: several report periods.
    pub const DEFAULT_DATAPLANE_EXPIRY: Duration = Duration::from_secs(30);
    /// Default of [`Settings::fleet_quorum`]: a majority.
    pub const DEFAULT_FLEET_QUORUM: f64 = 0.5;
    /// How often the session key is replaced by default.
    pub const DEFAULT_SESSION_KEY_ROTATION: Duration = Duration::from_secs(7 * 24 * 3600);

    /// Settings for a state directory, with defaults for the rest.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self::with_store(StoreLocation::Dir(state_dir.into()))
    }

    /// Settings for a replica on etcd, with defaults for the rest.
    pub fn etcd(etcd: EtcdSettings) -> Self {
        Self::with_store(StoreLocation::Etcd(etcd))
    }

    fn with_store(store: StoreLocation) -> Self {
        Self {
            store,
            dataplane_expiry: Self::DEFAULT_DATAPLANE_EXPIRY,
            fleet_quorum: Self::DEFAULT_FLEET_QUORUM,
            access: Access::default(),
            tls: None,
            session_key_rotation: Self::DEFAULT_SESSION_KEY_ROTATION,
            tracer: None,
        }
    }
}

/// Where the config is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded store in this directory: a single control plane.
    Dir(PathBuf),
    /// etcd, shared by any number of replicas.
    Etcd(EtcdSettings),
}

/// Why the control plane stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store could not be opened or holds a bad config.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The listener's address could not be read.
    #[error("cannot use the listener")]
    Listener(#[source] std::io::Error),
    /// The listen address would leave an API open to the network.
    #[error(transparent)]
    Exposed(#[from] ExposureError),
    /// The gRPC server failed.
    #[error("grpc server failed")]
    Serve(#[from] tonic::transport::Error),
}

/// A control plane: its config state and its fleet.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    state: Arc<ConfigState>,
    fleet: Arc<Fleet>,
    access: Arc<Access>,
    tls: Option<ServerTls>,
    metrics: Arc<Metrics>,
    /// The other replicas, with the shared store.
    peers: Option<Peers>,
    /// The fleet's keys for sealing session ids.
    session_keys: Arc<session_keys::SessionKeys>,
    /// The API keys of MCP clients.
    api_keys: Arc<api_keys::ApiKeys>,
    /// Where spans go.
    tracer: traces::Tracer,
}

impl ControlPlane {
    /// Opens the store and loads the stored config, if any. With etcd the
    /// latest config must be readable: a replica does not start empty.
    pub async fn open(settings: &Settings) -> Result<Self, RunError> {
        let (store, location, peers, key_store) = match &settings.store {
            StoreLocation::Dir(dir) => (
                ConfigStore::Local(Store::open(dir).map_err(LoadError::from)?),
                dir.display().to_string(),
                None,
                documents::Documents::Local(dir.clone()),
            ),
            StoreLocation::Etcd(etcd) => {
                let store = EtcdStore::connect(etcd).await.map_err(LoadError::from)?;
                let location = format!("etcd {} under {}", store.endpoints(), etcd.prefix);
                // Unique per run: a restarted replica's old reports expire
                // with their lease instead of being taken over.
                let replica = uuid::Uuid::new_v4().simple().to_string();
                tracing::info!(replica.id = %replica, "replica on etcd");
                let peers = Peers::new(store.clone(), replica);
                let keys = documents::Documents::Etcd(store.clone());
                (ConfigStore::Etcd(store), location, Some(peers), keys)
            }
        };
        let state = Arc::new(ConfigState::load(store).await?);
        tracing::info!(
            config.version = state.current().version,
            config.store = %location,
            "config loaded"
        );
        let api_keys = Arc::new(
            api_keys::ApiKeys::open(key_store.clone())
                .await
                .map_err(LoadError::from)?,
        );
        let session_keys = Arc::new(
            session_keys::SessionKeys::open(key_store, settings.session_key_rotation)
                .await
                .map_err(LoadError::from)?,
        );
        let fleet =
            Arc::new(Fleet::new(settings.dataplane_expiry).with_quorum(settings.fleet_quorum));
        Ok(Self {
            metrics: Arc::new(Metrics::new(state.clone(), fleet.clone())),
            state,
            fleet,
            access: Arc::new(settings.access.clone()),
            tls: settings.tls.clone(),
            peers,
            session_keys,
            api_keys,
            tracer: settings.tracer.clone(),
        })
    }

    /// The config state (for tests that inject faults).
    pub fn state(&self) -> &Arc<ConfigState> {
        &self.state
    }

    /// Serves the gRPC API, `/metrics` and the status page (these also
    /// over HTTP/1.1, with TLS too) on an already bound listener until
    /// `shutdown` is cancelled. Refuses a non-loopback
    /// listener that would leave an API without credentials.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), RunError> {
        let addr = listener.local_addr().map_err(RunError::Listener)?;
        auth::check_exposure(addr, &self.access, self.tls.as_ref())?;
        self.log_protection(addr);
        tokio::spawn(expire_loop(self.fleet.clone(), shutdown.clone()));
        tokio::spawn(self.state.clone().follow_store(shutdown.clone()));
        if let Some(peers) = &self.peers {
            tokio::spawn(peers.clone().share(self.fleet.clone(), shutdown.clone()));
        }
        tokio::spawn(self.session_keys.clone().run(shutdown.clone()));
        tokio::spawn(self.api_keys.clone().run(shutdown.clone()));
        let shares = watch::Sender::new(Arc::default());
        let shares_rx = shares.subscribe();
        tokio::spawn(shares::run(
            self.state.clone(),
            self.fleet.clone(),
            self.peers.clone(),
            shares,
            shutdown.clone(),
        ));
        let status =
            status::Source::new(self.state.clone(), self.fleet.clone(), self.peers.clone());
        let admin = admin::Admin::new(
            self.state.clone(),
            status.clone(),
            self.metrics.clone(),
            self.api_keys.clone(),
            shutdown.clone(),
        )
        .with_tracer(self.tracer.clone());
        let data_planes = stream::DataPlanes::new(
            self.state.clone(),
            self.fleet.clone(),
            self.metrics.clone(),
            shutdown.clone(),
            shares_rx,
            self.session_keys.subscribe(),
            self.api_keys.subscribe(),
        )
        .with_tracer(self.tracer.clone());
        // The interceptors sit on the services: /metrics stays open, and
        // the status page checks the admin token itself.
        let grpc = Routes::new(AdminServiceServer::with_interceptor(
            admin,
            AdminGate::new(self.access.clone()),
        ))
        .add_service(DataPlaneServiceServer::with_interceptor(
            data_planes,
            DataPlaneGate::new(self.access.clone(), self.tls.as_ref()),
        ));
        let page = ui::Ui::new(
            status,
            self.access.clone(),
            self.tls.is_some(),
            shutdown.clone(),
        );
        let routes = grpc
            .into_axum_router()
            .merge(metrics::router(self.metrics.clone()))
            .merge(ui::router(page));
        let server = tonic::transport::Server::builder()
            // Prometheus and browsers may speak HTTP/1.1; gRPC clients get HTTP/2.
            .accept_http1(true)
            .add_routes(routes.into());
        match &self.tls {
            Some(tls) => {
                let incoming =
                    listener::tls_incoming(listener, tls.rustls_config(), shutdown.clone());
                server
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await?;
            }
            None => {
                server
                    .serve_with_incoming_shutdown(
                        TcpListenerStream::new(listener),
                        shutdown.cancelled_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Says at start how each API is protected, so an open one is never a surprise.
    fn log_protection(&self, addr: std::net::SocketAddr) {
        let tls = match &self.tls {
            Some(tls) if tls.requires_client_certs() => "mutual TLS for data planes",
            Some(_) => "TLS",
            None => "plaintext",
        };
        tracing::info!(listen.addr = %addr, transport = tls, "control plane serving");
        if self.access.admin_token.is_none() {
            tracing::warn!(listen.addr = %addr, "no --admin-token-file: anyone who can reach this loopback address can apply config");
        }
        if self.access.dataplane_token.is_none() {
            tracing::warn!(listen.addr = %addr, "no --dataplane-token-file: any local process can follow the config stream");
        }
    }
}

/// Opens the store and serves until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    ControlPlane::open(&settings)
        .await?
        .serve(listener, shutdown)
        .await
}

/// Forgets disconnected data planes once they expire.
async fn expire_loop(fleet: Arc<Fleet>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(fleet.expiry() / 4);
    loop {
        tokio::select! {
            _ = ticks.tick() => fleet.expire(),
            () = shutdown.cancelled() => return,
        }
    }
}

//! An in-process control plane on 127.0.0.1:0 with its own state directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hangar_proto::client::{ClientConfig, ControlPlaneChannel};
use hangar_proto::v1::admin_service_client::AdminServiceClient;
use hangar_proto::v1::{ApplyRequest, ApplyResponse, StatusRequest, StatusResponse};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::eventually::eventually;

/// A running control plane.
#[derive(Debug)]
pub struct ControlPlane {
    addr: SocketAddr,
    /// `None` for a replica on etcd.
    state_dir: Option<PathBuf>,
    /// Keeps a temporary state directory alive; `None` for a given directory.
    _temp: Option<tempfile::TempDir>,
    inner: hangar_control_plane::ControlPlane,
    /// `https` when the control plane serves TLS.
    scheme: &'static str,
    /// Credentials of [`ControlPlane::admin`].
    admin_client: ClientConfig,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl ControlPlane {
    /// Starts a control plane with a fresh temporary state directory.
    pub async fn start() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().to_path_buf();
        let mut cp = Self::start_in(&dir).await;
        cp._temp = Some(temp);
        cp
    }

    /// Starts a control plane on an existing state directory.
    pub async fn start_in(state_dir: &Path) -> Self {
        Self::start_with(hangar_control_plane::Settings::new(state_dir)).await
    }

    /// Starts a control plane with the given settings.
    pub async fn start_with(settings: hangar_control_plane::Settings) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let inner = hangar_control_plane::ControlPlane::open(&settings)
            .await
            .expect("open the config store");
        let token = shutdown.clone();
        let serving = inner.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, token)
                .await
                .expect("control plane runs");
        });
        Self {
            addr,
            state_dir: match &settings.store {
                hangar_control_plane::StoreLocation::Dir(dir) => Some(dir.clone()),
                hangar_control_plane::StoreLocation::Etcd(_) => None,
            },
            _temp: None,
            inner,
            scheme: if settings.tls.is_some() {
                "https"
            } else {
                "http"
            },
            admin_client: ClientConfig::default(),
            shutdown,
            task,
        }
    }

    /// Pushes `snapshot` to every data plane, bypassing validation (fault injection).
    pub fn inject_snapshot(&self, snapshot: hangar_proto::v1::Snapshot) {
        self.inner.state().inject_snapshot(snapshot);
    }

    /// Sets the token and TLS trust that [`ControlPlane::admin`] (and
    /// everything built on it) uses.
    pub fn with_admin_client(mut self, client: ClientConfig) -> Self {
        self.admin_client = client;
        self
    }

    /// The gRPC URL (`http://127.0.0.1:PORT`, or `https://` with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The Prometheus endpoint, on the gRPC listener (`https://` with TLS).
    pub fn metrics_url(&self) -> String {
        self.page_url("/metrics")
    }

    /// `path` on the listener, as a browser or scraper asks for it: the
    /// status page is `/`.
    pub fn page_url(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    /// The state directory; `None` for a replica on etcd.
    pub fn state_dir(&self) -> Option<&Path> {
        self.state_dir.as_deref()
    }

    /// An admin client.
    pub async fn admin(&self) -> AdminServiceClient<ControlPlaneChannel> {
        let channel = hangar_proto::client::connect(&self.url(), &self.admin_client)
            .await
            .expect("connect to control plane");
        AdminServiceClient::new(channel)
    }

    /// Applies a config, as `hangarctl apply` does.
    pub async fn apply(&self, yaml: &str) -> Result<ApplyResponse, tonic::Status> {
        self.apply_request(yaml, false).await
    }

    /// Applies a config as `hangarctl apply --allow-empty` does: one with no
    /// servers may replace one with some.
    pub async fn apply_allowing_empty(&self, yaml: &str) -> Result<ApplyResponse, tonic::Status> {
        self.apply_request(yaml, true).await
    }

    async fn apply_request(
        &self,
        yaml: &str,
        allow_empty: bool,
    ) -> Result<ApplyResponse, tonic::Status> {
        let request = ApplyRequest {
            yaml: yaml.to_owned(),
            source_name: "config.yaml".to_owned(),
            allow_empty,
        };
        self.admin()
            .await
            .apply(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Applies a config and waits until `data_planes` connected data planes
    /// acked the version it got; returns that version.
    pub async fn apply_and_wait(&self, yaml: &str, data_planes: usize) -> u64 {
        let version = self.apply(yaml).await.expect("apply").version;
        eventually("the data planes to ack the config", || async {
            let status = self.status().await;
            let acked = status
                .data_planes
                .iter()
                .filter(|p| p.acked_version == version)
                .count();
            (acked == data_planes).then_some(())
        })
        .await;
        version
    }

    /// The current status.
    pub async fn status(&self) -> StatusResponse {
        self.admin()
            .await
            .status(StatusRequest {})
            .await
            .expect("status")
            .into_inner()
    }

    /// Stops the control plane and waits for it; the state dir is kept
    /// when it was given.
    pub async fn stop(self) -> Option<tempfile::TempDir> {
        self.shutdown.cancel();
        self.task.await.expect("control plane task");
        self._temp
    }
}

//! Hangar's control plane: holds the versioned config, persists it in an
//! embedded store, streams snapshots to every connected data plane over gRPC
//! and rolls their health reports up for `hangarctl status`.
//!
//! # Layout
//! - [`store`]: the state directory (atomic, crash-safe writes).
//! - [`state`]: the config in force; validates, versions and publishes applies.
//! - [`fleet`]: connected data planes, their acked versions and health reports.
//! - [`status`]: the health rollup per server and group.
//! - [`admin`]: the `AdminService` gRPC service (apply, status).
//! - [`stream`]: the `DataPlaneService` bidirectional stream.

pub mod admin;
pub mod fleet;
pub mod state;
pub mod status;
pub mod store;
pub mod stream;

use std::path::PathBuf;
use std::sync::Arc;

use hangar_proto::v1::admin_service_server::AdminServiceServer;
use hangar_proto::v1::data_plane_service_server::DataPlaneServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::fleet::Fleet;
use crate::state::{ConfigState, LoadError};
use crate::store::Store;

/// Everything the control plane needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Directory of the embedded store.
    pub state_dir: PathBuf,
}

/// Why the control plane stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The state directory could not be opened or holds a bad config.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The gRPC server failed.
    #[error("grpc server failed")]
    Serve(#[from] tonic::transport::Error),
}

/// Serves the control plane on an already bound listener until `shutdown`
/// is cancelled.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let store = Store::open(&settings.state_dir).map_err(LoadError::from)?;
    let state = Arc::new(ConfigState::load(store)?);
    let current = state.current();
    tracing::info!(
        config.version = current.version,
        state.dir = %settings.state_dir.display(),
        listen.addr = ?listener.local_addr().ok(),
        "control plane started"
    );
    let fleet = Arc::new(Fleet::default());
    let admin = admin::Admin::new(state.clone(), fleet.clone());
    let data_planes = stream::DataPlanes::new(state, fleet, shutdown.clone());
    tonic::transport::Server::builder()
        .add_service(AdminServiceServer::new(admin))
        .add_service(DataPlaneServiceServer::new(data_planes))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled_owned())
        .await?;
    Ok(())
}

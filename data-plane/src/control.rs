//! The data plane's side of the control-plane stream.
//!
//! One task holds the stream: it says hello with the version it serves,
//! applies every snapshot (ACK) or keeps the last good one (NACK), and sends
//! health reports on a fixed period and whenever a member's health flips.
//! When the control plane is gone the data plane keeps serving its last
//! snapshot and reconnects ([`Reconnect`]: within a second, spread at
//! random, after a stream that worked; then capped, jittered exponential
//! backoff), trying each control-plane URL in turn.

pub(crate) mod cache;

use hangar_runtime::backoff::{Attempt, Reconnect};
use hangar_runtime::error_chain;
use std::sync::Arc;
use std::time::Duration;

use hangar_proto::client::ClientConfig;
use hangar_proto::v1::control_plane_message::Kind as Down;
use hangar_proto::v1::data_plane_message::Kind as Up;
use hangar_proto::v1::data_plane_service_client::DataPlaneServiceClient;
use hangar_proto::v1::{Ack, DataPlaneMessage, Hello, Nack, Snapshot};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::control::cache::SnapshotCache;
use crate::route::table::{Origin, Routes};

/// How often health is reported even when nothing changed.
const REPORT_INTERVAL: Duration = Duration::from_secs(2);
/// Messages waiting to go up the stream.
const UPSTREAM_BUFFER: usize = 16;

/// Who this data plane is, as told to the control plane.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// Node id, unique in the fleet.
    pub node_id: String,
    /// Address MCP clients reach this data plane on.
    pub listen_addr: String,
    /// Random per process, so the control plane tells this process
    /// reconnecting from another one started with the same node id.
    pub instance: String,
}

/// Follows the control plane until `shutdown` is cancelled.
pub(crate) async fn run(
    urls: Vec<String>,
    client_config: ClientConfig,
    identity: Identity,
    routes: Arc<Routes>,
    cache: Option<SnapshotCache>,
    shutdown: CancellationToken,
) {
    let mut reconnect = Reconnect::new();
    for url in urls.iter().cycle() {
        if shutdown.is_cancelled() {
            return;
        }
        let unreachable = |err: &tonic::Status| {
            tracing::warn!(control_plane = %url, error = %describe(err), "control plane unreachable, serving the last snapshot");
            let trouble = format!(
                "the control plane at {url} is unreachable: {}",
                describe(err)
            );
            routes.note_control_trouble(with_cache_hint(trouble, cache.is_some()));
        };
        let attempt = match follow(
            url,
            &client_config,
            &identity,
            &routes,
            cache.as_ref(),
            &shutdown,
        )
        .await
        {
            Ok(Followed::Shutdown) => return,
            Ok(Followed::Ended) => {
                tracing::warn!(control_plane = %url, "control plane stream ended, serving the last snapshot");
                Attempt::Ended
            }
            Ok(Followed::Lost(err)) => {
                unreachable(&err);
                Attempt::Lost
            }
            Err(err) if is_refusal(&err) => {
                // Retrying will not help until an operator fixes the
                // credentials, but the data plane keeps trying so it joins
                // as soon as they are fixed on either side.
                tracing::error!(control_plane = %url, error = %describe(&err), "control plane refused this data plane, serving the last snapshot");
                let trouble = format!(
                    "the control plane at {url} refused this data plane: {}",
                    describe(&err)
                );
                routes.note_control_trouble(with_cache_hint(trouble, cache.is_some()));
                Attempt::Failed
            }
            Err(err) => {
                unreachable(&err);
                Attempt::Failed
            }
        };
        let delay = reconnect.after(attempt);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Why a data plane without a config has none, for its clients: and that
/// `--cache-dir` would have served the last one, when it was not given.
fn with_cache_hint(trouble: String, cached: bool) -> String {
    if cached {
        trouble
    } else {
        format!("{trouble} (with --cache-dir, the last config would be served meanwhile)")
    }
}

/// Whether the control plane turned this data plane away (credentials)
/// rather than being unreachable.
fn is_refusal(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied | tonic::Code::AlreadyExists
    )
}

/// The status message with its causes: a TLS failure is only a
/// "transport error" until its source says which certificate was refused.
fn describe(status: &tonic::Status) -> String {
    let message = status.message();
    match std::error::Error::source(status).map(error_chain) {
        Some(causes) if causes.starts_with(message) => causes,
        Some(causes) => format!("{message}: {causes}"),
        None => message.to_owned(),
    }
}

enum Followed {
    Ended,
    /// The stream opened, then broke.
    Lost(tonic::Status),
    Shutdown,
}

/// One stream, from connect to its end.
async fn follow(
    url: &str,
    client_config: &ClientConfig,
    identity: &Identity,
    routes: &Routes,
    cache: Option<&SnapshotCache>,
    shutdown: &CancellationToken,
) -> Result<Followed, tonic::Status> {
    let channel = hangar_proto::client::connect(url, client_config)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut client = DataPlaneServiceClient::new(channel);
    let (tx, rx) = mpsc::channel(UPSTREAM_BUFFER);
    let hello = Hello {
        node_id: identity.node_id.clone(),
        build_version: env!("CARGO_PKG_VERSION").to_owned(),
        held_version: routes.load().version,
        listen_addr: identity.listen_addr.clone(),
        instance: identity.instance.clone(),
        ..Default::default()
    };
    send(&tx, Up::Hello(hello)).await;
    send(&tx, Up::Health(routes.health_report())).await;
    let mut downstream = client.stream(ReceiverStream::new(rx)).await?.into_inner();
    tracing::info!(control_plane = %url, "connected to control plane");
    let health_changed = routes.health_changed();
    let mut reports = tokio::time::interval(REPORT_INTERVAL);
    loop {
        tokio::select! {
            msg = downstream.message() => match msg {
                Err(err) => return Ok(Followed::Lost(err)),
                Ok(Some(msg)) => {
                    match msg.kind {
                        Some(Down::Snapshot(snapshot)) => {
                            send(&tx, apply(routes, cache, &snapshot)).await;
                            send(&tx, Up::Health(routes.health_report())).await;
                        }
                        Some(Down::SessionKeys(keys)) => routes.session_keys().install(&keys),
                        Some(Down::ApiKeys(keys)) => {
                            routes.api_keys().install(&keys);
                            if let Some(Err(err)) = cache.map(|c| c.save_api_keys(&keys)) {
                                tracing::warn!(error = %error_chain(&err), "cannot write the API keys to the cache");
                            }
                        }
                        Some(Down::Shares(shares)) => {
                            routes.apply_shares(&shares);
                            if let Some(Err(err)) = cache.map(|c| c.save_shares(&shares)) {
                                tracing::warn!(error = %error_chain(&err), "cannot write the rate limit shares to the cache");
                            }
                        }
                        None => {}
                    }
                }
                Ok(None) => return Ok(Followed::Ended),
            },
            _ = reports.tick() => send(&tx, Up::Health(routes.health_report())).await,
            () = health_changed.notified() => send(&tx, Up::Health(routes.health_report())).await,
            () = shutdown.cancelled() => return Ok(Followed::Shutdown),
        }
    }
}

/// Applies a snapshot, keeps it in the cache, and says how it went.
fn apply(routes: &Routes, cache: Option<&SnapshotCache>, snapshot: &Snapshot) -> Up {
    match routes.apply(snapshot, Origin::ControlPlane) {
        Ok(()) => {
            tracing::info!(
                config.version = snapshot.version,
                config.servers = snapshot.servers.len(),
                config.groups = snapshot.groups.len(),
                "config applied"
            );
            if let Some(Err(err)) = cache.map(|c| c.save(snapshot)) {
                // Serving goes on; only a restart without a control plane suffers.
                tracing::warn!(error = %error_chain(&err), "cannot write the snapshot cache");
            }
            Up::Ack(Ack {
                version: snapshot.version,
            })
        }
        Err(reason) => {
            tracing::warn!(config.version = snapshot.version, %reason, "snapshot rejected, keeping the last good one");
            Up::Nack(Nack {
                version: snapshot.version,
                reason: reason.to_string(),
            })
        }
    }
}

async fn send(tx: &mpsc::Sender<DataPlaneMessage>, kind: Up) {
    // A send only fails when the stream is gone; the read side notices.
    let _ = tx.send(DataPlaneMessage { kind: Some(kind) }).await;
}

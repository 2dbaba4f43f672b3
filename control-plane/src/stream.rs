//! The data-plane stream (`DataPlaneService.Stream`).
//!
//! Protocol: the data plane's first message is a `Hello`; the control plane
//! answers with the current snapshot unless the data plane already holds that
//! version, and then with every new snapshot. Up the stream come ACK/NACK per
//! version and periodic health reports.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use hangar_proto::v1::control_plane_message::Kind as Down;
use hangar_proto::v1::data_plane_message::Kind as Up;
use hangar_proto::v1::data_plane_service_server::DataPlaneService;
use hangar_proto::v1::{
    ControlPlaneMessage, DataPlaneMessage, Hello, Snapshot, control_plane_message,
};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::fleet::{Connection, Fleet};
use crate::metrics::Metrics;
use crate::shares::ShareTable;
use crate::state::ConfigState;
use crate::traces::{PushSpan, Tracer};
use hangar_proto::v1::{ApiKeys, SessionKeys};

/// Snapshots waiting to be written to one data plane. Snapshots are whole,
/// so a slow reader only ever needs the newest; a small bound is enough.
const DOWNSTREAM_BUFFER: usize = 4;

/// Implements `hangar.v1.DataPlaneService`.
#[derive(Debug, Clone)]
pub(crate) struct DataPlanes {
    state: Arc<ConfigState>,
    fleet: Arc<Fleet>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    /// Each data plane's shares of the fleet-wide rate limits.
    shares: watch::Receiver<Arc<ShareTable>>,
    /// The fleet's session keys.
    session_keys: watch::Receiver<Arc<SessionKeys>>,
    /// The API keys of MCP clients, as hashes.
    api_keys: watch::Receiver<Arc<ApiKeys>>,
    /// Where the spans of pushes go.
    tracer: Tracer,
}

impl DataPlanes {
    /// A data-plane service that counts its pushes in `metrics`; its streams
    /// end when `shutdown` is cancelled.
    pub(crate) fn new(
        state: Arc<ConfigState>,
        fleet: Arc<Fleet>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        shares: watch::Receiver<Arc<ShareTable>>,
        session_keys: watch::Receiver<Arc<SessionKeys>>,
        api_keys: watch::Receiver<Arc<ApiKeys>>,
    ) -> Self {
        Self {
            state,
            fleet,
            metrics,
            shutdown,
            shares,
            session_keys,
            api_keys,
            tracer: None,
        }
    }

    /// Traces snapshot pushes to `tracer`.
    pub(crate) fn with_tracer(mut self, tracer: Tracer) -> Self {
        self.tracer = tracer;
        self
    }
}

/// The last snapshot sent on one stream, when, and its span, until the
/// data plane answers for that version: shared by the task that sends and
/// the task that reads the answers, to measure the push.
type Unanswered = Arc<Mutex<Option<(u64, Instant, Option<PushSpan>)>>>;

type Downstream = Pin<Box<dyn Stream<Item = Result<ControlPlaneMessage, Status>> + Send>>;

#[tonic::async_trait]
impl DataPlaneService for DataPlanes {
    type StreamStream = Downstream;

    async fn stream(
        &self,
        request: Request<Streaming<DataPlaneMessage>>,
    ) -> Result<Response<Downstream>, Status> {
        let peer = request.remote_addr();
        let mut upstream = request.into_inner();
        let hello = match upstream.message().await? {
            Some(DataPlaneMessage {
                kind: Some(Up::Hello(hello)),
            }) if !hello.node_id.is_empty() => hello,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be a hello with a node id",
                ));
            }
        };
        let conn = match self.fleet.connect(&hello, peer) {
            Ok(conn) => conn,
            Err(in_use) => {
                tracing::warn!(node.id = %hello.node_id, peer = ?peer, "refused a second data plane with a node id in use");
                return Err(Status::already_exists(in_use.to_string()));
            }
        };
        let span = tracing::info_span!("dataplane", node.id = %hello.node_id);
        span.in_scope(|| tracing::info!(held.version = hello.held_version, "data plane connected"));

        let (tx, rx) = mpsc::channel(DOWNSTREAM_BUFFER);
        let unanswered = Unanswered::default();
        let push = push_snapshots(self.clone(), hello, tx, unanswered.clone());
        tokio::spawn(push.instrument(span.clone()));
        let recv = receive(upstream, self.clone(), conn, unanswered);
        tokio::spawn(recv.instrument(span));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Sends the current snapshot (unless the data plane holds it) and every
/// later one, until the stream or the server closes; sends it again, same
/// version, whenever the servers out of rotation fleet-wide change, so a
/// data plane that never called such a server sends it nothing.
async fn push_snapshots(
    service: DataPlanes,
    hello: Hello,
    tx: mpsc::Sender<Result<ControlPlaneMessage, Status>>,
    unanswered: Unanswered,
) {
    let DataPlanes {
        state,
        fleet,
        metrics,
        shutdown,
        mut shares,
        mut session_keys,
        mut api_keys,
        tracer,
    } = service;
    let mut snapshots = state.subscribe();
    // What this stream last told its data plane of its rate limit shares.
    let mut sent_shares = None;
    // And of the session keys and the API keys.
    let mut sent_session_keys = None;
    let mut sent_api_keys = None;
    let mut ejections = fleet.ejected();
    let mut sent = hello.held_version;
    // What this stream last told its data plane was ejected fleet-wide.
    let mut sent_ejected = Arc::default();
    loop {
        // Keys first: a data plane seals the sessions of the snapshot's
        // groups with them.
        let keys = session_keys.borrow_and_update().clone();
        if !keys.keys.is_empty() && sent_session_keys.as_ref() != Some(&keys) {
            let kind = Down::SessionKeys((*keys).clone());
            sent_session_keys = Some(keys);
            if !down(&tx, kind).await {
                return;
            }
        }
        // And the API keys, before the snapshot that may turn client
        // authentication on.
        let keys = api_keys.borrow_and_update().clone();
        if sent_api_keys.as_ref() != Some(&keys) {
            let kind = Down::ApiKeys((*keys).clone());
            sent_api_keys = Some(keys);
            if !down(&tx, kind).await {
                return;
            }
        }
        let snapshot = snapshots.borrow_and_update().clone();
        let ejected = ejections.borrow_and_update().clone();
        let news = snapshot.version != sent || ejected != sent_ejected;
        if news && snapshot.version != 0 {
            sent = snapshot.version;
            sent_ejected = ejected.clone();
            let msg = ControlPlaneMessage {
                kind: Some(control_plane_message::Kind::Snapshot(with_fleet_health(
                    &snapshot, &fleet, &ejected,
                ))),
            };
            let span = PushSpan::start(&tracer, &hello.node_id, sent, state.apply_trace(sent));
            let before = unanswered
                .lock()
                .replace((sent, metrics.snapshot_sent(), span));
            if let Some((_, _, Some(span))) = before {
                span.end("superseded", None);
            }
            if tx.send(Ok(msg)).await.is_err() {
                return; // the data plane is gone
            }
            tracing::debug!(config.version = sent, "snapshot sent");
        }
        let mine = shares.borrow_and_update().message_for(&hello.node_id);
        if let Some(mine) = mine.filter(|m| sent_shares.as_ref() != Some(m)) {
            sent_shares = Some(mine.clone());
            if !down(&tx, Down::Shares(mine)).await {
                return;
            }
        }
        tokio::select! {
            changed = shares.changed() => if changed.is_err() { return },
            changed = session_keys.changed() => if changed.is_err() { return },
            changed = api_keys.changed() => if changed.is_err() { return },
            changed = snapshots.changed() => if changed.is_err() { return },
            changed = ejections.changed() => if changed.is_err() { return },
            () = tx.closed() => return,
            () = shutdown.cancelled() => return,
        }
    }
}

/// Sends one message down the stream; false when the data plane is gone.
async fn down(tx: &mpsc::Sender<Result<ControlPlaneMessage, Status>>, kind: Down) -> bool {
    let msg = ControlPlaneMessage { kind: Some(kind) };
    tx.send(Ok(msg)).await.is_ok()
}

/// The snapshot with the servers that every data plane sees failing marked,
/// so that a data plane that has not probed them yet starts them out of
/// rotation.
/// Group members whose server is `ejected` (a quorum of the data planes
/// sees it failing) are marked not eligible, so every data plane leaves
/// them out of rotation.
fn with_fleet_health(snapshot: &Snapshot, fleet: &Fleet, ejected: &BTreeSet<String>) -> Snapshot {
    let unhealthy = fleet.unhealthy_everywhere();
    let mut snapshot = snapshot.clone();
    for server in &mut snapshot.servers {
        server.fleet_unhealthy = unhealthy.contains(&server.id);
    }
    for member in snapshot.groups.iter_mut().flat_map(|g| &mut g.members) {
        member.eligible = !ejected.contains(&member.server_id);
    }
    snapshot
}

/// Reads ACK/NACK and health reports until the data plane disconnects.
async fn receive(
    mut upstream: Streaming<DataPlaneMessage>,
    service: DataPlanes,
    conn: Connection,
    unanswered: Unanswered,
) {
    let DataPlanes {
        fleet,
        metrics,
        shutdown,
        ..
    } = service;
    // The send time of `version` if it is the last one sent; an answer for
    // an older version says nothing about how long the push took.
    let answered = |version: u64, outcome: &'static str, reason: Option<&str>| {
        let mut unanswered = unanswered.lock();
        match unanswered.take() {
            Some((sent, at, span)) if sent == version => {
                if let Some(span) = span {
                    span.end(outcome, reason);
                }
                Some(at)
            }
            other => {
                *unanswered = other;
                None
            }
        }
    };
    loop {
        let msg = tokio::select! {
            msg = upstream.message() => msg,
            () = shutdown.cancelled() => break,
        };
        match msg {
            Ok(Some(DataPlaneMessage { kind: Some(kind) })) => match kind {
                Up::Ack(ack) => {
                    tracing::info!(config.version = ack.version, "data plane acked");
                    // Before the fleet records it: whoever sees the ACK
                    // in the status finds it measured too.
                    if let Some(sent) = answered(ack.version, "ack", None) {
                        metrics.acked(sent);
                    }
                    fleet.ack(&conn, ack.version);
                }
                Up::Nack(nack) => {
                    tracing::warn!(config.version = nack.version, reason = %nack.reason, "data plane rejected snapshot");
                    answered(nack.version, "nack", Some(&nack.reason));
                    metrics.nacked();
                    fleet.nack(&conn, nack.version, nack.reason);
                }
                Up::Health(report) => fleet.report(&conn, report),
                Up::Hello(_) => tracing::debug!("ignoring repeated hello"),
            },
            Ok(Some(DataPlaneMessage { kind: None })) => {}
            Ok(None) => break,
            Err(status) => {
                tracing::debug!(error = %status, "stream error");
                break;
            }
        }
    }
    if let Some((_, _, Some(span))) = unanswered.lock().take() {
        span.end("disconnected", None);
    }
    fleet.disconnect(&conn);
    tracing::info!("data plane disconnected");
}

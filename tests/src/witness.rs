//! A data plane simulated over the control plane's real gRPC stream, which
//! reports a health view the test chooses: so a test can have several data
//! planes see a member failing while the real data plane under test can
//! reach it.

use std::time::Duration;

use hangar_proto::v1::data_plane_message::Kind as Up;
use hangar_proto::v1::data_plane_service_client::DataPlaneServiceClient;
use hangar_proto::v1::{Ack, DataPlaneMessage, HealthReport, Hello, MemberHealth};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How often the witness repeats its report, well within any expiry.
const REPORT_EVERY: Duration = Duration::from_millis(500);

/// A simulated data plane; its stream ends when this is dropped.
#[derive(Debug)]
pub struct Witness {
    task: JoinHandle<()>,
}

impl Witness {
    /// Connects as `node_id` to the control plane at `cp_url` and reports
    /// each `(server id, healthy)` of `view`, ACKing every snapshot.
    pub async fn connect(cp_url: &str, node_id: &str, view: &[(&str, bool)]) -> Self {
        let mut client = DataPlaneServiceClient::connect(cp_url.to_owned())
            .await
            .expect("connect to the control plane");
        let report = HealthReport {
            members: view
                .iter()
                .map(|(id, healthy)| MemberHealth {
                    server_id: (*id).into(),
                    healthy: *healthy,
                    consecutive_failures: u32::from(!healthy),
                    ..Default::default()
                })
                .collect(),
            groups: Vec::new(),
            limits: Vec::new(),
        };
        let (tx, rx) = mpsc::channel(16);
        let up = |kind| DataPlaneMessage { kind: Some(kind) };
        let hello = Hello {
            node_id: node_id.into(),
            ..Default::default()
        };
        tx.send(up(Up::Hello(hello))).await.expect("queue hello");
        tx.send(up(Up::Health(report.clone())))
            .await
            .expect("queue report");
        let mut down = client
            .stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("open the stream")
            .into_inner();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(REPORT_EVERY);
            loop {
                tokio::select! {
                    message = down.message() => {
                        let Ok(Some(message)) = message else { return };
                        if let Some(hangar_proto::v1::control_plane_message::Kind::Snapshot(s)) =
                            message.kind
                        {
                            let ack = up(Up::Ack(Ack { version: s.version }));
                            if tx.send(ack).await.is_err() {
                                return;
                            }
                        }
                    }
                    _ = ticks.tick() => {
                        if tx.send(up(Up::Health(report.clone()))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Self { task }
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

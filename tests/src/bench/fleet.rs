//! Simulated data planes for `hangar-fleet-bench`.
//!
//! Each follows the control plane's stream as a data plane does: a hello
//! with the version it holds, a health report at once, then every report
//! interval and after every snapshot, an ACK for every snapshot; and when the stream ends or
//! breaks, or a connection attempt fails, it waits as a data plane waits
//! ([`Reconnect`]) and tries again. Every time a plane is seen holding a
//! version on a stream (the stream's first message for the version it said
//! hello with, then each snapshot), it sends a [`Sighting`] to the bench.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hangar_proto::client::{ClientConfig, endpoint};
use hangar_proto::v1::control_plane_message::Kind as Down;
use hangar_proto::v1::data_plane_message::Kind as Up;
use hangar_proto::v1::data_plane_service_client::DataPlaneServiceClient;
use hangar_proto::v1::{Ack, DataPlaneMessage, HealthReport, Hello, MemberHealth};
use hangar_runtime::backoff::{Attempt, Reconnect};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// A simulated data plane seen holding a version.
#[derive(Debug, Clone, Copy)]
pub struct Sighting {
    /// Which plane (0..N).
    pub plane: usize,
    /// Which of the plane's streams, from 1.
    pub stream: u32,
    /// The version it holds.
    pub version: u64,
    /// When the attempt that opened this stream started.
    pub attempt: Instant,
    /// When that attempt had its connection (for planes sharing one, when
    /// the stream was asked for).
    pub connected: Instant,
    /// When the control plane answered the stream's request.
    pub opened: Instant,
    /// When it was seen.
    pub at: Instant,
}

/// Attempts of the whole simulated fleet, for the bench's report.
#[derive(Debug, Default)]
pub struct Attempts {
    /// Attempts started.
    pub started: AtomicU64,
    /// Attempts that failed before the stream opened.
    pub failed: AtomicU64,
}

/// How the simulated planes reach the control plane and behave.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// The control plane's URL.
    pub url: String,
    /// Planes per connection: 1 is what real data planes do, each with its
    /// own connection (and a new one per attempt); more share one
    /// connection, which costs the bench fewer sockets.
    pub per_connection: usize,
    /// Health reports after the first, as often as a data plane sends them;
    /// `None` sends only the first.
    pub report_interval: Option<Duration>,
    /// Say hello holding no version on every stream after the first, as a
    /// data plane that restarted without a cache does, so that each
    /// reconnect carries a snapshot.
    pub forget_on_reconnect: bool,
}

/// Starts `planes` simulated data planes; they run until the runtime ends
/// or `sightings` is dropped.
pub fn spawn(
    planes: usize,
    options: &FleetOptions,
    sightings: mpsc::UnboundedSender<Sighting>,
    attempts: Arc<Attempts>,
) -> anyhow::Result<()> {
    let endpoint = endpoint(&options.url, &ClientConfig::default())?;
    for first in (0..planes).step_by(options.per_connection.max(1)) {
        let link = if options.per_connection > 1 {
            Link::Shared(endpoint.connect_lazy())
        } else {
            Link::Own(Box::new(endpoint.clone()))
        };
        for plane in first..(first + options.per_connection.max(1)).min(planes) {
            let plane = Plane {
                index: plane,
                link: link.clone(),
                options: options.clone(),
                sightings: sightings.clone(),
                attempts: attempts.clone(),
                held: 0,
                streams: 0,
            };
            tokio::spawn(plane.run());
        }
    }
    Ok(())
}

/// Where a plane gets its connection.
#[derive(Debug, Clone)]
enum Link {
    /// A new connection per attempt, as a data plane makes.
    Own(Box<Endpoint>),
    /// One connection of several planes, re-established when it breaks.
    Shared(Channel),
}

impl Link {
    async fn channel(&self) -> Result<Channel, tonic::transport::Error> {
        match self {
            Self::Own(endpoint) => endpoint.connect().await,
            Self::Shared(channel) => Ok(channel.clone()),
        }
    }
}

struct Plane {
    index: usize,
    link: Link,
    options: FleetOptions,
    sightings: mpsc::UnboundedSender<Sighting>,
    attempts: Arc<Attempts>,
    /// The version it holds.
    held: u64,
    /// Streams opened so far.
    streams: u32,
}

impl Plane {
    async fn run(mut self) {
        let mut reconnect = Reconnect::new();
        while !self.sightings.is_closed() {
            self.attempts.started.fetch_add(1, Ordering::Relaxed);
            let attempt = self.follow().await;
            tokio::time::sleep(reconnect.after(attempt)).await;
        }
    }

    /// One attempt: connect, follow the stream until it ends or breaks.
    async fn follow(&mut self) -> Attempt {
        let attempt = Instant::now();
        let failed = || {
            self.attempts.failed.fetch_add(1, Ordering::Relaxed);
            Attempt::Failed
        };
        let Ok(channel) = self.link.channel().await else {
            return failed();
        };
        let connected = Instant::now();
        let mut client = DataPlaneServiceClient::new(channel);
        if self.streams > 0 && self.options.forget_on_reconnect {
            self.held = 0;
        }
        let (tx, rx) = mpsc::channel(8);
        let up = |kind| DataPlaneMessage { kind: Some(kind) };
        let hello = Hello {
            node_id: format!("sim-{}", self.index),
            held_version: self.held,
            ..Default::default()
        };
        // The channel holds both; the stream has not started yet.
        let _ = tx.try_send(up(Up::Hello(hello)));
        let _ = tx.try_send(up(Up::Health(report())));
        let Ok(response) = client.stream(ReceiverStream::new(rx)).await else {
            return failed();
        };
        let opened = Instant::now();
        self.streams += 1;
        let mut down = response.into_inner();
        let mut reports = self.options.report_interval.map(|period| {
            let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        let mut first = true;
        loop {
            let msg = tokio::select! {
                msg = down.message() => msg,
                _ = tick(&mut reports) => {
                    let _ = tx.send(up(Up::Health(report()))).await;
                    continue;
                }
            };
            let msg = match msg {
                Ok(Some(msg)) => msg,
                Ok(None) => return Attempt::Ended,
                Err(_) => return Attempt::Lost,
            };
            let snapshot = match msg.kind {
                Some(Down::Snapshot(snapshot)) => Some(snapshot.version),
                _ => None,
            };
            if let Some(version) = snapshot {
                self.held = version;
                // As a data plane does: the answer, then its health under
                // the new config.
                let _ = tx.send(up(Up::Ack(Ack { version }))).await;
                let _ = tx.send(up(Up::Health(report()))).await;
            }
            if (first || snapshot.is_some()) && self.held != 0 {
                let _ = self.sightings.send(Sighting {
                    plane: self.index,
                    stream: self.streams,
                    version: self.held,
                    attempt,
                    connected,
                    opened,
                    at: Instant::now(),
                });
            }
            first = false;
        }
    }
}

/// The next report tick, or never without periodic reports.
async fn tick(reports: &mut Option<tokio::time::Interval>) {
    match reports {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Every member healthy, as a data plane reports the recipe's three.
fn report() -> HealthReport {
    HealthReport {
        members: ["my-mcp", "my-mcp-backup", "my-mcp-3"]
            .iter()
            .map(|id| MemberHealth {
                server_id: (*id).into(),
                healthy: true,
                ..Default::default()
            })
            .collect(),
        groups: Vec::new(),
        limits: Vec::new(),
    }
}

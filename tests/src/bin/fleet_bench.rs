//! `hangar-fleet-bench`: how fast one control plane pushes a config change
//! to a large fleet, and what the fleet costs it.
//!
//! Starts the release `hangar-control-plane` binary (from the same target
//! directory as this bench) on loopback, opens N simulated data-plane
//! streams (hello, ACK per snapshot, one health report), applies a config,
//! then applies a change and measures, per stream, the time from the apply
//! to receiving the new snapshot. Prints p50/p99/max, the control plane's
//! RSS with all streams open, and its CPU time. Not a test: nothing is
//! asserted.
//!
//! ```sh
//! cargo build --release --bins
//! target/release/hangar-fleet-bench --streams 1000
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use hangar_proto::v1::admin_service_client::AdminServiceClient;
use hangar_proto::v1::data_plane_message::Kind as Up;
use hangar_proto::v1::data_plane_service_client::DataPlaneServiceClient;
use hangar_proto::v1::{
    Ack, ApplyRequest, DataPlaneMessage, HealthReport, Hello, MemberHealth, StatusRequest,
};
use hangar_tests::configs::GroupConfig;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tonic::transport::Channel;

/// Streams share connections like data planes behind one NAT would not;
/// this keeps the bench's own socket count reasonable while staying well
/// under HTTP/2's default concurrent-stream limit.
const STREAMS_PER_CONNECTION: usize = 100;

struct Args {
    streams: usize,
    control_plane_bin: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let mut streams = 1000;
    let mut bin = std::env::current_exe()?.with_file_name("hangar-control-plane");
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--streams" => streams = it.next().context("--streams needs a number")?.parse()?,
            "--control-plane-bin" => {
                bin = it
                    .next()
                    .context("--control-plane-bin needs a path")?
                    .into()
            }
            other => bail!("unknown argument {other} (use --streams N, --control-plane-bin PATH)"),
        }
    }
    Ok(Args {
        streams,
        control_plane_bin: bin,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    if !args.control_plane_bin.exists() {
        bail!(
            "{} not found: run `cargo build --release --bins` first",
            args.control_plane_bin.display()
        );
    }
    let state = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut cp = tokio::process::Command::new(&args.control_plane_bin)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
        .arg(state.path())
        .env("HANGAR_LOG", "warn")
        .kill_on_drop(true)
        .spawn()?;
    let pid = cp.id().context("control plane pid")?;
    let mut admin = connect_admin(&url).await?;
    let config = |weight: u32| {
        let mut c = GroupConfig::recipe(&[
            "http://127.0.0.1:1".into(),
            "http://127.0.0.1:2".into(),
            "http://127.0.0.1:3".into(),
        ]);
        c.members[0].weight = weight;
        c.yaml()
    };
    admin
        .apply(ApplyRequest {
            yaml: config(1),
            source_name: "bench.yaml".into(),
            allow_empty: false,
        })
        .await?;

    let (start_tx, start_rx) = watch::channel(None::<Instant>);
    let (done_tx, mut done_rx) = mpsc::channel::<Duration>(args.streams);
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(args.streams);
    let connect_started = Instant::now();
    for conn in 0..args.streams.div_ceil(STREAMS_PER_CONNECTION) {
        let channel = Channel::from_shared(url.clone())?.connect().await?;
        let first = conn * STREAMS_PER_CONNECTION;
        for i in first..(first + STREAMS_PER_CONNECTION).min(args.streams) {
            let client = DataPlaneServiceClient::new(channel.clone());
            tokio::spawn(simulated_data_plane(
                i,
                client,
                start_rx.clone(),
                ready_tx.clone(),
                done_tx.clone(),
            ));
        }
    }
    for _ in 0..args.streams {
        tokio::time::timeout(Duration::from_secs(60), ready_rx.recv())
            .await?
            .context("a stream failed")?;
    }
    let connected_in = connect_started.elapsed();
    let (rss_mb, cpu_before) = (rss_mb(pid)?, cpu_seconds(pid)?);

    let applied_at = Instant::now();
    start_tx.send_replace(Some(applied_at));
    admin
        .apply(ApplyRequest {
            yaml: config(3),
            source_name: "bench.yaml".into(),
            allow_empty: false,
        })
        .await?;
    let mut latencies = Vec::with_capacity(args.streams);
    for _ in 0..args.streams {
        let latency = tokio::time::timeout(Duration::from_secs(60), done_rx.recv())
            .await?
            .context("a stream failed")?;
        latencies.push(latency);
    }
    let all_received_in = applied_at.elapsed();
    let cpu_push = cpu_seconds(pid)? - cpu_before;
    // The control plane's own view: poll until it has every stream's ACK.
    let mut acked = 0;
    for _ in 0..3000 {
        let status = admin.status(StatusRequest {}).await?.into_inner();
        acked = status
            .data_planes
            .iter()
            .filter(|p| p.acked_version == status.version)
            .count();
        if acked == args.streams {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cp_has_all_acks_in = applied_at.elapsed();

    latencies.sort();
    let pct = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "hangar-fleet-bench: {} simulated data planes, one control plane ({})",
        args.streams,
        args.control_plane_bin.display()
    );
    println!("  streams connected and acked v1 in    {connected_in:>10.1?}");
    println!(
        "  apply v2 -> snapshot at data plane   p50 {:>8.1?}  p99 {:>8.1?}  max {:>8.1?}",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!("  apply v2 -> every stream has v2      {all_received_in:>10.1?}");
    println!(
        "  apply v2 -> control plane has {acked}/{} ACKs {cp_has_all_acks_in:>8.1?} (polled every 10 ms)",
        args.streams
    );
    println!("  control plane RSS with all streams   {rss_mb:>10.1} MB");
    println!("  control plane CPU for the push       {cpu_push:>10.3} s");
    cp.kill().await?;
    Ok(())
}

async fn connect_admin(url: &str) -> anyhow::Result<AdminServiceClient<Channel>> {
    for _ in 0..200 {
        if let Ok(client) = AdminServiceClient::connect(url.to_owned()).await {
            return Ok(client);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("control plane did not start at {url}")
}

/// One simulated data plane: hello, ACK every snapshot, one health report;
/// reports when it got v1 (ready) and how long after the apply it got v2.
async fn simulated_data_plane(
    i: usize,
    mut client: DataPlaneServiceClient<Channel>,
    start: watch::Receiver<Option<Instant>>,
    ready: mpsc::Sender<()>,
    done: mpsc::Sender<Duration>,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel(8);
    let up = |kind| DataPlaneMessage { kind: Some(kind) };
    tx.send(up(Up::Hello(Hello {
        node_id: format!("sim-{i}"),
        ..Default::default()
    })))
    .await?;
    let report = HealthReport {
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
    };
    tx.send(up(Up::Health(report))).await?;
    let mut down = client
        .stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    while let Some(msg) = down.message().await? {
        let Some(hangar_proto::v1::control_plane_message::Kind::Snapshot(snapshot)) = msg.kind
        else {
            continue;
        };
        tx.send(up(Up::Ack(Ack {
            version: snapshot.version,
        })))
        .await?;
        let applied_at = *start.borrow();
        match applied_at {
            None => ready.send(()).await?,
            Some(applied_at) => {
                done.send(applied_at.elapsed()).await?;
            }
        }
    }
    Ok(())
}

fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .context("VmRSS")?
        .parse()?;
    Ok(kb / 1024.0)
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').context("stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

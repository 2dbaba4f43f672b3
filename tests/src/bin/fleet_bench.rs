//! `hangar-fleet-bench`: how fast one control plane pushes a config change
//! to a large fleet, how fast a restarted one has the fleet back, and what
//! the fleet costs it.
//!
//! Starts the release `hangar-control-plane` binary (from the same target
//! directory as this bench) on loopback, applies a config and starts N
//! simulated data planes (`hangar_tests::bench::fleet`: hello, ACK per
//! snapshot, health reports, reconnects as a data plane does) all at once.
//! It measures how long until every plane holds v1, then applies a change
//! and measures, per plane, the time from the apply to receiving the new
//! snapshot. With `--restart` it then kills the control plane (SIGKILL),
//! starts it again on the same port and state directory, and measures per
//! plane the time from the restart until it holds the current version on a
//! new stream, and from the start of the attempt that opened that stream.
//! Prints p50/p99/max, the control plane's RSS and CPU time, and the
//! kernel's count of connections the listener had no room for. Not a
//! test: nothing is asserted.
//!
//! ```sh
//! cargo build --release --bins
//! target/release/hangar-fleet-bench --streams 1000
//! target/release/hangar-fleet-bench --streams 10000 --restart
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use hangar_proto::v1::admin_service_client::AdminServiceClient;
use hangar_proto::v1::{ApplyRequest, StatusRequest};
use hangar_tests::bench::fleet::{self, Attempts, FleetOptions, Sighting};
use hangar_tests::bench::procfs::{cpu_seconds, rss_mib};
use hangar_tests::configs::GroupConfig;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::Channel;

/// Ten thousand simulated data planes allocate and free on every message;
/// with the system allocator the bench spent a fifth of its CPU in it,
/// CPU the control plane it measures shares.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long any phase may take before the bench gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

struct Args {
    streams: usize,
    per_connection: usize,
    report_interval: Option<Duration>,
    restart: bool,
    forget: bool,
    control_plane_bin: PathBuf,
}

const USAGE: &str = "use --streams N, --streams-per-connection N (1: a connection per \
    data plane, as real ones), --report-interval SECONDS (0: only the first report), \
    --restart, --forget (with --restart: reconnect holding no version), \
    --control-plane-bin PATH";

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        streams: 1000,
        per_connection: 1,
        // A data plane's report interval.
        report_interval: Some(Duration::from_secs(2)),
        restart: false,
        forget: false,
        control_plane_bin: std::env::current_exe()?.with_file_name("hangar-control-plane"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--streams" => args.streams = value()?.parse()?,
            "--streams-per-connection" => args.per_connection = value()?.parse::<usize>()?.max(1),
            "--report-interval" => {
                let seconds: f64 = value()?.parse()?;
                args.report_interval = (seconds > 0.0).then(|| Duration::from_secs_f64(seconds));
            }
            "--restart" => args.restart = true,
            "--forget" => args.forget = true,
            "--control-plane-bin" => args.control_plane_bin = value()?.into(),
            other => bail!("unknown argument {other} ({USAGE})"),
        }
    }
    Ok(args)
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
    // A socket per simulated data plane, and more while they reconnect.
    hangar_runtime::raise_open_files_limit();
    let state = tempfile::tempdir()?;
    let port = hangar_tests::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut cp = start(&args.control_plane_bin, port, state.path())?;
    let pid = cp.id().context("control plane pid")?;
    let mut admin = connect_admin(&url).await?;
    apply(&mut admin, 1).await?;

    let (sightings_tx, mut sightings) = mpsc::unbounded_channel();
    let attempts = Arc::new(Attempts::default());
    let options = FleetOptions {
        url: url.clone(),
        per_connection: args.per_connection,
        report_interval: args.report_interval,
        forget_on_reconnect: args.forget,
    };
    let connect_started = Instant::now();
    fleet::spawn(args.streams, &options, sightings_tx, attempts.clone())?;
    let joined = wait_for(&mut sightings, args.streams, |s| s.version == 1).await?;
    let connected_in = latest(&joined) - connect_started;
    let join_times: Vec<Duration> = joined.iter().map(|s| s.at - connect_started).collect();
    let (rss_mb, cpu_before) = (rss_mib(pid)?, cpu_seconds(pid)?);

    let applied_at = Instant::now();
    apply(&mut admin, 2).await?;
    let pushed = wait_for(&mut sightings, args.streams, |s| s.version == 2).await?;
    let all_received_in = latest(&pushed) - applied_at;
    let latencies: Vec<Duration> = pushed.iter().map(|s| s.at - applied_at).collect();
    let cpu_push = cpu_seconds(pid)? - cpu_before;
    // The control plane's own view: poll until it has every stream's ACK.
    let mut acked = 0;
    for _ in 0..3000 {
        acked = acked_count(&mut admin, 2).await?;
        if acked == args.streams {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cp_has_all_acks_in = applied_at.elapsed();

    println!(
        "hangar-fleet-bench: {} simulated data planes, {} per connection, one control plane ({})",
        args.streams,
        args.per_connection,
        args.control_plane_bin.display()
    );
    println!("  start -> every plane holds v1        {connected_in:>10.1?}");
    println!(
        "  start -> plane holds v1              {}",
        spread(join_times)
    );
    println!(
        "  attempts to connect                  {:>10} ({} failed)",
        attempts.started.load(Ordering::Relaxed),
        attempts.failed.load(Ordering::Relaxed)
    );
    println!(
        "  apply v2 -> snapshot at data plane   {}",
        spread(latencies)
    );
    println!("  apply v2 -> every stream has v2      {all_received_in:>10.1?}");
    println!(
        "  apply v2 -> control plane has {acked}/{} ACKs {cp_has_all_acks_in:>8.1?} (polled every 10 ms)",
        args.streams
    );
    println!("  control plane RSS with all streams   {rss_mb:>10.1} MB");
    println!("  control plane CPU for the push       {cpu_push:>10.3} s");
    if !args.restart {
        cp.kill().await?;
        return Ok(());
    }

    drop(admin);
    let (started_before, failed_before) = (
        attempts.started.load(Ordering::Relaxed),
        attempts.failed.load(Ordering::Relaxed),
    );
    let (overflows_before, bench_cpu_before) = (listen_overflows(), own_cpu()?);
    // SIGKILL: the control plane gets no chance to close a stream.
    cp.kill().await?;
    let restarted_at = Instant::now();
    let mut cp = start(&args.control_plane_bin, port, state.path())?;
    let pid = cp.id().context("control plane pid")?;
    let back = wait_for(&mut sightings, args.streams, |s| {
        s.version == 2 && s.at >= restarted_at
    })
    .await?;
    let (rss_mb, cpu) = (rss_mib(pid)?, cpu_seconds(pid)?);
    let bench_cpu = own_cpu()? - bench_cpu_before;
    let overflows = listen_overflows() - overflows_before;
    let all_back_in = latest(&back) - restarted_at;
    let first_back_in = back.iter().map(|s| s.at).min().unwrap_or(restarted_at) - restarted_at;
    let since_restart: Vec<Duration> = back.iter().map(|s| s.at - restarted_at).collect();
    let since_attempt: Vec<Duration> = back.iter().map(|s| s.at - s.attempt).collect();
    let connecting: Vec<Duration> = back.iter().map(|s| s.connected - s.attempt).collect();
    let opening: Vec<Duration> = back.iter().map(|s| s.opened - s.connected).collect();
    let answering: Vec<Duration> = back.iter().map(|s| s.at - s.opened).collect();
    let attempt_began: Vec<Duration> = back
        .iter()
        .map(|s| s.attempt.saturating_duration_since(restarted_at))
        .collect();
    let mut admin = connect_admin(&url).await?;
    let listed = acked_count(&mut admin, 2).await?;
    println!(
        "  restart{}: kill -9, started again on the same port and state",
        if args.forget {
            " (planes forget v2)"
        } else {
            ""
        }
    );
    println!("  restart -> first plane holds v2      {first_back_in:>10.1?}");
    println!("  restart -> every plane holds v2      {all_back_in:>10.1?}");
    println!(
        "  restart -> plane holds v2            {}",
        spread(since_restart)
    );
    println!(
        "  restart -> its last attempt began    {}",
        spread(attempt_began)
    );
    println!(
        "  its last attempt -> holds v2         {}",
        spread(since_attempt)
    );
    println!(
        "    connecting                         {}",
        spread(connecting)
    );
    println!("    then the stream answered           {}", spread(opening));
    println!(
        "    then its first message             {}",
        spread(answering)
    );
    println!(
        "  attempts to reconnect                {:>10} ({} failed)",
        attempts.started.load(Ordering::Relaxed) - started_before,
        attempts.failed.load(Ordering::Relaxed) - failed_before
    );
    println!("  connections the listener dropped     {overflows:>10}");
    println!("  control plane lists                  {listed:>10} planes that acked v2");
    println!("  control plane RSS after the storm    {rss_mb:>10.1} MB");
    println!("  control plane CPU, start to all back {cpu:>10.3} s");
    println!("  bench CPU, restart to all back       {bench_cpu:>10.3} s");
    cp.kill().await?;
    Ok(())
}

/// The release control plane on `port` with state in `state`.
fn start(bin: &Path, port: u16, state: &Path) -> anyhow::Result<Child> {
    Ok(tokio::process::Command::new(bin)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
        .arg(state)
        .env("HANGAR_LOG", "warn")
        .kill_on_drop(true)
        .spawn()?)
}

/// Applies the recipe with its first member's weight as the change.
async fn apply(admin: &mut AdminServiceClient<Channel>, weight: u32) -> anyhow::Result<()> {
    let mut config = GroupConfig::recipe(&[
        "http://127.0.0.1:1".into(),
        "http://127.0.0.1:2".into(),
        "http://127.0.0.1:3".into(),
    ]);
    config.members[0].weight = weight;
    admin
        .apply(ApplyRequest {
            yaml: config.yaml(),
            source_name: "bench.yaml".into(),
            allow_empty: false,
        })
        .await?;
    Ok(())
}

/// Data planes the control plane lists as having acked `version`.
async fn acked_count(
    admin: &mut AdminServiceClient<Channel>,
    version: u64,
) -> anyhow::Result<usize> {
    let status = admin.status(StatusRequest {}).await?.into_inner();
    Ok(status
        .data_planes
        .iter()
        .filter(|p| p.acked_version == version)
        .count())
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

/// The first sighting of every plane that is `wanted`.
async fn wait_for(
    sightings: &mut mpsc::UnboundedReceiver<Sighting>,
    planes: usize,
    wanted: impl Fn(&Sighting) -> bool,
) -> anyhow::Result<Vec<Sighting>> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let mut seen: Vec<Option<Sighting>> = vec![None; planes];
    let mut count = 0;
    while count < planes {
        let sighting = tokio::time::timeout_at(deadline, sightings.recv())
            .await
            .with_context(|| format!("only {count} of {planes} planes in {PHASE_TIMEOUT:?}"))?
            .context("the simulated planes stopped")?;
        if wanted(&sighting) && seen[sighting.plane].is_none() {
            seen[sighting.plane] = Some(sighting);
            count += 1;
        }
    }
    Ok(seen.into_iter().flatten().collect())
}

fn latest(sightings: &[Sighting]) -> Instant {
    sightings
        .iter()
        .map(|s| s.at)
        .max()
        .expect("at least one plane")
}

/// p50, p99 and max.
fn spread(mut times: Vec<Duration>) -> String {
    times.sort();
    let pct = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "p50 {:>8.1?}  p99 {:>8.1?}  max {:>8.1?}",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    )
}

fn own_cpu() -> anyhow::Result<f64> {
    Ok(cpu_seconds(std::process::id())?)
}

/// The kernel's count of connections refused for a full accept queue
/// (`TcpExt: ListenOverflows`), machine-wide; 0 when unreadable.
fn listen_overflows() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (tcp_ext.next(), tcp_ext.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

//! `hangar-chaos-bench`: what clients see while members fail, and how fast
//! the data plane takes a failing member out of rotation and back.
//!
//! Starts three members (`examples/python/server.py`, official MCP Python
//! SDK, stateful Streamable HTTP), the release `hangar-control-plane` and
//! one `hangar-data-plane` from `--bin-dir`, applies a round-robin group
//! over the members, and runs 4 legacy-session, 4 session-less 2026-07-28
//! and 4 `hangar_call` clients in closed loops for the whole run. Then,
//! one at a time with a baseline before and a watch after, it kills,
//! stops, restarts and slows a member and kills the control plane, and
//! reports per fault the failed calls by cause, session errors, time out
//! of and back into rotation (from `/metrics` every 100 ms) and calls/s.
//! Not a test: nothing is asserted. See `hangar_tests::chaos` for the rules.
//!
//! ```sh
//! scripts/python-env && cargo build --release --bins
//! target/release/hangar-chaos-bench [--bin-dir DIR] [--faults kill,stop,restart,slow,cp] [--json FILE]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use hangar_tests::chaos::clients::{Clients, Log};
use hangar_tests::chaos::faults::{self, Durations, Fault};
use hangar_tests::chaos::hangar::{self, Hangar};
use hangar_tests::chaos::member::Member;
use hangar_tests::chaos::proc::wait_for;
use hangar_tests::chaos::report;
use hangar_tests::chaos::rotation::Rotation;
use serde_json::{Value, json};

const USAGE: &str = "usage: hangar-chaos-bench [--bin-dir DIR] [--faults kill,stop,restart,slow,cp]
  [--baseline SECS (10)] [--watch SECS (30)] [--fault-seconds SECS (20: stop and slow)]
  [--kill-down SECS (5)] [--cp-down SECS (10)] [--slow-latency-ms MS (1500)]
  [--clients-per-kind N (4)] [--tool sleep|add (sleep)] [--sleep-ms MS (50)]
  [--error-pause-ms MS (50)] [--json FILE] [--log-dir DIR]";

#[derive(Debug)]
struct Args {
    bin_dir: PathBuf,
    faults: Vec<Fault>,
    baseline: Duration,
    watch: Duration,
    durations: Durations,
    per_kind: usize,
    tool: String,
    sleep_ms: u64,
    error_pause: Duration,
    json: Option<PathBuf>,
    log_dir: Option<PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        bin_dir: std::env::current_exe()?
            .parent()
            .context("bin dir")?
            .to_path_buf(),
        faults: vec![
            Fault::Kill,
            Fault::Stop,
            Fault::Restart,
            Fault::Slow,
            Fault::Cp,
        ],
        baseline: Duration::from_secs(10),
        watch: Duration::from_secs(30),
        durations: Durations {
            kill_down: Duration::from_secs(5),
            stop_for: Duration::from_secs(20),
            slow_for: Duration::from_secs(20),
            slow_latency_ms: 1500,
            cp_down: Duration::from_secs(10),
        },
        per_kind: 4,
        tool: "sleep".into(),
        sleep_ms: 50,
        error_pause: Duration::from_millis(50),
        json: None,
        log_dir: None,
    };
    let secs = |v: String| -> anyhow::Result<Duration> { Ok(Duration::from_secs_f64(v.parse()?)) };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bin-dir" => args.bin_dir = value()?.into(),
            "--faults" => {
                args.faults = value()?
                    .split(',')
                    .map(Fault::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--baseline" => args.baseline = secs(value()?)?,
            "--watch" => args.watch = secs(value()?)?,
            "--fault-seconds" => {
                let d = secs(value()?)?;
                args.durations.stop_for = d;
                args.durations.slow_for = d;
            }
            "--kill-down" => args.durations.kill_down = secs(value()?)?,
            "--cp-down" => args.durations.cp_down = secs(value()?)?,
            "--slow-latency-ms" => args.durations.slow_latency_ms = value()?.parse()?,
            "--clients-per-kind" => args.per_kind = value()?.parse()?,
            "--tool" => args.tool = value()?,
            "--sleep-ms" => args.sleep_ms = value()?.parse()?,
            "--error-pause-ms" => {
                args.error_pause = Duration::from_millis(value()?.parse()?);
            }
            "--json" => args.json = Some(value()?.into()),
            "--log-dir" => args.log_dir = Some(value()?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    if !matches!(args.tool.as_str(), "sleep" | "add") {
        bail!("--tool is sleep or add\n{USAGE}");
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    if hangar_tests::bench::until_signal(run(args))
        .await?
        .is_none()
    {
        eprintln!("stopped before the end: no report written");
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let log_dir = match &args.log_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        // Kept after the run: the logs are the evidence behind the numbers.
        None => tempfile::Builder::new()
            .prefix("hangar-chaos-")
            .tempdir()?
            .keep(),
    };
    let state = tempfile::tempdir()?;
    let mut members = Vec::new();
    for id in ["m1", "m2", "m3"] {
        members.push(Member::start(id, &log_dir).await?);
    }
    let config: Vec<(String, String)> = members
        .iter()
        .map(|m| (m.id.clone(), m.endpoint()))
        .collect();
    let mut hangar = Hangar::start(
        &args.bin_dir,
        state.path(),
        &log_dir,
        &hangar::config_yaml(&config),
    )
    .await?;
    let note = binaries_note(&args.bin_dir);
    println!("{note}");
    println!("logs in {}", log_dir.display());

    let log = Log::new();
    let rotation = Rotation::start(&hangar.dp_url(), &log);
    let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
    all_in_rotation(&rotation, &ids, Duration::from_secs(60)).await?;
    let arguments = match args.tool.as_str() {
        "add" => json!({"a": 1, "b": 2}),
        _ => json!({"ms": args.sleep_ms}),
    };
    let clients = Clients::start(
        &hangar.dp_url(),
        args.per_kind,
        &args.tool,
        &arguments,
        args.error_pause,
        &log,
    )
    .await?;

    let mut rows = Vec::new();
    for (i, &fault) in args.faults.iter().enumerate() {
        // Each fault on the next member, so one fault's ejection history
        // weighs less on the next.
        let target = i % members.len();
        if let Err(e) = all_in_rotation(&rotation, &ids, Duration::from_secs(120)).await {
            eprintln!("before {}: {e:#}; going on anyway", fault.name());
        }
        tokio::time::sleep(args.baseline).await;
        eprintln!("fault {} at {:.1}s", fault.name(), log.now());
        let timing = faults::inject(
            fault,
            &mut members[target],
            &mut hangar,
            &args.durations,
            &log,
        )
        .await?;
        let watch_until = timing.ready.max(timing.end + args.watch.as_secs_f64());
        tokio::time::sleep(Duration::from_secs_f64((watch_until - log.now()).max(0.0))).await;
        rows.push((timing, watch_until));
    }
    clients.stop();
    rotation.stop();
    let (events, samples) = (log.events(), rotation.samples());
    let rows: Vec<report::Row> = rows
        .iter()
        .map(|(timing, until)| {
            report::row(
                timing,
                *until,
                args.baseline.as_secs_f64(),
                &events,
                &samples,
            )
        })
        .collect();

    println!(
        "\n{} clients per kind (legacy, modern, hangar_call) calling {} {arguments}; baseline {:?}, watch {:?}; 2-core shared machine: rates are noisy\n",
        args.per_kind, args.tool, args.baseline, args.watch
    );
    print!("{}", report::table(&rows));
    println!(
        "deliv/never: failed calls a member got / refused before any member; session(aft): session errors (on calls sent after the fault began); lost/fail: clients whose session was first lost in this window / clients with session errors in it; p99/max: latency of successful calls sent from fault to ready; out s: fault start to out of rotation; back s: fault undone to back in rotation; calls/s: baseline > fault (start to ready) > recovery"
    );
    println!("\nfailed calls by cause:");
    print!("{}", report::causes(&rows));
    if let Some(path) = &args.json {
        let settings = settings(&args);
        let document = report::document(&note, settings, &rows);
        std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
        println!("report written to {}", path.display());
    }
    for member in &mut members {
        member.kill().await?;
    }
    hangar.stop().await
}

/// Waits until every member is in rotation on the data plane.
async fn all_in_rotation(
    rotation: &Rotation,
    ids: &[String],
    patience: Duration,
) -> anyhow::Result<()> {
    wait_for("every member in rotation", patience, || {
        let ready = rotation.latest().is_some_and(|s| {
            ids.iter()
                .all(|id| s.healthy.get(id).is_some_and(|v| *v > 0.5))
        });
        async move { ready }
    })
    .await
}

/// Which binaries ran, with their modification times.
fn binaries_note(bin_dir: &std::path::Path) -> String {
    let built = |name: &str| {
        std::fs::metadata(bin_dir.join(name))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or("?".to_owned(), |d| format!("mtime {}", d.as_secs()))
    };
    format!(
        "measured hangar-control-plane ({}) and hangar-data-plane ({}) from {}",
        built("hangar-control-plane"),
        built("hangar-data-plane"),
        bin_dir.display()
    )
}

fn settings(args: &Args) -> Value {
    json!({
        "bin_dir": args.bin_dir, "faults": args.faults, "baseline_s": args.baseline.as_secs_f64(),
        "watch_s": args.watch.as_secs_f64(), "durations": args.durations,
        "clients_per_kind": args.per_kind, "tool": args.tool, "sleep_ms": args.sleep_ms,
        "error_pause_ms": args.error_pause.as_millis() as u64,
    })
}

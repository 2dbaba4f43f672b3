//! `hangar-rate-bench`: how closely a fleet of data planes holds one rate
//! limit, and what admission costs a call. Release binaries, not a test:
//! nothing is asserted.
//!
//! A control plane and three data planes (processes) serve a group over
//! one fast in-process member. Open-loop load offers each data plane a
//! fixed rate, twice the budget in all, split 80/15/5 %. For each 10 s
//! window the bench prints admitted ÷ configured for the fleet (target
//! 1.00 ± 0.10) and each data plane's part; first with the limit for the
//! fleet (the control plane divides it by demand); then with the mix
//! turned around at once (5/15/80 %), windows starting at the switch, to
//! show what the shares' lag costs; then the same limit with `scope:
//! data_plane` (MCP Hangar's meaning: each data plane admits the whole
//! budget). Last, the cost of admitting one call through two limits (one
//! with per-caller buckets), in nanoseconds.
//!
//! ```sh
//! cargo build --release --bins
//! target/release/hangar-rate-bench [--rps N] [--windows N]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use hangar_rate::{CallerKey, Limiter, Rate};
use hangar_tests::bench::stack::{Planes, Process, free_addr, spawn};
use hangar_tests::fake_mcp::FakeMcp;
use serde_json::json;
use tokio::time::Instant;

const USAGE: &str = "usage: hangar-rate-bench [--rps N] [--windows N]";
const GROUP: &str = "pool";
const WINDOW: Duration = Duration::from_secs(10);
/// Time for shares to follow the load before the first window.
const SETTLE: Duration = Duration::from_secs(6);
/// Each data plane's part of the offered load.
const MIX: [f64; 3] = [0.80, 0.15, 0.05];
/// The mix the other way round.
const REVERSED: [f64; 3] = [0.05, 0.15, 0.80];
/// Offered load over the budget.
const OVERLOAD: f64 = 2.0;

struct Args {
    rps: f64,
    windows: usize,
    bin_dir: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("bin dir")?
        .to_path_buf();
    let mut args = Args {
        rps: 200.0,
        windows: 3,
        bin_dir,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--rps" => args.rps = value()?.parse()?,
            "--windows" => args.windows = value()?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    hangar_tests::bench::until_signal(run(args)).await.map(drop)
}

/// Admitted (200) and refused (429) answers of one data plane.
#[derive(Debug, Default)]
struct Counts {
    admitted: AtomicU64,
    refused: AtomicU64,
    other: AtomicU64,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let member = FakeMcp::new("m")
        .stateless()
        .json_response(true)
        .start()
        .await;
    let state = tempfile::tempdir()?;
    let planes = Planes::start(&args.bin_dir, state.path(), &[])?;
    let mut urls = vec![planes.group_url(GROUP)];
    let mut others: Vec<Process> = Vec::new();
    for node in ["dp-2", "dp-3"] {
        let addr = free_addr()?;
        others.push(spawn(
            args.bin_dir.join("hangar-data-plane"),
            &[
                "--control-plane".into(),
                planes.cp_url.clone(),
                "--node-id".into(),
                node.into(),
                "--listen".into(),
                addr.to_string(),
            ],
        )?);
        urls.push(format!("http://{addr}/groups/{GROUP}/mcp"));
    }
    println!(
        "hangar-rate-bench on {} cores: 3 data planes, one limit of {} calls/s (burst {}), offered {}x that, split {:.0}/{:.0}/{:.0} %, {}-second windows\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.rps,
        burst(args.rps),
        OVERLOAD,
        MIX[0] * 100.0,
        MIX[1] * 100.0,
        MIX[2] * 100.0,
        WINDOW.as_secs()
    );
    let phases = [
        ("fleet", MIX, true),
        (
            "fleet, mix turned around at the first window's start",
            REVERSED,
            false,
        ),
        ("data_plane", MIX, true),
    ];
    for (phase, mix, settle) in phases {
        let scope = phase.split(',').next().unwrap_or(phase);
        planes
            .apply(&config(scope, args.rps, &member.url()))
            .await?;
        planes.wait_until_served(GROUP).await?;
        for url in &urls[1..] {
            wait_until_answered(url).await?;
        }
        let counts: Vec<Arc<Counts>> = (0..3).map(|_| Arc::default()).collect();
        let load: Vec<_> = urls
            .iter()
            .zip(mix)
            .zip(&counts)
            .map(|((url, part), counts)| {
                let rate = args.rps * OVERLOAD * part;
                tokio::spawn(offer(url.clone(), rate, counts.clone()))
            })
            .collect();
        if settle {
            tokio::time::sleep(SETTLE).await;
        }
        println!("scope: {phase}");
        println!(
            "{:<8} {:>22} {:>30}",
            "window", "admitted / configured", "dp-1 / dp-2 / dp-3 admitted/s"
        );
        let mut last = snapshot(&counts);
        for window in 1..=args.windows {
            tokio::time::sleep(WINDOW).await;
            let now = snapshot(&counts);
            let admitted: Vec<f64> = now
                .iter()
                .zip(&last)
                .map(|(n, l)| (n.0 - l.0) as f64 / WINDOW.as_secs_f64())
                .collect();
            let other: u64 = now.iter().zip(&last).map(|(n, l)| n.2 - l.2).sum();
            last = now;
            let total: f64 = admitted.iter().sum();
            println!(
                "{:<8} {:>22.3} {:>30}{}",
                window,
                total / args.rps,
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    admitted[0], admitted[1], admitted[2]
                ),
                if other > 0 {
                    format!("  ({other} answers neither 200 nor 429)")
                } else {
                    String::new()
                }
            );
        }
        for task in load {
            task.abort();
        }
        println!();
    }
    drop(others);
    admission_cost();
    Ok(())
}

fn burst(rps: f64) -> u32 {
    (rps / 10.0).ceil().max(1.0) as u32
}

fn config(scope: &str, rps: f64, member: &str) -> String {
    format!(
        "rate_limit: {{rps: {rps}, burst: {}, scope: {scope}}}\nmcp_servers:\n  m:\n    mode: remote\n    endpoint: \"{member}\"\n    health_check_interval_s: 1\n  {GROUP}:\n    mode: group\n    members:\n      - id: m\n",
        burst(rps)
    )
}

fn snapshot(counts: &[Arc<Counts>]) -> Vec<(u64, u64, u64)> {
    counts
        .iter()
        .map(|c| {
            (
                c.admitted.load(Ordering::Relaxed),
                c.refused.load(Ordering::Relaxed),
                c.other.load(Ordering::Relaxed),
            )
        })
        .collect()
}

/// Offers `rate` calls a second to `url`, each on its own task, whatever
/// the answers (open loop), counting them in `counts`.
async fn offer(url: String, rate: f64, counts: Arc<Counts>) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        ticks.tick().await;
        let (http, url, counts) = (http.clone(), url.clone(), counts.clone());
        tokio::spawn(async move {
            let counter = match call(&http, &url).await {
                Some(200) => &counts.admitted,
                Some(429) => &counts.refused,
                _ => &counts.other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
    }
}

async fn call(http: &reqwest::Client, url: &str) -> Option<u16> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "add", "arguments": {"a": 1, "b": 2},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let response = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "add")
        .body(body.to_string())
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let _ = response.bytes().await;
    Some(status)
}

async fn wait_until_answered(url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if call(&http, url).await == Some(200) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("{url} never served the group")
}

/// The hot path of admission, in-process: a call through the top-level
/// limit (a fleet share) and a group's limit with per-caller buckets.
fn admission_cost() {
    let now = Instant::now();
    let top = Limiter::new(
        "every tool call".into(),
        Some(Rate::new(1e12, 1e12)),
        None,
        true,
        Some(Rate::new(1e12, 1e12)),
        now,
    );
    let group = Limiter::new(
        "group 'pool'".into(),
        Some(Rate::new(1e12, 1e12)),
        Some(Rate::new(1e12, 1e12)),
        false,
        None,
        now,
    );
    let callers: Vec<CallerKey> = (0..1000_u32).map(CallerKey::of).collect();
    const CALLS: usize = 2_000_000;
    let started = Instant::now();
    for i in 0..CALLS {
        let chain = [&top, &group];
        let _ = hangar_rate::limiter::admit(chain, callers[i % callers.len()], Instant::now());
    }
    let ns = started.elapsed().as_nanos() as f64 / CALLS as f64;
    println!(
        "admission through two limits (one with per-caller buckets, 1,000 callers): {ns:.0} ns a call, one thread"
    );
}

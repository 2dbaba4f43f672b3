//! `hangar-strategy-bench`: how each strategy spreads calls over members
//! that answer at different speeds, measured on the release binaries.
//!
//! Three in-process fake members answer `add` after 2 ms, 2 ms and 20 ms
//! (one ten times slower). For each strategy, closed-loop load through
//! `/groups/{group}/mcp` runs for `--duration`; the members' own call
//! counters say who served what. Then the slow member turns fast (1 ms):
//! the bench samples the shares every 250 ms and reports how soon it got
//! more than a third of the calls (it is now the fastest), and its share
//! over the last second. Not a test: nothing is asserted.
//!
//! ```sh
//! cargo build --release --bins
//! target/release/hangar-strategy-bench [--duration SECS] [--concurrency N] [--strategies a,b]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use hangar_tests::bench::load::{self, Target};
use hangar_tests::bench::stack::Planes;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use serde_json::json;
use tokio::time::Instant;

const USAGE: &str = "usage: hangar-strategy-bench [--duration SECS] [--concurrency N] [--strategies round_robin,least_connections,least_latency]";
const GROUP: &str = "pool";
const FAST: Duration = Duration::from_millis(2);
const SLOW: Duration = Duration::from_millis(20);
const FASTEST: Duration = Duration::from_millis(1);
/// How long the bench watches for the sped-up member to win calls back.
const RECOVERY_WATCH: Duration = Duration::from_secs(10);
const SAMPLE: Duration = Duration::from_millis(250);

struct Args {
    duration: Duration,
    concurrency: usize,
    strategies: Vec<String>,
    bin_dir: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("bin dir")?
        .to_path_buf();
    let mut args = Args {
        duration: Duration::from_secs(10),
        concurrency: 8,
        strategies: ["round_robin", "least_connections", "least_latency"]
            .map(str::to_owned)
            .to_vec(),
        bin_dir,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--duration" => args.duration = Duration::from_secs_f64(value()?.parse()?),
            "--concurrency" => args.concurrency = value()?.parse()?,
            "--strategies" => {
                args.strategies = value()?.split(',').map(str::to_owned).collect();
            }
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

async fn run(args: Args) -> anyhow::Result<()> {
    let mut members = Vec::new();
    for name in ["a", "b", "slow"] {
        members.push(
            FakeMcp::new(name)
                .stateless()
                .json_response(true)
                .start()
                .await,
        );
    }
    let state = tempfile::tempdir()?;
    let planes = Planes::start(&args.bin_dir, state.path(), &[])?;
    println!(
        "hangar-strategy-bench on {} cores: members answer in {} / {} / {} ms (the third ten times slower), {} clients, {:?} per strategy\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        FAST.as_millis(),
        FAST.as_millis(),
        SLOW.as_millis(),
        args.concurrency,
        args.duration
    );
    println!(
        "{:<20} {:>9} {:>8} {:>8} {:>12} {:>16} {:>18}",
        "strategy",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "slow share",
        "sped up: >1/3 in",
        "its share after"
    );
    for strategy in &args.strategies {
        for member in &members {
            member.set_latency(FAST);
        }
        members[2].set_latency(SLOW);
        planes.apply(&config(strategy, &members)).await?;
        planes.wait_until_served(GROUP).await?;
        let target = Target::tool(
            "group",
            &planes.group_url(GROUP),
            "add",
            json!({"a": 1, "b": 2}),
        );
        // Warm-up: let latency-aware strategies learn the members.
        load::run(&target, args.concurrency, Duration::from_secs(1)).await;

        let before = counts(&members);
        let result = load::run(&target, args.concurrency, args.duration).await;
        let served = delta(&counts(&members), &before);
        let total: u64 = served.iter().sum();
        let slow_share = served[2] as f64 / total.max(1) as f64;

        let (won_back, share_after) = speed_up(&target, &members, args.concurrency).await;
        println!(
            "{:<20} {:>9.0} {:>8.2} {:>8.2} {:>11.1}% {:>16} {:>17.1}%",
            strategy,
            result.rate(),
            result.ms(0.5),
            result.ms(0.99),
            100.0 * slow_share,
            won_back.map_or_else(
                || "never".to_owned(),
                |d| format!("{:.2} s", d.as_secs_f64())
            ),
            100.0 * share_after,
        );
    }
    Ok(())
}

/// Makes the slow member the fastest under load; returns how soon its
/// share of a sample exceeded a third, and its share over the last second.
async fn speed_up(
    target: &Target,
    members: &[FakeMcpHandle],
    concurrency: usize,
) -> (Option<Duration>, f64) {
    let load = {
        let target = target.clone();
        tokio::spawn(async move { load::run(&target, concurrency, RECOVERY_WATCH).await })
    };
    // Load is running before the change, so the change is seen mid-stream.
    tokio::time::sleep(SAMPLE).await;
    members[2].set_latency(FASTEST);
    let changed = Instant::now();
    let mut won_back = None;
    let mut last = counts(members);
    let mut window = Vec::new();
    while changed.elapsed() + SAMPLE < RECOVERY_WATCH {
        tokio::time::sleep(SAMPLE).await;
        let now = counts(members);
        let served = delta(&now, &last);
        last = now;
        let total: u64 = served.iter().sum();
        if won_back.is_none() && total > 0 && served[2] * 3 > total {
            won_back = Some(changed.elapsed());
        }
        window.push(served);
    }
    let _ = load.await;
    let tail = window.iter().rev().take(4);
    let (slow, total) = tail.fold((0, 0), |(s, t), served| {
        (s + served[2], t + served.iter().sum::<u64>())
    });
    (won_back, slow as f64 / total.max(1) as f64)
}

fn counts(members: &[FakeMcpHandle]) -> Vec<u64> {
    members.iter().map(FakeMcpHandle::calls).collect()
}

fn delta(now: &[u64], before: &[u64]) -> Vec<u64> {
    now.iter().zip(before).map(|(n, b)| n - b).collect()
}

/// A group of the three members with `strategy`, probing every 5 s.
fn config(strategy: &str, members: &[FakeMcpHandle]) -> String {
    let mut yaml = String::from("mcp_servers:\n");
    for member in members {
        yaml.push_str(&format!(
            "  {}:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 5\n",
            member.name(),
            member.url()
        ));
    }
    yaml.push_str(&format!(
        "  {GROUP}:\n    mode: group\n    strategy: {strategy}\n    members:\n"
    ));
    for member in members {
        yaml.push_str(&format!("      - id: {}\n", member.name()));
    }
    yaml
}

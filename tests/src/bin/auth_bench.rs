//! `hangar-auth-bench`: what checking an MCP client's API key costs a call,
//! on the release binaries. Not a test: nothing is asserted.
//!
//! A control plane and a data plane (processes) serve a group over one
//! fast in-process member. Closed-loop load through `/groups/{g}/mcp` runs
//! for `--duration` twice in one run: with no `auth:` in the config, then
//! with `auth: {enabled: true}` and a key issued through the Admin API sent
//! in `X-API-Key` on every request. It prints calls/s and the data plane's
//! CPU per call for each, and the difference: the key check's cost.
//!
//! ```sh
//! cargo build --release --bins
//! target/release/hangar-auth-bench [--duration SECS] [--concurrency N]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use hangar_proto::v1::CreateApiKeyRequest;
use hangar_proto::v1::admin_service_client::AdminServiceClient;
use hangar_tests::bench::load::{self, Target};
use hangar_tests::bench::procfs;
use hangar_tests::bench::stack::Planes;
use hangar_tests::fake_mcp::FakeMcp;
use serde_json::json;

const USAGE: &str = "usage: hangar-auth-bench [--duration SECS] [--concurrency N]";
const GROUP: &str = "pool";

struct Args {
    duration: Duration,
    concurrency: usize,
    bin_dir: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("bin dir")?
        .to_path_buf();
    let mut args = Args {
        duration: Duration::from_secs(5),
        concurrency: 16,
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
    let member = FakeMcp::new("m")
        .stateless()
        .json_response(true)
        .start()
        .await;
    let state = tempfile::tempdir()?;
    let planes = Planes::start(&args.bin_dir, state.path(), &[])?;
    let config = |auth: &str| {
        format!(
            "{auth}mcp_servers:\n  m:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 1\n  {GROUP}:\n    mode: group\n    members:\n      - id: m\n",
            member.url()
        )
    };
    println!(
        "hangar-auth-bench on {} cores: {} clients, {:?} per run, /groups over one in-process member\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.concurrency,
        args.duration
    );
    println!(
        "{:<26} {:>9} {:>8} {:>14}",
        "run", "calls/s", "p50 ms", "dp CPU us/call"
    );
    planes.apply(&config("")).await?;
    planes.wait_until_served(GROUP).await?;
    let open = Target::tool(
        "open",
        &planes.group_url(GROUP),
        "add",
        json!({"a": 1, "b": 2}),
    );
    let without = measure(&planes, &open, &args).await?;

    let mut admin = AdminServiceClient::connect(planes.cp_url.clone()).await?;
    let key = admin
        .create_api_key(CreateApiKeyRequest {
            principal: "bench:client".into(),
            expires_in_ms: 0,
        })
        .await?
        .into_inner()
        .key;
    planes.apply(&config("auth: {enabled: true}\n")).await?;
    let keyed = Target {
        api_key: Some(key),
        ..Target::tool(
            "keyed",
            &planes.group_url(GROUP),
            "add",
            json!({"a": 1, "b": 2}),
        )
    };
    // Until the config and the key are in force, the calls are refused.
    for _ in 0..200 {
        if load::run(&keyed, 1, Duration::from_millis(20)).await.ok > 0 {
            break;
        }
    }
    let with = measure(&planes, &keyed, &args).await?;
    println!(
        "\nthe key check: {:+.2} us of data-plane CPU per call ({:.2}x the calls/s without auth)",
        with.1 - without.1,
        with.0 / without.0
    );
    Ok(())
}

/// Calls/s and the data plane's CPU microseconds per call of one run.
async fn measure(planes: &Planes, target: &Target, args: &Args) -> anyhow::Result<(f64, f64)> {
    load::run(target, args.concurrency, Duration::from_secs(1)).await;
    let pid = planes.dp.pid();
    let cpu_before = procfs::cpu_seconds(pid)?;
    let result = load::run(target, args.concurrency, args.duration).await;
    let cpu = procfs::cpu_seconds(pid)? - cpu_before;
    let per_call = cpu * 1e6 / result.ok.max(1) as f64;
    println!(
        "{:<26} {:>9.0} {:>8.3} {:>14.1}{}",
        if target.api_key.is_some() {
            "auth: API key in X-API-Key"
        } else {
            "no auth"
        },
        result.rate(),
        result.ms(0.5),
        per_call,
        if result.errors > 0 {
            format!("  ({} errors)", result.errors)
        } else {
            String::new()
        }
    );
    Ok((result.rate(), per_call))
}

//! `hangar-bench`: what the data plane costs, measured against a direct
//! connection and against nginx in the same run.
//!
//! Starts three MCP backends (fast in-process fakes, or with `--python` the
//! project's Python SDK example servers), the release
//! `hangar-control-plane` and `hangar-data-plane` binaries from this
//! binary's directory, and nginx when installed (fakes only: round robin
//! would split the SDK servers' sessions). Then, for each concurrency, it
//! drives closed-loop `tools/call add` load over keep-alive connections on
//! the paths, which take turns in rounds (`--rounds`) so that the
//! machine's drift weighs on all alike: straight to the backends, through
//! nginx, through the data plane's `/groups/{group}/mcp`, and through
//! `hangar_call`; with fakes,
//! the same two through a second data plane that traces every call to an
//! OTLP collector in the bench (`+otlp`: the cost of tracing). It reports
//! calls/s, latency percentiles, errors, the CPU each proxy used (per second
//! and per call: steadier than calls/s on a shared machine), the data
//! plane's RSS, and ratios against direct and nginx. With fakes it first
//! holds 1,000 `sleep` calls in flight to measure memory per call; with
//! SDK servers it also times sequential calls made by the Python SDK
//! client. Last it prints the figures the data plane is held to beside
//! their targets. Not a test: nothing is asserted.
//!
//! ```sh
//! cargo build --release --bins
//! target/release/hangar-bench [--duration SECS] [--rounds N] [--concurrency 1,64] [--inflight 1000] [--worker-threads N] [--paths ...] [--json FILE]
//! target/release/hangar-bench --python --concurrency 1,16
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use hangar_tests::bench::load::{self, Target};
use hangar_tests::bench::nginx::Nginx;
use hangar_tests::bench::procfs;
use hangar_tests::bench::stack::{Planes, Process, wait_until_serves};
use hangar_tests::bench::{rotating_turns, sdk_client, targets};
use hangar_tests::configs::GroupConfig;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::python_sdk::{Mode, PyBackend};
use serde_json::{Value, json};

const USAGE: &str = "usage: hangar-bench [--duration SECS] [--rounds N] [--concurrency 1,64] [--inflight 1000] [--worker-threads N] [--paths direct,nginx,groups,hangar_call,hangar_call_server,groups+otlp,hangar_call+otlp] [--python] [--strategy NAME] [--json FILE]\n  --python: the project's Python SDK example servers as backends (run scripts/python-env first); try --concurrency 1,16\n  --worker-threads: passed to the data plane (default: one per CPU)\n  --paths: the paths to load (default: all; +otlp: through a second data plane tracing every call to a collector); --inflight 0 skips the memory run\n  --strategy: the group's strategy (default round_robin, the recipe's)\n  --duration, --rounds: each path is loaded for SECS (default 5) in all, in N turns (default 5) taken with the other paths";

struct Args {
    /// Load time per path, over all rounds.
    duration: Duration,
    /// How many turns each path takes.
    rounds: u32,
    concurrency: Vec<usize>,
    inflight: usize,
    worker_threads: Option<u16>,
    /// Which paths to load, by their short names ([`PATHS`]).
    paths: Vec<String>,
    /// The Python SDK example servers as backends, not in-process fakes.
    python: bool,
    /// The group's strategy; the recipe's `round_robin` unless told.
    strategy: String,
    json: PathBuf,
    bin_dir: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("bin dir")?
        .to_path_buf();
    let mut args = Args {
        duration: Duration::from_secs(5),
        rounds: 5,
        concurrency: vec![1, 64],
        inflight: 1000,
        worker_threads: None,
        paths: PATHS.iter().map(|p| (*p).to_owned()).collect(),
        python: false,
        strategy: "round_robin".into(),
        json: bin_dir.join("hangar-bench.json"),
        bin_dir,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--duration" => args.duration = Duration::from_secs_f64(value()?.parse()?),
            "--concurrency" => {
                args.concurrency = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--rounds" => args.rounds = value()?.parse::<u32>()?.max(1),
            "--inflight" => args.inflight = value()?.parse()?,
            "--worker-threads" => args.worker_threads = Some(value()?.parse()?),
            "--python" => args.python = true,
            "--strategy" => args.strategy = value()?,
            "--paths" => {
                args.paths = value()?.split(',').map(str::to_owned).collect();
                if let Some(unknown) = args.paths.iter().find(|p| !PATHS.contains(&p.as_str())) {
                    bail!("unknown path {unknown} (known: {})", PATHS.join(","));
                }
            }
            "--json" => args.json = value()?.into(),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    Ok(args)
}

/// The short names of the paths `--paths` picks from.
const PATHS: &[&str] = &[
    "direct",
    "direct_rotating",
    "nginx",
    "groups",
    "hangar_call",
    "hangar_call_server",
    "groups+otlp",
    "hangar_call+otlp",
];

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

/// The three members the load is spread over: in-process fakes, or the
/// project's Python SDK example servers as processes.
enum Backends {
    Fake(Vec<FakeMcpHandle>),
    Python(Vec<PyBackend>),
}

impl Backends {
    async fn start(python: bool) -> Self {
        let names = ["a", "b", "c"];
        if python {
            let mut backends = Vec::new();
            for name in names {
                backends.push(PyBackend::start(name, Mode::Stateful).await);
            }
            return Backends::Python(backends);
        }
        let mut backends = Vec::new();
        for name in names {
            backends.push(
                FakeMcp::new(name)
                    .stateless()
                    .json_response(true)
                    .start()
                    .await,
            );
        }
        Backends::Fake(backends)
    }

    fn urls(&self) -> Vec<String> {
        match self {
            Backends::Fake(b) => b.iter().map(FakeMcpHandle::url).collect(),
            Backends::Python(b) => b.iter().map(PyBackend::url).collect(),
        }
    }

    /// The members' endpoints as the config names them.
    fn endpoints(&self) -> Vec<String> {
        match self {
            Backends::Fake(b) => b.iter().map(FakeMcpHandle::url).collect(),
            Backends::Python(b) => b.iter().map(PyBackend::base_url).collect(),
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let backends = Backends::start(args.python).await;
    let state = tempfile::tempdir()?;
    let mut dp_args = Vec::new();
    if let Some(threads) = args.worker_threads {
        dp_args.extend(["--worker-threads".into(), threads.to_string()]);
    }
    let planes = Planes::start(&args.bin_dir, state.path(), &dp_args)?;
    let dp = &planes.dp;
    let config = GroupConfig {
        health_check_interval_s: 5.0,
        strategy: args.strategy.clone(),
        ..GroupConfig::recipe(&backends.endpoints())
    };
    planes.apply(&config.yaml()).await?;
    let group = planes.group_url("my-mcp-group");
    planes.wait_until_served("my-mcp-group").await?;

    let nginx_dir = tempfile::tempdir()?;
    let nginx = match (&backends, Nginx::find()) {
        // Round robin would split the SDK servers' sessions: over one
        // server, as the reference for the SDK client's sequential calls.
        (Backends::Python(servers), Some(binary)) => {
            Some(Nginx::start(binary, nginx_dir.path(), &[servers[0].addr()]).await?)
        }
        (Backends::Fake(fakes), Some(binary)) => Some(
            Nginx::start(
                binary,
                nginx_dir.path(),
                &fakes.iter().map(|b| b.addr()).collect::<Vec<_>>(),
            )
            .await?,
        ),
        (_, None) => {
            eprintln!("nginx not installed: skipping the nginx path (apt-get install nginx)");
            None
        }
    };
    let add = json!({"a": 1, "b": 2});
    let urls = backends.urls();
    let direct = Target::tool("direct", &urls[0], "add", add.clone());
    // The SDK servers are slow enough that one is not "the same load":
    // spread direct workers over all three, as the data plane does.
    let mut targets = vec![match backends {
        Backends::Python(_) => direct.spread_over(&urls[1..]),
        Backends::Fake(_) => direct,
    }];
    if let Backends::Python(_) = backends {
        // The load hangar_call puts on the members: each call to the next.
        targets.push(
            Target::tool("direct_rotating", &urls[0], "add", add.clone()).rotating_over(&urls[1..]),
        );
    }
    if let (Some(nginx), Backends::Fake(_)) = (&nginx, &backends) {
        targets.push(Target::tool(
            "nginx",
            &format!("http://{}/mcp", nginx.addr),
            "add",
            add.clone(),
        ));
    }
    targets.push(Target::tool("hangar /groups", &group, "add", add.clone()));
    let mcp = format!("http://{}/mcp", planes.dp_addr);
    targets.push(Target::hangar_call(
        "hangar hangar_call",
        &mcp,
        "my-mcp-group",
        "add",
        add.clone(),
    ));
    // A second data plane that traces every call to a collector beside
    // it: the cost of tracing, next to the same paths untraced.
    let wants_traced = args.paths.iter().any(|p| p.ends_with("+otlp"));
    let traced = match &backends {
        Backends::Fake(_) if wants_traced => {
            let collector = hangar_tests::otlp::Collector::start_counting().await;
            let mut traced_args = dp_args.clone();
            traced_args.extend(["--otlp-endpoint".into(), collector.url()]);
            let (addr, process) =
                planes.add_data_plane(&args.bin_dir, "bench-otlp", &traced_args)?;
            let traced_group = format!("http://{addr}/groups/my-mcp-group/mcp");
            wait_until_serves(&traced_group).await?;
            targets.push(Target::tool(
                "hangar /groups+otlp",
                &traced_group,
                "add",
                add.clone(),
            ));
            targets.push(Target::hangar_call(
                "hangar hangar_call+otlp",
                &format!("http://{addr}/mcp"),
                "my-mcp-group",
                "add",
                add.clone(),
            ));
            Some((process, collector))
        }
        _ => None,
    };
    if let Backends::Python(_) = backends {
        // Sequential calls balanced over three SDK servers find each one
        // idle since its last call; one server shows the data plane's own
        // cost apart from that.
        targets.push(Target::hangar_call(
            "hangar hangar_call_server",
            &mcp,
            "my-mcp",
            "add",
            add.clone(),
        ));
    }
    targets.retain(|target| args.paths.iter().any(|p| short_name(&target.name) == p));

    println!(
        "hangar-bench on {} cores, {:?} per path in {} turns taken with the other paths, data plane worker threads: {}, strategy: {}, backends: {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.duration,
        args.rounds,
        args.worker_threads
            .map_or_else(|| "one per CPU".to_owned(), |n| n.to_string()),
        args.strategy,
        match backends {
            Backends::Fake(_) => "in-process fakes answering in microseconds",
            Backends::Python(_) => "three Python SDK example servers (stateful, SSE answers)",
        }
    );
    // Memory first, on a data plane that has served only the warm-up, so
    // what the throughput runs leave behind does not count as per-call cost.
    let inflight = match &backends {
        Backends::Fake(fakes) if args.inflight > 0 => {
            let inflight = measure_inflight(&group, fakes, dp.pid(), args.inflight).await?;
            let figure = |name: &str| inflight[name].as_f64().unwrap_or_default();
            println!(
                "{} sleep calls in flight through /groups ({} held at the sample, {} failed): data plane RSS {:.1} MB idle -> {:.1} MB busy ({:.1} KB per call)\n",
                args.inflight,
                inflight["held_at_sample"],
                inflight["errors"],
                figure("idle_rss_mib"),
                figure("busy_rss_mib"),
                figure("kib_per_call")
            );
            inflight
        }
        _ => Value::Null,
    };
    let mut report = Vec::new();
    for &concurrency in &args.concurrency {
        let processes = (dp, traced.as_ref().map(|(p, _)| p), nginx.as_ref());
        report.extend(load_rows(&targets, concurrency, &args, processes).await?);
    }
    if let Some((_, collector)) = &traced {
        println!("the traced data plane sent {} spans", collector.received());
        let rows = targets::Rows(&report);
        for &concurrency in &args.concurrency {
            for path in ["hangar /groups", "hangar hangar_call"] {
                let cpu = |path: &str| rows.get(path, concurrency, "proxy_cpu_us_per_call");
                if let (Some(plain), Some(traced)) = (cpu(path), cpu(&format!("{path}+otlp"))) {
                    println!(
                        "  tracing on {path} at concurrency {concurrency}: {:+.1} us CPU per call ({:.2}x)",
                        traced - plain,
                        traced / plain
                    );
                }
            }
        }
        println!();
    }
    let figures = match &backends {
        Backends::Fake(_) => {
            targets::fake_backend_figures(&report, inflight["kib_per_call"].as_f64())
        }
        Backends::Python(_) => {
            let (rounds, calls) = (5, 100);
            let endpoint = |url: &str, tool: &str, arguments: Value| sdk_client::Endpoint {
                url: url.to_owned(),
                tool: tool.to_owned(),
                arguments,
            };
            let hangar_call = |server: &str| json!({"calls": [{"mcp_server": server, "tool": "add", "arguments": add}]});
            let mut endpoints = vec![
                endpoint(&urls[0], "add", add.clone()),
                endpoint(&mcp, "hangar_call", hangar_call("my-mcp-group")),
                endpoint(&mcp, "hangar_call", hangar_call("my-mcp")),
            ];
            // What a plain proxy adds for this client, in the same rounds.
            if let Some(nginx) = &nginx {
                endpoints.push(endpoint(
                    &format!("http://{}/mcp", nginx.addr),
                    "add",
                    add.clone(),
                ));
            }
            let p50s = sdk_client::p50s_in_rounds(&endpoints, rounds, calls).await?;
            let direct = sdk_client::median(p50s[0].clone());
            let added: Vec<f64> = p50s
                .iter()
                .map(|p50s_of| sdk_client::median_added(p50s_of, &p50s[0]))
                .collect();
            let nginx_text = match (&nginx, added.get(3)) {
                (Some(_), Some(added)) => format!(
                    ", nginx to one server {:.3} ms ({added:+.3})",
                    sdk_client::median(p50s[3].clone())
                ),
                _ => String::new(),
            };
            println!(
                "Python SDK client, {rounds} rounds of {calls} sequential calls per endpoint, median over rounds: p50 direct {direct:.3} ms{nginx_text}, hangar_call to the group {:.3} ms ({:+.3}), to one server {:.3} ms ({:+.3})\n",
                sdk_client::median(p50s[1].clone()),
                added[1],
                sdk_client::median(p50s[2].clone()),
                added[2],
            );
            report.push(
                json!({"path": "sdk client", "rounds": rounds, "calls_per_round": calls,
                "p50_ms_per_round": {"direct": p50s[0], "hangar_call_group": p50s[1],
                    "hangar_call_server": p50s[2], "nginx": p50s.get(3)},
                "added_ms": {"hangar_call_group": added[1], "hangar_call_server": added[2],
                    "nginx": added.get(3)}}),
            );
            targets::python_backend_figures(&report, (added[1], added[2]))
        }
    };
    targets::print(&figures);
    let document = json!({"runs": report, "inflight": inflight, "duration_s": args.duration.as_secs_f64(),
               "dp_worker_threads": args.worker_threads, "python_backends": args.python,
               "strategy": args.strategy});
    std::fs::write(&args.json, serde_json::to_string_pretty(&document)?)?;
    println!("\nreport written to {}", args.json.display());
    Ok(())
}

/// Loads each target at `concurrency` and prints and returns its row.
async fn load_rows(
    targets: &[Target],
    concurrency: usize,
    args: &Args,
    (dp, traced, nginx): (&Process, Option<&Process>, Option<&Nginx>),
) -> anyhow::Result<Vec<Value>> {
    println!("concurrency {concurrency}");
    println!(
        "  {:<26} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>8} {:>11} {:>11} {:>9}",
        "path",
        "calls/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "vs direct",
        "vs nginx",
        "proxy cpu %",
        "cpu us/call",
        "dp rss MB"
    );
    // The proxy of each path, if any: the data plane (the traced paths
    // go through the second one) or nginx.
    let dp_of = |target: &Target| match traced {
        Some(traced) if target.name.ends_with("+otlp") => traced,
        _ => dp,
    };
    let proxy_of = |target: &Target| {
        if target.name.starts_with("hangar") {
            Some(dp_of(target).pid())
        } else if target.name == "nginx" {
            nginx.and_then(Nginx::pid)
        } else {
            None
        }
    };
    let cpu = |pid: Option<u32>| pid.map_or(Ok(0.0), procfs::tree_cpu_seconds);
    // Warm connections, sessions and caches first.
    for target in targets {
        load::run(target, concurrency, Duration::from_millis(500)).await;
    }
    // The paths take turns in rounds, in an order that rotates per round,
    // so that what the machine does meanwhile (it drifts by tens of
    // percent over a minute) weighs on every path alike.
    let slice = args.duration / args.rounds;
    let mut measured: Vec<_> = targets
        .iter()
        .map(|_| (load::LoadResult::empty(), 0.0))
        .collect();
    for index in rotating_turns(args.rounds as usize, targets.len()) {
        let proxy = proxy_of(&targets[index]);
        let prepared = load::Prepared::new(&targets[index], concurrency).await;
        let cpu_before = cpu(proxy)?;
        let result = prepared.run(slice).await;
        measured[index].1 += cpu(proxy)? - cpu_before;
        measured[index].0.add(&result);
    }
    let mut rows: Vec<Value> = Vec::new();
    for (target, (result, proxy_cpu_s)) in targets.iter().zip(measured) {
        let (on_dp, proxy) = (target.name.starts_with("hangar"), proxy_of(target));
        let dp_rss = procfs::rss_mib(dp_of(target).pid())?;
        let row = json!({
            "path": target.name, "concurrency": concurrency, "calls_per_s": result.rate(),
            "p50_ms": result.ms(0.5), "p90_ms": result.ms(0.9), "p99_ms": result.ms(0.99), "max_ms": result.ms(1.0),
            "ok": result.ok, "errors": result.errors,
            "proxy_cpu_percent": proxy.map(|_| 100.0 * proxy_cpu_s / result.elapsed.as_secs_f64()),
            "proxy_cpu_us_per_call": proxy.map(|_| 1e6 * proxy_cpu_s / result.ok.max(1) as f64),
            "dp_rss_mib": if on_dp { Some(dp_rss) } else { None },
        });
        print_row(&row, &rows);
        rows.push(row);
    }
    println!();
    Ok(rows)
}

/// The `--paths` name of a target.
fn short_name(target: &str) -> &str {
    target
        .strip_prefix("hangar ")
        .map_or(target, |rest| rest.trim_start_matches('/'))
}

/// Prints one row with its ratios against the direct and nginx rows before it.
fn print_row(row: &Value, earlier: &[Value]) {
    let find = |path: &str| earlier.iter().find(|r| r["path"] == path);
    let ratio = |base: Option<&Value>, key: &str| match base {
        Some(base) if base["path"] != row["path"] => {
            let added = row[key].as_f64().unwrap_or(0.0) - base[key].as_f64().unwrap_or(0.0);
            let rate = row["calls_per_s"].as_f64().unwrap_or(0.0)
                / base["calls_per_s"].as_f64().unwrap_or(1.0);
            format!("{rate:.2}x/{added:+.2}")
        }
        _ => "-".to_owned(),
    };
    let opt = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.1}"));
    println!(
        "  {:<26} {:>10.0} {:>8.3} {:>8.3} {:>8.3} {:>8.2} {:>7} {:>9} {:>8} {:>11} {:>11} {:>9}",
        row["path"].as_str().unwrap_or("?"),
        row["calls_per_s"].as_f64().unwrap_or(0.0),
        row["p50_ms"].as_f64().unwrap_or(0.0),
        row["p90_ms"].as_f64().unwrap_or(0.0),
        row["p99_ms"].as_f64().unwrap_or(0.0),
        row["max_ms"].as_f64().unwrap_or(0.0),
        row["errors"].as_u64().unwrap_or(0),
        ratio(find("direct"), "p50_ms"),
        ratio(find("nginx"), "p50_ms"),
        opt(&row["proxy_cpu_percent"]),
        opt(&row["proxy_cpu_us_per_call"]),
        opt(&row["dp_rss_mib"]),
    );
}

/// Holds `n` slow calls in flight through the data plane and compares its
/// RSS with the idle RSS.
async fn measure_inflight(
    group: &str,
    backends: &[FakeMcpHandle],
    dp: u32,
    n: usize,
) -> anyhow::Result<Value> {
    let idle = procfs::rss_mib(dp)?;
    let target = Target::tool("sleep", group, "sleep", json!({"ms": 4000}));
    let load = tokio::spawn(async move { load::run(&target, n, Duration::from_millis(1)).await });
    let in_flight = || backends.iter().map(FakeMcpHandle::in_flight).sum::<u64>();
    for _ in 0..1000 {
        if in_flight() >= n as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held = in_flight();
    let busy = procfs::rss_mib(dp)?;
    let result = load.await?;
    Ok(json!({
        "calls": n, "held_at_sample": held, "ok": result.ok, "errors": result.errors,
        "idle_rss_mib": idle, "busy_rss_mib": busy,
        // None held (every call failed): no figure rather than a false one.
        "kib_per_call": (held > 0).then(|| (busy - idle) * 1024.0 / held as f64),
    }))
}

//! `hangar-auth-bench`: what checking an MCP client's credential costs a
//! call, on the release binaries. Not a test: nothing is asserted.
//!
//! A control plane and a data plane (processes) serve a group over one
//! fast in-process member. Closed-loop load through `/groups/{g}/mcp` runs
//! for `--duration` three times in one run: with no `auth:` in the config;
//! with `auth: {enabled: true}` and a key issued through the Admin API sent
//! in `X-API-Key` on every request; and with `auth.jwt` and a bearer token
//! (ES256) on every request, which the data plane verifies once and then
//! finds among the tokens it checked. It prints calls/s and the data
//! plane's CPU per call for each, and the differences: each check's cost.
//! Last, the cost of one full signature check per algorithm (what a
//! token's first call pays), measured in this process.
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
use hangar_tests::jwt::Issuer;
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
        credential: Some(("x-api-key", key)),
        ..Target::tool(
            "keyed",
            &planes.group_url(GROUP),
            "add",
            json!({"a": 1, "b": 2}),
        )
    };
    wait_until_admitted(&keyed).await;
    let with = measure(&planes, &keyed, &args).await?;

    let idp = Issuer::new("https://idp.bench/");
    let jwt = format!(
        "auth:\n  enabled: true\n  jwt:\n    issuer: https://idp.bench/\n    audience: https://mcp.bench\n    jwks: {}\n",
        idp.jwks()
    );
    planes.apply(&config(&jwt)).await?;
    let token = idp.token("ec", "bench:client", "https://mcp.bench/mcp", json!({}));
    let bearer = Target {
        credential: Some(("authorization", format!("Bearer {token}"))),
        ..Target::tool(
            "bearer",
            &planes.group_url(GROUP),
            "add",
            json!({"a": 1, "b": 2}),
        )
    };
    wait_until_admitted(&bearer).await;
    let with_token = measure(&planes, &bearer, &args).await?;
    println!(
        "\nthe key check:           {:+.2} us of data-plane CPU per call ({:.2}x the calls/s without auth)",
        with.1 - without.1,
        with.0 / without.0
    );
    println!(
        "the checked-token check: {:+.2} us of data-plane CPU per call ({:.2}x the calls/s without auth)",
        with_token.1 - without.1,
        with_token.0 / without.0
    );
    println!("\na token's first call, one full signature check (in this process):");
    for (kid, alg) in [("rsa", "RS256"), ("ec", "ES256"), ("ed", "EdDSA")] {
        println!("  {alg:<6} {:>7.1} us", full_check_us(&idp, kid));
    }
    Ok(())
}

/// Until the config and the credential are in force, calls are refused.
async fn wait_until_admitted(target: &Target) {
    for _ in 0..200 {
        if load::run(target, 1, Duration::from_millis(20)).await.ok > 0 {
            break;
        }
    }
}

/// Microseconds one signature and claims check of a token signed with
/// `kid` takes, as the data plane does it (jsonwebtoken, aws-lc-rs).
fn full_check_us(idp: &Issuer, kid: &str) -> f64 {
    let token = idp.token(kid, "bench:client", "https://mcp.bench/mcp", json!({}));
    let header = jsonwebtoken::decode_header(&token).expect("a header");
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&idp.jwks()).expect("a JWKS");
    let jwk = set.find(kid).expect("the key");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("a key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&["https://idp.bench/"]);
    validation.validate_aud = false;
    const ROUNDS: u32 = 2_000;
    let started = tokio::time::Instant::now();
    for _ in 0..ROUNDS {
        jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).expect("verifies");
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS)
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
        match &target.credential {
            Some(("x-api-key", _)) => "auth: API key in X-API-Key",
            Some(_) => "auth: bearer JWT (ES256)",
            None => "no auth",
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

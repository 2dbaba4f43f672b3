//! Request bodies are bounded across the process, not only one by one: a
//! thousand connections each sending a body just under the size limit
//! (4 MiB) and never its last byte leave the data plane's memory within the
//! budget of all bodies (64 MiB by default), and an ordinary call is still
//! served meanwhile.

use std::process::Stdio;
use std::time::Duration;

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_hangar-data-plane");
/// Connections holding a near-limit body.
const BODIES: usize = 1000;
/// The default `--max-request-bytes`.
const BODY_LIMIT: usize = 4 * 1024 * 1024;
/// What the data plane may grow by while the bodies are in flight: the
/// 64 MiB budget, the first 64 KiB of each body, which are not charged,
/// and room for buffers and the connections themselves.
const GROWTH_BOUND_KB: u64 = 64 * 1024 + 64 * BODIES as u64 + 96 * 1024;

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_limit_bodies_stay_within_the_budget() {
    let member = FakeMcp::new("a").stateless().start().await;
    let cp = ControlPlane::start().await;
    let port = hangar_tests::free_port();
    let mut child = tokio::process::Command::new(BIN)
        .args(["--control-plane", &cp.url(), "--node-id", "dp-bodies"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the data plane");
    let pid = child.id().expect("pid");
    cp.apply_and_wait(&GroupConfig::recipe(&[member.url()]).yaml(), 1)
        .await;
    let url = format!("http://127.0.0.1:{port}/groups/{RECIPE_GROUP}/mcp");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let call =
        || hangar_tests::raw::modern_call(&http, &url, 1, "add", json!({"a": 2, "b": 3})).send();
    eventually("the group to serve calls", || async {
        (call().await.ok()?.status() == 200).then_some(())
    })
    .await;
    let before = rss_kb(pid);

    let head = format!(
        "POST /groups/{RECIPE_GROUP}/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {BODY_LIMIT}\r\n\r\n"
    );
    let body = bytes::Bytes::from(vec![b' '; BODY_LIMIT - 1]);
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..BODIES {
        let (head, body) = (head.clone(), body.clone());
        writers.spawn(async move {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
            stream.write_all(head.as_bytes()).await.ok()?;
            // A refused body's connection is closed under the writer, or its
            // socket buffers fill up: either way the writer stops.
            let _ = tokio::time::timeout(Duration::from_secs(10), stream.write_all(&body)).await;
            Some(stream)
        });
    }
    let mut held = Vec::new();
    while let Some(written) = writers.join_next().await {
        held.extend(written.expect("writer").into_iter());
    }
    let during = rss_kb(pid);
    println!(
        "data plane RSS: {before} kB before, {during} kB with {BODIES} near-limit bodies in flight"
    );
    let answer = call().await.expect("an ordinary call is served");
    assert_eq!(answer.status(), 200);
    let message: Value = answer.json().await.unwrap();
    assert_eq!(
        message["result"]["structuredContent"]["sum"], 5,
        "{message}"
    );
    assert!(
        during.saturating_sub(before) < GROWTH_BOUND_KB,
        "RSS grew from {before} kB to {during} kB"
    );
    drop(held);
    child.start_kill().expect("kill");
    let _ = child.wait().await;
    cp.stop().await;
}

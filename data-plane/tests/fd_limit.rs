//! The data plane at its file descriptor limit (`prlimit --nofile=256`):
//! more idle sockets than descriptors must not lock good clients out. Idle
//! connections are closed to make room, the silent ones first: the client's
//! kept-alive connection, idle longest of all, carries every call after the
//! idle sockets without a reset. The data plane says so once, not every
//! 100 ms.

use std::process::Stdio;
use std::time::Duration;

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_hangar-data-plane");
/// The data plane's descriptor limit, soft and hard.
const NOFILE: u32 = 256;
/// Idle sockets opened against it: more than it has descriptors.
const IDLE_SOCKETS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_fd_limit_do_not_lock_clients_out() {
    let member = FakeMcp::new("a").stateless().start().await;
    let cp = ControlPlane::start().await;
    let port = hangar_tests::free_port();
    let mut child = tokio::process::Command::new("prlimit")
        .arg(format!("--nofile={NOFILE}:{NOFILE}"))
        .arg(BIN)
        .args(["--control-plane", &cp.url(), "--node-id", "dp-fds"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("HANGAR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the data plane under prlimit");
    cp.apply_and_wait(&GroupConfig::recipe(&[member.url()]).yaml(), 1)
        .await;
    let url = format!("http://127.0.0.1:{port}/groups/{RECIPE_GROUP}/mcp");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let call = |id: u64| {
        hangar_tests::raw::modern_call(&http, &url, id, "add", json!({"a": 2, "b": 3})).send()
    };
    eventually("the group to serve calls", || async {
        (call(1).await.ok()?.status() == 200).then_some(())
    })
    .await;

    let mut idle = Vec::with_capacity(IDLE_SOCKETS);
    for _ in 0..IDLE_SOCKETS {
        idle.push(
            TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
        );
    }
    // Every call after the idle sockets is served, within reqwest's bound.
    for id in 2..12 {
        let answer = call(id).await.expect("served despite the idle sockets");
        assert_eq!(answer.status(), 200);
        let message: Value = answer.json().await.expect("JSON");
        assert_eq!(
            message["result"]["structuredContent"]["sum"], 5,
            "{message}"
        );
    }
    drop(idle);

    child.start_kill().expect("kill the data plane");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    let _ = child.wait().await;
    let said = stderr.matches("out of file descriptors").count();
    assert!(said >= 1, "the shedding is logged: {stderr}");
    assert!(
        said <= 3,
        "logged once per episode, not per accept: {said} times\n{stderr}"
    );
    cp.stop().await;
}

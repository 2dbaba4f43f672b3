//! `hangar-data-plane --listen` on SIGTERM: it stops accepting connections
//! at once, lets the calls in flight finish, and exits 0.

use std::process::Stdio;
use std::time::Duration;

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::McpClient;
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::process::send_signal;
use hangar_tests::raw::Raw;
use serde_json::{Value, json};

#[path = "support/binary.rs"]
mod binary;
use binary::BIN;
/// How long each call in flight sleeps at the member: long enough that
/// SIGTERM surely arrives while both are running.
const CALL_MS: u64 = 3_000;

/// A `sleep` call in flight through `/mcp` (`hangar_call`) and one through
/// `/groups/{g}/mcp` both complete after SIGTERM; meanwhile new connections
/// are refused; the process then exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_calls_in_flight_finish() {
    let member = FakeMcp::new("a").start().await;
    let cp = ControlPlane::start().await;
    let port = hangar_tests::free_port();
    let mut child = binary::data_plane(&cp.url(), "dp-term", port)
        .args(["--shutdown-grace", "20"])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn data plane");
    // Acked config means the data plane is up; it listens before it dials.
    cp.apply_and_wait(&GroupConfig::recipe(&[member.url()]).yaml(), 1)
        .await;
    let base = format!("http://127.0.0.1:{port}");

    let client = McpClient::connect(&format!("{base}/mcp")).await;
    let via_mcp = tokio::spawn(async move {
        let call =
            json!({"mcp_server": RECIPE_GROUP, "tool": "sleep", "arguments": {"ms": CALL_MS}});
        client.hangar_call(json!({"calls": [call]})).await
    });
    let raw = Raw {
        http: reqwest::Client::new(),
        url: format!("{base}/groups/{RECIPE_GROUP}/mcp"),
    };
    let session = raw.initialize().await;
    let via_group = tokio::spawn(async move {
        let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "sleep", "arguments": {"ms": CALL_MS}}});
        let response = raw.post(Some(&session), call).await;
        (response.status(), response.text().await)
    });
    eventually("both calls at the member", || async {
        (member.in_flight() == 2).then_some(())
    })
    .await;

    send_signal(child.id().expect("running"), "TERM");
    eventually("new connections to be refused", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    assert_eq!(member.in_flight(), 2, "calls still running while refusing");

    let out = via_mcp.await.expect("hangar_call task");
    assert_eq!(out["succeeded"], 1, "{out}");
    assert_eq!(
        out["results"][0]["result"]["structuredContent"]["slept_ms"],
        CALL_MS
    );
    let (status, text) = via_group.await.expect("group call task");
    assert_eq!(status, 200);
    let text = text.expect("the whole answer");
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("an SSE event");
    let answer: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        answer["result"]["structuredContent"]["slept_ms"], CALL_MS,
        "{answer}"
    );

    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits within the grace period")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
    cp.stop().await;
}

/// Without `--listen` the data plane serves HTTP on loopback (binding the
/// real default port here could collide with a running data plane, so the
/// test reads the documented default from `--help`).
#[test]
fn listens_on_loopback_by_default() {
    let help = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    let listen = text
        .lines()
        .skip_while(|l| !l.contains("--listen"))
        .take_while(|l| !l.contains("--stdio"))
        .collect::<String>();
    assert!(listen.contains("[default: 127.0.0.1:9000]"), "{text}");
}

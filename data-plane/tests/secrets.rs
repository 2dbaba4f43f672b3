//! A member's credentials stay on the data plane: the bearer token comes
//! from the data plane's environment, reaches the member, and appears in no
//! log line (at trace level) and nowhere in the control plane's status.

use std::process::Stdio;

use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::McpClient;
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::pki::TestPki;
use serde_json::json;
use tokio::io::AsyncReadExt;

#[path = "support/binary.rs"]
mod binary;
const TOKEN: &str = "tok-7f3a9c1e5b2d4068a1c3e5f7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_token_never_reaches_logs_or_status() {
    let pki = TestPki::generate();
    let member = FakeMcp::new("vault")
        .tls(&pki.server)
        .require_bearer(TOKEN)
        .start()
        .await;
    let cp = ControlPlane::start().await;
    let port = hangar_tests::free_port();
    let mut child = binary::data_plane(&cp.url(), "dp-secrets", port)
        .env("HANGAR_LOG", "trace")
        .env("VAULT_TOKEN", TOKEN)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn data plane");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let yaml = format!(
        "mcp_servers:\n  vault:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 0.2\n    auth:\n      type: bearer\n      bearer_token: \"${{VAULT_TOKEN}}\"\n    tls:\n      ca_cert_path: \"{}\"\n",
        member.url(),
        pki.ca.display()
    );
    cp.apply_and_wait(&yaml, 1).await;
    let client = McpClient::connect(&format!("http://127.0.0.1:{port}/mcp")).await;
    let call = json!({"mcp_server": "vault", "tool": "add", "arguments": {"a": 1, "b": 1}});
    let out = client.hangar_call(json!({"calls": [call]})).await;
    assert_eq!(out["succeeded"], 1, "{out}");
    assert_eq!(member.unauthorized(), 0);
    let status = format!("{:?}", cp.status().await);
    assert!(status.contains("Authorization"), "status names the header");
    assert!(
        !status.contains(TOKEN),
        "the token is in the status: {status}"
    );

    hangar_tests::process::send_signal(child.id().expect("running"), "TERM");
    let exit = child.wait().await.expect("wait");
    assert!(exit.success(), "{exit}");
    let logs = logs.await.expect("stderr reader");
    // The log is the real thing (the call's HTTP exchange at trace level),
    // not an empty file that could hide nothing.
    assert!(logs.lines().count() > 50, "{logs}");
    assert!(logs.contains("vault"), "{logs}");
    assert!(
        !logs.contains(TOKEN),
        "the token is in the log:\n{}",
        logs.lines()
            .filter(|l| l.contains(TOKEN))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

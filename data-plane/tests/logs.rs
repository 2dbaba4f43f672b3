//! The data plane binary's logs and version, as an operator sees them.

use hangar_tests::process::log_lines_until;

const BIN: &str = env!("CARGO_BIN_EXE_hangar-data-plane");

/// `--log-format json` writes one JSON object per stderr line, even while
/// the control plane is unreachable (port 1 on loopback refuses).
#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let mut command = tokio::process::Command::new(BIN);
    command.args([
        "--control-plane",
        "http://127.0.0.1:1",
        "--node-id",
        "dp-logs",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]);
    let (lines, mut child) = log_lines_until(command, "serving MCP at").await;
    child.kill().await.expect("stop the data plane");
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(event["level"].is_string(), "{line}");
        assert!(event["message"].is_string(), "{line}");
    }
    let serving: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let addr = serving["listen.addr"].as_str().expect("listen.addr field");
    assert!(addr.starts_with("127.0.0.1:"), "{serving}");
}

/// `--version` prints the name and the crate version, and exits 0.
#[test]
fn version_flag_prints_the_crate_version() {
    let out = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .expect("run the data plane");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("hangar-data-plane {}\n", env!("CARGO_PKG_VERSION"))
    );
}

//! The control plane binary's logs and version, as an operator sees them.

use hangar_tests::process::log_lines_until;

const BIN: &str = env!("CARGO_BIN_EXE_hangar-control-plane");

/// `--log-format json` writes one JSON object per stderr line, with the
/// level and message at the top level where log collectors look for them.
#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let state = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(BIN);
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--state-dir",
        ])
        .arg(state.path());
    let (lines, mut child) = log_lines_until(command, "control plane serving").await;
    child.kill().await.expect("stop the control plane");
    assert!(lines.len() >= 2, "{lines:#?}");
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert_eq!(event["level"], "INFO", "{line}");
        assert!(event["message"].is_string(), "{line}");
    }
    let loaded: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(loaded["message"], "config loaded");
    assert_eq!(loaded["config.version"], 0);
}

/// `--version` prints the name and the crate version, and exits 0.
#[test]
fn version_flag_prints_the_crate_version() {
    let out = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .expect("run the control plane");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("hangar-control-plane {}\n", env!("CARGO_PKG_VERSION"))
    );
}

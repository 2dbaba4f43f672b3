//! Clients on the official TypeScript MCP SDK (`tests/ts`, installed by
//! `scripts/node-env`), run with the machine's `node`.

use std::path::PathBuf;

use tokio::process::Command;

fn ts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ts")
}

/// Runs `node tests/ts/<script> <args>` and returns its exit status, its
/// stdout lines parsed as JSON, and its stderr.
pub async fn run(
    script: &str,
    args: &[&str],
) -> (std::process::ExitStatus, Vec<serde_json::Value>, String) {
    assert!(
        ts_dir().join("node_modules").exists(),
        "TypeScript SDK not installed in {} (run scripts/node-env)",
        ts_dir().display()
    );
    let output = Command::new("node")
        .arg(ts_dir().join(script))
        .args(args)
        .output()
        .await
        .expect("run node (Node.js 20 or newer must be on PATH)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (
        output.status,
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

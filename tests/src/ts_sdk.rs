//! Clients on the official TypeScript MCP SDK (`tests/interop/ts`, installed by
//! `scripts/node-env`), run with the machine's `node`.

use std::path::PathBuf;

use tokio::process::Command;

fn ts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/ts")
}

/// Runs `node tests/interop/ts/<script> <args>` (Node.js 20 or newer on PATH).
pub async fn run(script: &str, args: &[&str]) -> crate::process::ClientOutput {
    assert!(
        ts_dir().join("node_modules").exists(),
        "TypeScript SDK not installed in {} (run scripts/node-env)",
        ts_dir().display()
    );
    let mut command = Command::new("node");
    command.arg(ts_dir().join(script)).args(args);
    crate::process::run_json_lines(command, script).await
}

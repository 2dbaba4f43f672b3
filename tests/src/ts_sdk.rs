//! Clients on the official TypeScript MCP SDK (`tests/interop/ts`, installed by
//! `scripts/node-env`), run with the machine's `node`.

use std::path::PathBuf;

use tokio::process::Command;

fn ts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/ts")
}

/// The v1 SDK's client holding one session with `url`
/// (`tests/interop/ts/session_client.mjs`), and its handshake line.
pub async fn session_client(url: &str) -> (crate::conversation::Conversation, serde_json::Value) {
    let mut command = Command::new("node");
    command.arg(ts_dir().join("session_client.mjs")).arg(url);
    crate::conversation::Conversation::start(command, "session_client.mjs").await
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

//! Running a client program that prints one JSON document per stdout line.

use tokio::process::Command;

/// What a client program did: its exit status, its stdout lines as JSON,
/// and its stderr.
pub type ClientOutput = (std::process::ExitStatus, Vec<serde_json::Value>, String);

/// Runs `command` to completion; panics (naming `what`) if it cannot start
/// or prints a stdout line that is not JSON.
pub(crate) async fn run_json_lines(mut command: Command, what: &str) -> ClientOutput {
    let output = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{what} printed non-JSON {l:?}: {e}"))
        })
        .collect();
    (
        output.status,
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

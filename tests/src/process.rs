//! Running a client program that prints one JSON document per stdout line,
//! and reading the log lines of a server binary.

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

/// Starts a server binary with the default log filter and stderr piped,
/// and reads its log lines until
/// one contains `until` (within [`PATIENCE`](crate::eventually::PATIENCE));
/// returns those lines and the still running child (killed on drop).
pub async fn log_lines_until(
    mut command: Command,
    until: &str,
) -> (Vec<String>, tokio::process::Child) {
    use tokio::io::AsyncBufReadExt;

    let mut child = command
        .env_remove("HANGAR_LOG")
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the server");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut reader = tokio::io::BufReader::new(stderr).lines();
    let mut lines = Vec::new();
    let read = async {
        while let Some(line) = reader.next_line().await.expect("read stderr") {
            let done = line.contains(until);
            lines.push(line);
            if done {
                return true;
            }
        }
        false
    };
    let found = tokio::time::timeout(crate::eventually::PATIENCE, read).await;
    assert!(
        matches!(found, Ok(true)),
        "no log line with {until:?}; got: {lines:#?}"
    );
    (lines, child)
}

/// Sends `signal` (e.g. `TERM`) to the process `pid` with kill(1): the
/// workspace forbids the unsafe code a direct kill(2) would take.
///
/// # Panics
/// If kill fails, e.g. because the process is already gone.
pub fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

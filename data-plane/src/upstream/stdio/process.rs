//! The operating-system side of one stdio MCP server: starting the process
//! in its own process group, stopping the whole group in steps, and the
//! backoff between restarts.
//!
//! A server often is a launcher and its child (`npx` → `node`, `uvx` →
//! `python`): signalling only the process we started would orphan the one
//! doing the work, so every signal goes to the group.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::spec::ProcessSpec;

/// How long each polite step of a stop may take (stdin closed, then SIGTERM).
pub(super) const STOP_GRACE: Duration = Duration::from_secs(2);

/// Starts the process: pipes on stdin, stdout and stderr, in a process group
/// of its own, with this process's environment plus `spec.env`.
pub(super) fn spawn(spec: &ProcessSpec) -> io::Result<Child> {
    let Some((program, args)) = spec.command.split_first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the command is empty",
        ));
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The group's id is the child's pid, so the group can be signalled
        // even after the child itself has exited.
        .process_group(0)
        // Last resort if the supervisor is dropped without a stop (runtime
        // shutdown): kills the child, though not the rest of its group.
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    command.spawn()
}

/// Stops the process in steps: `close_stdin`, up to [`STOP_GRACE`] to exit;
/// SIGTERM to the group, up to [`STOP_GRACE`] again; then SIGKILL to the
/// group. Always reaps the child. Returns its exit status when known.
pub(super) async fn terminate(child: &mut Child, close_stdin: impl FnOnce()) -> Option<ExitStatus> {
    let group = group_of(child);
    close_stdin();
    if let Ok(status) = tokio::time::timeout(STOP_GRACE, child.wait()).await {
        return finish(group, status);
    }
    if let Some(group) = group {
        signal_group(group, Signal::SIGTERM);
    }
    if let Ok(status) = tokio::time::timeout(STOP_GRACE, child.wait()).await {
        return finish(group, status);
    }
    tracing::debug!("the process ignored SIGTERM; killing its group");
    if let Some(group) = group {
        signal_group(group, Signal::SIGKILL);
    }
    // `Child::kill` also covers a child without a known pid; it reaps too.
    let _ = child.kill().await;
    finish(group, child.wait().await)
}

/// After the group leader exited: kills what is left of its group (a
/// launcher's children would otherwise live on without a supervisor).
/// The group id cannot be reused while any member of the group lives, so
/// this never hits an unrelated process.
pub(super) fn kill_leftovers(group: Option<Pid>) {
    if let Some(group) = group
        && killpg(group, None).is_ok()
    {
        tracing::debug!(
            group = group.as_raw(),
            "killing what is left of the process group"
        );
        signal_group(group, Signal::SIGKILL);
    }
}

/// The child's process group (its own pid, see [`spawn`]); `None` once reaped.
pub(super) fn group_of(child: &Child) -> Option<Pid> {
    child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .map(Pid::from_raw)
}

fn finish(group: Option<Pid>, status: io::Result<ExitStatus>) -> Option<ExitStatus> {
    kill_leftovers(group);
    status.ok()
}

fn signal_group(group: Pid, signal: Signal) {
    match killpg(group, signal) {
        // The whole group is already gone.
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(group = group.as_raw(), %signal, error = %e, "cannot signal the process group")
        }
    }
}

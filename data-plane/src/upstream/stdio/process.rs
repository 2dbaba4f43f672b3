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
use rand::Rng;
use tokio::process::{Child, Command};

use super::ProcessSpec;

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

/// Capped exponential backoff with full jitter between restarts, so a
/// crashing server is not restarted in a tight loop and replicas that
/// crashed together do not restart in lockstep.
#[derive(Debug)]
pub(super) struct Backoff {
    ceiling: Duration,
}

// === impl Backoff ===

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const CAP: Duration = Duration::from_secs(30);

    pub(super) fn new() -> Self {
        Self {
            ceiling: Self::FIRST,
        }
    }

    /// The next delay: uniform in `[0, ceiling]`, then the ceiling doubles up to the cap.
    pub(super) fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = (ceiling * 2).min(Self::CAP);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }

    /// Back to the first step, after the process stayed up long enough.
    pub(super) fn reset(&mut self) {
        self.ceiling = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delays stay under a ceiling that doubles to the cap, and a reset
    /// brings the ceiling back down.
    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new();
        let ceilings = [
            100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000,
        ];
        for ceiling in ceilings {
            let delay = backoff.next_delay();
            assert!(
                delay <= Duration::from_millis(ceiling),
                "{delay:?} over {ceiling} ms"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
        // Full jitter: across many draws at the cap, delays spread over the range.
        let mut at_cap = Backoff {
            ceiling: Backoff::CAP,
        };
        let draws: Vec<Duration> = (0..200).map(|_| at_cap.next_delay()).collect();
        assert!(draws.iter().any(|d| *d < Duration::from_secs(10)));
        assert!(draws.iter().any(|d| *d > Duration::from_secs(20)));
    }
}

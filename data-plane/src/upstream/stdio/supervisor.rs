//! The supervisor of one copy of a stdio MCP server: starts the process,
//! does the MCP handshake, publishes the session, watches for the end of the
//! process, restarts it with backoff, and stops it for good when told to.

use std::io;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::unistd::Pid;
use tokio::io::BufReader;
use tokio::process::{Child, ChildStderr};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use hangar_runtime::backoff::Backoff;

use super::process;
use super::session::{self, Line, Session};
use super::shared::{Phase, Shared};
use super::spec::ProcessSpec;
use crate::upstream::error::UpstreamError;

/// Longest wait for the answer to `initialize`; generous because `npx` and
/// `uvx` may download the server first.
const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(30);
/// Restart delays double from the first to the last, so a crashing server
/// is not restarted in a tight loop; jitter keeps copies that crashed
/// together from restarting in lockstep.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
const LAST_RESTART_DELAY: Duration = Duration::from_secs(30);
/// A process that stayed up this long restarts without the backoff built
/// up by earlier crashes.
const STABLE_UPTIME: Duration = Duration::from_secs(30);
/// How long the end of a process and the end of its stdout may lag one
/// another: answers written just before an exit are still delivered, and
/// the error of a request cut short names the exit status.
const DRAIN: Duration = Duration::from_secs(1);
/// Longest stderr line logged; stderr is only for operators.
const MAX_STDERR_LINE: usize = 64 * 1024;

/// How one run of the process ended.
enum Ran {
    /// `stop` was cancelled and the process is gone.
    Stopped,
    /// The process ended or was given up on; the reason, for logs and errors.
    Ended(String),
}

/// What a run of the process is waiting for.
enum Event {
    Initialized(Result<Arc<serde_json::Value>, UpstreamError>),
    Exited(io::Result<ExitStatus>),
    IoLost(String),
    Stop,
    /// The member asked for the process to be killed and started again.
    Restart(String),
}

/// Runs the process until `stop` is cancelled, restarting it whenever it
/// ends; then marks `shared` stopped.
pub(super) async fn supervise(
    shared: Arc<Shared>,
    spec: ProcessSpec,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let mut backoff = Backoff::new(FIRST_RESTART_DELAY, LAST_RESTART_DELAY);
    let mut first = true;
    tokio::select! {
        () = shared.wanted.cancelled() => {}
        () = stop.cancelled() => {}
    }
    while !stop.is_cancelled() {
        if !first {
            shared.restarts.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        shared.set_down("the process is starting");
        shared.set_phase(Phase::Starting);
        let started = tokio::time::Instant::now();
        let reason = match process::spawn(&spec) {
            Ok(child) => match run(&shared, child, &stop, &tracker).await {
                Ran::Stopped => break,
                Ran::Ended(reason) => reason,
            },
            Err(e) => format!("cannot start '{}': {e}", program(&spec)),
        };
        if started.elapsed() >= STABLE_UPTIME {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::warn!(%reason, restart_in_ms = delay.as_millis(), "member process is down");
        shared.set_down(format!("{reason}; next start in {} ms", delay.as_millis()));
        shared.set_phase(Phase::Down);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => break,
        }
    }
    shared.set_down("the member is stopped");
    shared.set_phase(Phase::Down);
    tracing::info!("member process stopped");
    shared.stopped.cancel();
}

/// The program name only: arguments may carry secrets.
fn program(spec: &ProcessSpec) -> &str {
    spec.command.first().map_or("", String::as_str)
}

/// One run of a spawned process, from handshake to its end.
async fn run(
    shared: &Shared,
    mut child: Child,
    stop: &CancellationToken,
    tracker: &TaskTracker,
) -> Ran {
    let pid = child.id();
    // Taken now: once the child is reaped it no longer tells its pid.
    let group = process::group_of(&child);
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        // Cannot happen with piped stdio; stop the process rather than panic.
        let _ = process::terminate(&mut child, || {}).await;
        return Ran::Ended("the process has no stdio pipes".into());
    };
    shared.pid.store(pid.unwrap_or(0), Ordering::Relaxed);
    tracing::info!(pid, "member process started");
    let stderr_done = CancellationToken::new();
    tracker.spawn(log_stderr(stderr, stderr_done.clone()).in_current_span());
    let session = Session::start(
        stdin,
        stdout,
        shared.notifications.clone(),
        shared.activity.clone(),
        shared.read_timeout,
        tracker,
    );

    let ran = drive(shared, &mut child, group, &session, stop).await;

    shared.session.store(None);
    shared.pid.store(0, Ordering::Relaxed);
    stderr_done.cancel();
    ran
}

/// Handshake, then serve until the process ends or `stop` is cancelled.
async fn drive(
    shared: &Shared,
    child: &mut Child,
    group: Option<Pid>,
    session: &Arc<Session>,
    stop: &CancellationToken,
) -> Ran {
    let handshake = tokio::select! {
        result = session.initialize(INITIALIZE_TIMEOUT) => Event::Initialized(result),
        status = child.wait() => Event::Exited(status),
        reason = session.io_lost() => Event::IoLost(reason),
        () = stop.cancelled() => Event::Stop,
    };
    match handshake {
        Event::Initialized(Ok(_)) => {}
        other => {
            shared.set_down("the process is being stopped: its handshake did not complete");
            return end(child, group, session, other).await;
        }
    }
    // A new process may list other tools than the last one did.
    shared.tools.forget();
    shared.session.store(Some(session.clone()));
    shared.set_phase(Phase::Up);
    tracing::info!(pid = child.id(), "member process ready");
    let event = tokio::select! {
        status = child.wait() => Event::Exited(status),
        reason = session.io_lost() => Event::IoLost(reason),
        () = stop.cancelled() => Event::Stop,
        () = shared.restart.notified() => Event::Restart(shared.restart_reason.lock().clone()),
    };
    // Unpublished before the session ends, so a request that finds no
    // session was surely never written.
    shared.session.store(None);
    shared.set_down("the process is ending");
    end(child, group, session, event).await
}

/// Ends the session and the process after `event`; the process is reaped.
async fn end(child: &mut Child, group: Option<Pid>, session: &Session, event: Event) -> Ran {
    match event {
        Event::Stop => {
            let _ = process::terminate(child, || session.end("the member is stopping")).await;
            Ran::Stopped
        }
        Event::Exited(status) => {
            process::kill_leftovers(group);
            // Answers written just before the exit are still in the pipe.
            let _ = tokio::time::timeout(DRAIN, session.io_lost()).await;
            let reason = exited(status);
            session.end(&reason);
            Ran::Ended(reason)
        }
        Event::IoLost(lost) => {
            // Usually the process is exiting: wait a moment for its status.
            if let Ok(status) = tokio::time::timeout(DRAIN, child.wait()).await {
                process::kill_leftovers(group);
                let reason = exited(status);
                session.end(&reason);
                return Ran::Ended(reason);
            }
            let reason = format!("the process is unusable: {lost}");
            let _ = process::terminate(child, || session.end(&reason)).await;
            Ran::Ended(reason)
        }
        Event::Restart(reason) => {
            // Hung: a process that answers no probe will not read a closed
            // stdin or act on SIGTERM either.
            let reason = format!("the process was killed: {reason}");
            session.end(&reason);
            process::kill_leftovers(group);
            let _ = child.kill().await;
            Ran::Ended(reason)
        }
        Event::Initialized(result) => {
            let reason = match result {
                Err(UpstreamError::Timeout(after)) => {
                    format!(
                        "no answer to initialize within {}",
                        hangar_runtime::Rounded(after)
                    )
                }
                Err(e) => format!("initialize failed: {e}"),
                Ok(_) => "initialize ended the run".into(),
            };
            let _ = process::terminate(child, || session.end(&reason)).await;
            Ran::Ended(reason)
        }
    }
}

fn exited(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => format!("the process exited ({status})"),
        Err(e) => format!("the process ended; its status is unknown: {e}"),
    }
}

/// Logs the server's stderr at debug, line by line (servers may log their
/// arguments, so never higher). Ends at end of stream, or shortly after
/// `done` if a descendant outside the group still holds the pipe.
async fn log_stderr(stderr: ChildStderr, done: CancellationToken) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let give_up = async {
        done.cancelled().await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::pin!(give_up);
    loop {
        let read = tokio::select! {
            () = &mut give_up => return,
            read = session::read_line(&mut reader, &mut line, MAX_STDERR_LINE) => read,
        };
        match read {
            Ok(Some(Line::Complete)) => {
                tracing::debug!(line = %String::from_utf8_lossy(&line), "stderr");
            }
            Ok(Some(Line::TooLong)) => {
                tracing::debug!(
                    limit = MAX_STDERR_LINE,
                    "skipped a stderr line over the limit"
                );
            }
            Ok(None) | Err(_) => return,
        }
    }
}

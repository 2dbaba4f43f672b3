//! An MCP client for one copy of a `mode: subprocess` member: a stdio MCP
//! server (`npx …`, `uvx …`, `python server.py`) that this data plane runs
//! itself.
//!
//! [`StdioUpstream::start`] spawns a supervisor task that owns the process:
//! it starts it, does the `initialize` handshake, and only then lets
//! requests through; it restarts the process with capped, jittered backoff
//! whenever it exits, and stops it (stdin closed, SIGTERM, SIGKILL, to the
//! whole process group) when the member's `stop` token is cancelled.
//! Requests are multiplexed over the one session of the running process.
//!
//! # Layout
//! - `process`: spawning, stopping a process group, restart backoff;
//! - `session`: the JSON-RPC multiplexer over stdin/stdout;
//! - `supervisor`: the run/restart loop tying the two together;
//! - `spec`: what to run; `shared`: the state the handles and the
//!   supervisor share.

mod process;
mod session;
mod shared;
mod spec;
mod supervisor;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub use self::shared::Start;
use self::shared::{Phase, Shared};
pub use self::spec::{ProcessSpec, resolve_env};
use super::activity::Activity;
use super::error::UpstreamError;
use super::tools::{ToolNames, ToolServer};

/// Server notifications kept for a slow subscriber before it misses some.
const NOTIFICATION_BUFFER: usize = 256;

/// One supervised copy of a stdio MCP server.
///
/// The process lives until `stop` (given to [`StdioUpstream::start`]) is
/// cancelled or the last handle to this value is dropped.
#[derive(Debug)]
pub struct StdioUpstream {
    shared: Arc<Shared>,
    /// When the process starts.
    start: Start,
    /// Stops the supervisor if every handle is dropped without a stop.
    _stop_on_drop: DropGuard,
}

// === impl StdioUpstream ===

impl StdioUpstream {
    /// Starts the supervisor task (spawned on `tracker`), which runs the
    /// process, restarts it with capped jittered backoff when it exits or
    /// crashes, and stops it when `stop` is cancelled. `member_id` is for
    /// logs. A request fails with [`UpstreamError::Quiet`] when the process
    /// writes nothing for `read_timeout`.
    pub fn start(
        spec: ProcessSpec,
        member_id: String,
        read_timeout: Option<Duration>,
        start: Start,
        stop: CancellationToken,
        tracker: &TaskTracker,
    ) -> Arc<Self> {
        let wanted = CancellationToken::new();
        if start == Start::Now {
            wanted.cancel();
        }
        let shared = Arc::new(Shared {
            session: ArcSwapOption::empty(),
            down: Mutex::new("the process is starting".into()),
            pid: AtomicU32::new(0),
            restarts: AtomicU64::new(0),
            notifications: broadcast::channel(NOTIFICATION_BUFFER).0,
            stopped: CancellationToken::new(),
            activity: Arc::default(),
            read_timeout,
            restart: tokio::sync::Notify::new(),
            restart_reason: Mutex::new(String::new()),
            tools: ToolNames::default(),
            wanted,
            phase: watch::channel(Phase::Idle).0,
        });
        let stop = stop.child_token();
        // A root span: the process outlives whatever task applied the
        // snapshot that created it (the control-plane stream).
        let span = tracing::info_span!(parent: None, "subprocess", member.id = %member_id);
        tracker.spawn(
            supervisor::supervise(shared.clone(), spec, stop.clone(), tracker.clone())
                .instrument(span),
        );
        Arc::new(Self {
            shared,
            start,
            _stop_on_drop: stop.drop_guard(),
        })
    }

    /// One JSON-RPC request in the process's MCP session; the `result`
    /// value, or an [`UpstreamError`]: [`UpstreamError::Unavailable`] at once
    /// when the process is not running and initialized, except that the
    /// first requests of a process started on first use start it and wait
    /// for its handshake (within `timeout`).
    pub async fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let started = tokio::time::Instant::now();
        let session = match self.shared.session.load_full() {
            Some(session) => session,
            None => self.first_start(timeout).await?,
        };
        let timeout = timeout.saturating_sub(started.elapsed());
        session.request(method, params, timeout).await
    }

    /// The session of a process started on first use that has not been up
    /// yet: starts it and waits at most `timeout` for its handshake. Any
    /// other process without a session is unavailable at once (the request
    /// may go to another member).
    async fn first_start(&self, timeout: Duration) -> Result<Arc<session::Session>, UpstreamError> {
        let unavailable = || UpstreamError::Unavailable(self.shared.down.lock().clone());
        let mut phase = self.shared.phase.subscribe();
        if !self.awaits_first_start() {
            return Err(unavailable());
        }
        if self.shared.wanted.is_cancelled() {
            tracing::debug!("waiting for the process started by an earlier request");
        } else {
            tracing::info!("starting the member process on its first use");
            self.shared.wanted.cancel();
        }
        let settled = phase.wait_for(|p| matches!(p, Phase::Up | Phase::Down));
        match tokio::time::timeout(timeout, settled).await {
            Ok(_) => self.shared.session.load_full().ok_or_else(unavailable),
            Err(_) => Err(UpstreamError::Unavailable(format!(
                "the process started on first use did not finish starting within {}",
                hangar_runtime::Rounded(timeout)
            ))),
        }
    }

    /// True for a process started on first use that has not been up yet:
    /// no request has needed it, or the first is starting it. There is
    /// nothing to probe or list, and calls waiting for the start are not
    /// hung.
    pub fn awaits_first_start(&self) -> bool {
        let phase = *self.shared.phase.borrow();
        self.start == Start::OnFirstUse
            && self.restarts() == 0
            && matches!(phase, Phase::Idle | Phase::Starting)
    }

    /// Whether the server marks `tool` read-only or idempotent.
    pub fn retry_safe(&self, tool: &str) -> bool {
        self.shared.tools.retry_safe(tool)
    }

    /// Health: the process is running, initialized, and answers `ping`
    /// within `timeout`. A process being started (with its config, or
    /// again after it ended) gets that `timeout` to finish its handshake:
    /// a probe that only raced the start would otherwise keep it out of
    /// rotation for a whole probe period.
    /// A process not started yet (it starts on first use) counts as
    /// healthy, so that calls reach it and start it.
    pub async fn probe(&self, timeout: Duration) -> Result<(), UpstreamError> {
        if self.awaits_first_start() {
            return Ok(());
        }
        let began = tokio::time::Instant::now();
        let mut phase = self.shared.phase.subscribe();
        let settled = phase.wait_for(|p| matches!(p, Phase::Up | Phase::Down));
        // Past the deadline the ping below fails as unavailable.
        let _ = tokio::time::timeout(timeout, settled).await;
        let timeout = timeout.saturating_sub(began.elapsed());
        self.request("ping", json!({}), timeout).await.map(drop)
    }

    /// The process's answer to our `initialize` (protocolVersion,
    /// capabilities, serverInfo), while it runs.
    pub fn initialize_result(&self) -> Option<Arc<Value>> {
        self.shared
            .session
            .load()
            .as_ref()
            .and_then(|s| s.initialize_result())
    }

    /// When the process last wrote to stdout.
    pub fn activity(&self) -> &Activity {
        &self.shared.activity
    }

    /// Kills the running process (it is hung: it fails its probes) so the
    /// supervisor starts it again; nothing happens while none runs.
    pub fn restart(&self, reason: String) {
        if self.shared.session.load().is_none() {
            return;
        }
        *self.shared.restart_reason.lock() = reason;
        self.shared.restart.notify_one();
    }

    /// PID of the running process (also the id of its process group), if any.
    pub fn pid(&self) -> Option<u32> {
        Some(self.shared.pid.load(Ordering::Relaxed)).filter(|&pid| pid != 0)
    }

    /// How many times the process was started again after it ended or
    /// could not be started.
    pub fn restarts(&self) -> u64 {
        self.shared.restarts.load(Ordering::Relaxed)
    }

    /// Notifications from the server (`notifications/progress`,
    /// `notifications/message`, …), whole JSON-RPC messages, from now on.
    pub fn notifications(&self) -> broadcast::Receiver<Arc<Value>> {
        self.shared.notifications.subscribe()
    }

    /// Resolves when the supervisor has stopped the process for good (after
    /// `stop` was cancelled).
    pub async fn stopped(&self) {
        self.shared.stopped.cancelled().await;
    }
}

impl ToolServer for StdioUpstream {
    fn mcp_request<'a>(
        &'a self,
        method: &'a str,
        params: Value,
        timeout: Duration,
    ) -> impl Future<Output = Result<Value, UpstreamError>> + Send + 'a {
        self.request(method, params, timeout)
    }

    fn tool_names(&self) -> &ToolNames {
        &self.shared.tools
    }
}

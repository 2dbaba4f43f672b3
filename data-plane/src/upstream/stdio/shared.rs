//! The state of one copy that its handles and its supervisor task share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::session::Session;
use crate::upstream::activity::Activity;
use crate::upstream::tools::ToolNames;

/// State shared by the handles and the supervisor task.
#[derive(Debug)]
pub(super) struct Shared {
    /// The session of the running, initialized process; `None` otherwise.
    pub(super) session: ArcSwapOption<Session>,
    /// Why there is no session, for [`UpstreamError::Unavailable`].
    pub(super) down: Mutex<String>,
    /// PID of the current process; 0 when there is none.
    pub(super) pid: AtomicU32,
    pub(super) restarts: AtomicU64,
    /// Outlives sessions, so subscribers keep their place across restarts.
    pub(super) notifications: broadcast::Sender<Arc<Value>>,
    /// Cancelled when the supervisor has stopped the process for good.
    pub(super) stopped: CancellationToken,
    /// When the process last wrote a line to stdout.
    pub(super) activity: Arc<Activity>,
    /// Longest silence of the process while a request waits: its read timeout.
    pub(super) read_timeout: Option<Duration>,
    /// Wakes the supervisor to kill the running process and start it again.
    pub(super) restart: tokio::sync::Notify,
    /// Why the restart was asked for.
    pub(super) restart_reason: Mutex<String>,
    /// The tools the process lists; forgotten when a new process is up.
    pub(super) tools: ToolNames,
    /// Cancelled when the process may start: at once, or on first use (see
    /// [`Start`]).
    pub(super) wanted: CancellationToken,
    /// Where the process is in its life, for requests that wait for the
    /// first start.
    pub(super) phase: watch::Sender<Phase>,
}

/// When a copy's process starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// As soon as the member is created.
    Now,
    /// When the first request needs it: a client that may never call the
    /// server does not pay for its process (an IDE's `--stdio` data plane).
    OnFirstUse,
}

/// Where a copy's process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Not started: waiting for its first use.
    Idle,
    /// Being started (spawned, handshake under way).
    Starting,
    /// Running and initialized.
    Up,
    /// Ended or could not start; the supervisor tries again after a delay.
    Down,
}

// === impl Shared ===

impl Shared {
    pub(super) fn set_down(&self, reason: impl Into<String>) {
        *self.down.lock() = reason.into();
    }

    pub(super) fn set_phase(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }
}

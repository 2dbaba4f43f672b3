//! When a member last sent this data plane anything: an answer's head, a
//! chunk of a body, an SSE event, a line on a process's stdout. A member
//! with calls outstanding that has sent nothing for its `stall_timeout` is
//! suspected of hanging (`route::member` probes it to tell busy from hung),
//! and a stdio call whose process has been silent for its read timeout
//! fails.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

/// The last time a member sent bytes.
#[derive(Debug)]
pub struct Activity {
    origin: Instant,
    /// Milliseconds after `origin`.
    last_ms: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl Activity {
    /// The member sent something just now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the member last sent something (its creation, if never).
    pub fn last(&self) -> Instant {
        self.origin + std::time::Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

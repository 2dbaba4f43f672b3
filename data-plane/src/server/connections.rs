//! The open connections of one HTTP front, so that none can hold a file
//! descriptor for nothing:
//!
//! - a connection with no request in progress is closed once it has been
//!   idle for the request head timeout, counted from accept or from the end
//!   of its last answer. That holds before hyper has even seen which HTTP
//!   version the client speaks (a socket that never sends a byte), and for
//!   HTTP/2, which has no head timeout of its own;
//! - when accepting fails for want of file descriptors, idle connections
//!   are closed to make room ([`Connections::shed_idle`]), rather than every
//!   client waiting for the limit to pass: first those that never carried a
//!   request, then those idle longest.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One connection: its requests in progress and since when it is idle.
///
/// A request costs two atomic operations here, not a wake-up: the idle
/// timer is not reset per request but looks at the connection when it
/// fires, and is set again for when the connection could next have been
/// idle long enough.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Requests whose answer is not fully sent.
    busy: AtomicUsize,
    /// When the last request ended, or when the connection was accepted.
    idle_since: Mutex<Instant>,
    /// Whether a request ever began on it.
    served: AtomicBool,
    /// Cancelled to close the connection.
    close: CancellationToken,
}

/// Held while a request of a connection is in progress.
#[derive(Debug)]
pub(crate) struct InProgress(Arc<Conn>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let conn = &self.0;
        if conn.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            // A request beginning in between makes this stamp early, which
            // only matters once that request has ended and stamped again.
            *conn.idle_since.lock() = Instant::now();
        }
    }
}

impl Conn {
    fn new() -> Self {
        Self {
            busy: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            served: AtomicBool::new(false),
            close: CancellationToken::new(),
        }
    }

    /// Marks a request in progress until the guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> InProgress {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.served.store(true, Ordering::Relaxed);
        InProgress(self.clone())
    }

    /// Completes when the connection should be closed: it was told to
    /// ([`Connections::shed_idle`]), or it has had no request in progress
    /// for `idle_timeout`.
    pub(crate) async fn closed(&self, idle_timeout: Duration) {
        let timer = tokio::time::sleep_until(*self.idle_since.lock() + idle_timeout);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                () = self.close.cancelled() => return,
                () = &mut timer => {}
            }
            let now = Instant::now();
            let next = match self.shed_order() {
                Some((_, since)) if since + idle_timeout <= now => {
                    tracing::debug!(?idle_timeout, "closing an idle connection");
                    return;
                }
                // Idle, but not for long enough yet.
                Some((_, since)) => since + idle_timeout,
                // Busy: idle at the earliest from now on.
                None => now + idle_timeout,
            };
            timer.as_mut().reset(next);
        }
    }

    /// `None` while a request is in progress; else the order in which idle
    /// connections are shed, first to go first.
    fn shed_order(&self) -> Option<(bool, Instant)> {
        (self.busy.load(Ordering::Acquire) == 0)
            .then(|| (self.served.load(Ordering::Relaxed), *self.idle_since.lock()))
    }
}

/// How long accepting must go without running out of file descriptors for
/// an episode of it to be over.
const FD_EPISODE_GAP: Duration = Duration::from_secs(1);

/// Every open connection of a listening socket, over all the threads that
/// accept from it.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// When an accept last failed for want of file descriptors, while that
    /// episode lasts.
    out_of_fds_at: Mutex<Option<Instant>>,
}

/// A connection's place in [`Connections`]; dropping it forgets the
/// connection.
#[derive(Debug)]
pub(crate) struct Registered {
    id: u64,
    conn: Arc<Conn>,
    connections: Arc<Connections>,
}

impl Registered {
    /// The connection.
    pub(crate) fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections.open.lock().remove(&self.id);
    }
}

impl Connections {
    /// Registers a connection just accepted.
    pub(crate) fn register(self: &Arc<Self>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new());
        self.open.lock().insert(id, conn.clone());
        Registered {
            id,
            conn,
            connections: self.clone(),
        }
    }

    /// Notes that accepting failed for want of file descriptors; true if
    /// that begins an episode (the first failure, or the first after
    /// [`FD_EPISODE_GAP`] without one), which is worth saying.
    pub(crate) fn out_of_fds(&self) -> bool {
        let now = Instant::now();
        let last = self.out_of_fds_at.lock().replace(now);
        last.is_none_or(|at| now - at > FD_EPISODE_GAP)
    }

    /// Notes a connection accepted; true if that ends an episode begun by
    /// [`Connections::out_of_fds`]: none for [`FD_EPISODE_GAP`]. Several
    /// threads shedding and accepting in turn make one episode, not one
    /// each time an accept succeeds.
    pub(crate) fn fds_back(&self) -> bool {
        let mut at = self.out_of_fds_at.lock();
        match *at {
            Some(last) if last.elapsed() > FD_EPISODE_GAP => {
                *at = None;
                true
            }
            _ => false,
        }
    }

    /// Connections open now.
    pub(crate) fn len(&self) -> usize {
        self.open.lock().len()
    }

    /// Closes an eighth of the idle connections, at least one while any is
    /// idle. Returns how many were told to close.
    ///
    /// Connections that never carried a request go first: they hold a
    /// descriptor for nothing yet. A client's kept-alive connection is
    /// likely to carry its next request, and closing it races that request:
    /// the client sees a reset it cannot safely retry, the request being a
    /// POST. Within each kind, the connection idle longest goes first.
    pub(crate) fn shed_idle(&self) -> usize {
        let mut idle: Vec<((bool, Instant), Arc<Conn>)> = self
            .open
            .lock()
            .values()
            .filter_map(|conn| conn.shed_order().map(|order| (order, conn.clone())))
            .collect();
        if idle.is_empty() {
            return 0;
        }
        idle.sort_by_key(|(order, _)| *order);
        let shed = (idle.len() / 8).max(1);
        for (_, conn) in idle.iter().take(shed) {
            conn.close.cancel();
        }
        shed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_closes_after_the_timeout_and_a_busy_one_does_not() {
        let connections = Arc::new(Connections::default());
        let registered = connections.register();
        let conn = registered.conn().clone();
        let timeout = Duration::from_secs(30);
        let started = Instant::now();
        conn.closed(timeout).await;
        assert_eq!(started.elapsed(), timeout, "idle from accept");

        let request = conn.begin();
        let closed = conn.closed(timeout);
        tokio::pin!(closed);
        let busy = tokio::time::timeout(Duration::from_secs(605), &mut closed).await;
        assert!(busy.is_err(), "a request in progress keeps it open");
        drop(request);
        let ended = Instant::now();
        closed.await;
        assert_eq!(ended.elapsed(), timeout, "idle from the end of the answer");

        // A request that ends between two looks of the timer.
        let closed = conn.closed(timeout);
        tokio::pin!(closed);
        let request = conn.begin();
        let busy = tokio::time::timeout(Duration::from_secs(40), &mut closed).await;
        assert!(busy.is_err());
        drop(request);
        let ended = Instant::now();
        closed.await;
        assert_eq!(ended.elapsed(), timeout, "idle from the end of the answer");
    }

    #[tokio::test(start_paused = true)]
    async fn shedding_closes_the_longest_idle_connections_first() {
        let connections = Arc::new(Connections::default());
        let mut registered = Vec::new();
        for _ in 0..16 {
            registered.push(connections.register());
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        let _busy = registered[0].conn().begin();
        assert_eq!(connections.shed_idle(), 15 / 8);
        // The oldest is busy; the next oldest goes.
        assert!(!registered[0].conn().close.is_cancelled());
        assert!(registered[1].conn().close.is_cancelled());
        assert!(!registered[2].conn().close.is_cancelled());
        drop(registered);
        assert_eq!(connections.len(), 0, "closed connections are forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn shedding_spares_connections_that_carried_requests() {
        let connections = Arc::new(Connections::default());
        let client = connections.register();
        drop(client.conn().begin());
        tokio::time::advance(Duration::from_millis(10)).await;
        let mut silent = Vec::new();
        for _ in 0..8 {
            silent.push(connections.register());
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        assert_eq!(connections.shed_idle(), 9 / 8);
        assert!(
            !client.conn().close.is_cancelled(),
            "the kept-alive client, though idle longest, stays"
        );
        assert!(
            silent[0].conn().close.is_cancelled(),
            "the silent one idle longest goes"
        );
        assert!(!silent[1].conn().close.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn an_out_of_descriptors_episode_is_said_once_until_a_quiet_second() {
        let connections = Connections::default();
        assert!(connections.out_of_fds(), "the first failure begins one");
        assert!(
            !connections.fds_back(),
            "an accept right after ends nothing"
        );
        tokio::time::advance(Duration::from_millis(300)).await;
        assert!(
            !connections.out_of_fds(),
            "another thread failing: same episode"
        );
        tokio::time::advance(FD_EPISODE_GAP + Duration::from_millis(1)).await;
        assert!(
            connections.fds_back(),
            "a quiet second, then an accept: over"
        );
        assert!(!connections.fds_back(), "said once");
        assert!(connections.out_of_fds(), "the next failure begins another");
    }
}

//! Serving threads: client connections are served on one single-threaded
//! runtime per thread, as nginx's workers and Envoy's do, instead of on a
//! work-stealing pool. A call's client connection, its connection to the
//! member (each thread has its own pool of those, see `upstream::clients`)
//! and its timers stay on one thread, so a call wakes no other thread.
//!
//! Every thread accepts from its own copy of the one listening socket. All
//! are woken by a new connection and whichever is free first takes it, so a
//! busy thread takes fewer. (`SO_REUSEPORT` would split connections by hash
//! instead, whatever each thread's load, and would let another process bind
//! the same port without an error.)
//!
//! Background work (the control-plane stream, probes) stays on the runtime
//! that started the threads. Tasks a request starts (a stdio member's
//! process, a session's stream) run on that request's thread, which keeps
//! running them after its listener has drained, until [`Threads::stop`].

use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::server::connections::Connections;
use crate::server::front::Front;
use crate::server::listener::{self, Limits};

/// How often a serving thread looks over its idle member connections.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The longest a serving thread's runtime goes without a timer due; see
/// [`keep_a_timer_due`].
const TIMER_DUE_WITHIN: Duration = Duration::from_secs(1);

/// Threads serving one listener; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Threads {
    /// One per thread, sent when its listener has drained.
    drained: Vec<oneshot::Receiver<()>>,
    /// Cancelled to let the threads' runtimes end.
    stop: CancellationToken,
    joins: Vec<JoinHandle<()>>,
}

impl Threads {
    /// Starts `count` threads serving `front` on `listener` until
    /// `shutdown`, each draining as `listener::serve` does; `halt` (or a
    /// thread's own part of it, once that thread has drained) ends what
    /// is left.
    pub(crate) fn start(
        listener: std::net::TcpListener,
        count: NonZeroUsize,
        front: &Front,
        limits: &Limits,
        shutdown: &CancellationToken,
        halt: &CancellationToken,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let stop = CancellationToken::new();
        // One registry, so the connections idle longest over all threads
        // are shed first.
        let connections = Arc::new(Connections::default());
        let mut threads = Self {
            drained: Vec::new(),
            stop: stop.clone(),
            joins: Vec::new(),
        };
        for index in 0..count.get() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // Registered with this thread's runtime, not the caller's.
            let own = {
                let _entered = runtime.enter();
                TcpListener::from_std(listener.try_clone()?)?
            };
            let (drained, drained_rx) = oneshot::channel();
            let (front, limits, connections) = (front.clone(), limits.clone(), connections.clone());
            // The thread's own: a thread that has drained ends what is left
            // of its connections, not everyone's (`halt` is cancelled once
            // all have drained).
            let (shutdown, halt, stop) = (shutdown.clone(), halt.child_token(), stop.clone());
            let join = std::thread::Builder::new()
                .name(format!("hangar-serve-{index}"))
                .spawn(move || {
                    // Its log lines say which thread drained.
                    let span = tracing::info_span!("serving", thread = index);
                    runtime.block_on(async move {
                        tokio::spawn(sweep_idle_member_connections());
                        tokio::spawn(keep_a_timer_due());
                        listener::serve(own, front, connections, &limits, &shutdown, &halt)
                            .instrument(span)
                            .await;
                        let _ = drained.send(());
                        stop.cancelled().await;
                    });
                })?;
            threads.drained.push(drained_rx);
            threads.joins.push(join);
        }
        Ok(threads)
    }

    /// Completes when every thread's listener has drained. A thread that
    /// ended without draining (a panic) counts as drained.
    pub(crate) async fn drained(&mut self) {
        for drained in self.drained.drain(..) {
            if drained.await.is_err() {
                tracing::error!("a serving thread ended before draining");
            }
        }
    }

    /// Ends the threads, dropping whatever their runtimes still run, and
    /// waits for them.
    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        let joins = std::mem::take(&mut self.joins);
        let joined = tokio::task::spawn_blocking(move || {
            joins
                .into_iter()
                .map(JoinHandle::join)
                .filter(Result::is_err)
                .count()
        })
        .await;
        if !matches!(joined, Ok(0)) {
            tracing::error!("a serving thread panicked");
        }
    }
}

/// Keeps a timer of this thread's runtime due within [`TIMER_DUE_WITHIN`].
///
/// tokio wakes a runtime's driver (an eventfd write, then a return from
/// `epoll_wait` with nothing to do) whenever a timer is armed that falls
/// due before every other timer of the runtime. Calls arm timers of fixed
/// lengths, so a call's timer was often that one, the previous call's
/// being gone: a `hangar_call`'s 15 s keep-alive timer
/// (`endpoint::mcp::direct`) cost a wake-up per call. With this tick
/// always nearer, arming a timer of a second or more wakes nothing, for
/// one wake-up a second.
async fn keep_a_timer_due() {
    let mut every = tokio::time::interval(TIMER_DUE_WITHIN);
    loop {
        every.tick().await;
    }
}

/// Closes this thread's idle member connections that expired or that their
/// members closed, even while no call comes to take them.
async fn sweep_idle_member_connections() {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        crate::upstream::h1::sweep();
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

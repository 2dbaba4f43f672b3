//! Idle connections to members, per thread and member address.
//!
//! A socket is driven by the runtime that opened it, and every serving
//! thread runs its own (`server::threads`), so a connection is only ever
//! pooled, and taken, on a thread of its own runtime. The newest idle
//! connection is taken first (its member is the likeliest to have kept
//! it); one idle past [`IDLE_TIMEOUT`] is closed when the pool is next
//! touched or swept.

use std::cell::RefCell;
use std::time::Duration;

use http::uri::Authority;
use tokio::time::Instant;

use super::wire::{Conn, current_runtime};

/// How long an idle connection is kept (hyper's pool kept them as long).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// The most idle connections a thread keeps to one member.
const MAX_IDLE_PER_MEMBER: usize = 1024;
/// How often taking or putting back a connection also sweeps the pool.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Idle {
    /// By the member's authority as its URI spells it: hashed as one
    /// string, where `Authority`'s own hash folds case byte by byte.
    by_member: foldhash::HashMap<Box<str>, Vec<(Conn, Instant)>>,
    swept: Option<Instant>,
}

thread_local! {
    static IDLE: RefCell<Idle> = RefCell::default();
}

/// An idle connection to `authority` that can carry a request, if this
/// thread has one.
pub(super) fn take(authority: &Authority) -> Option<Conn> {
    IDLE.with_borrow_mut(|idle| {
        let now = Instant::now();
        idle.sweep_if_due(now);
        let waiting = idle.by_member.get_mut(authority.as_str())?;
        let runtime = current_runtime();
        while let Some((conn, since)) = waiting.pop() {
            // Another runtime's: this thread ran one before (tests do).
            if conn.runtime == runtime && now - since < IDLE_TIMEOUT && !conn.is_unusable() {
                return Some(conn);
            }
        }
        None
    })
}

/// Keeps `conn`, whose last answer was read whole, for the next request
/// to `authority` on this thread.
pub(super) fn put(authority: &Authority, conn: Conn) {
    if conn.runtime != current_runtime() {
        return;
    }
    IDLE.with_borrow_mut(|idle| {
        let now = Instant::now();
        idle.sweep_if_due(now);
        let waiting = match idle.by_member.get_mut(authority.as_str()) {
            Some(waiting) => waiting,
            None => idle.by_member.entry(authority.as_str().into()).or_default(),
        };
        if waiting.len() >= MAX_IDLE_PER_MEMBER {
            waiting.remove(0);
        }
        waiting.push((conn, now));
    });
}

/// Closes this thread's idle connections that expired or that their
/// members closed. Serving threads call it now and then, so that a thread
/// with no calls does not hold connections its members gave up.
pub fn sweep() {
    IDLE.with_borrow_mut(|idle| idle.sweep(Instant::now()));
}

impl Idle {
    fn sweep_if_due(&mut self, now: Instant) {
        if self.swept.is_none_or(|at| now - at >= SWEEP_EVERY) {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: Instant) {
        self.swept = Some(now);
        self.by_member.retain(|_, waiting| {
            waiting.retain(|(conn, since)| now - *since < IDLE_TIMEOUT && !conn.is_unusable());
            !waiting.is_empty()
        });
    }
}

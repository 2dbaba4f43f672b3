//! A group's circuit breaker, as MCP Hangar's recipe 03 defines it
//! (`circuit_breaker: {failure_threshold}`): `failure_threshold` calls in a
//! row through the group that fail (transport errors, 5xx, timeouts; never
//! answers such as `isError` results) open it; while open, calls through
//! the group are refused at once with [`CircuitOpen`]. It closes when
//! `min_healthy` members are back in rotation: in rotation and answering a
//! probe since it opened. There is no timer and no half-open state: the
//! probes, which keep running, are what tests the members.
//!
//! Calls record their outcome here where they settle (`InFlightCall`), for
//! both endpoints; the failover loop asks [`CircuitBreaker::check`] before
//! it picks a member.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The breaker of one group on this data plane.
#[derive(Debug)]
pub struct CircuitBreaker {
    group: String,
    /// Failed calls in a row that open the circuit; 0 means never.
    threshold: u32,
    /// Failed calls in a row while closed.
    failures: AtomicU32,
    /// Whether the circuit is open: the one thing every call reads, so it
    /// is an atomic; `opened_at` is locked only while open.
    open: AtomicBool,
    /// When the circuit opened; `None` while closed.
    opened_at: Mutex<Option<Instant>>,
    /// How often the circuit opened, for metrics.
    opened: AtomicU64,
    /// Wakes the control-plane reporter when the circuit opens or closes.
    changed: Arc<Notify>,
}

/// The group's circuit is open: the call was refused without being sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Circuit breaker open (too many consecutive failures) for group '{group}': {threshold} calls in a row failed; it closes when {min_healthy} member(s) answer a probe again"
)]
pub struct CircuitOpen {
    /// The group.
    pub group: String,
    /// Its `failure_threshold`.
    pub threshold: u32,
    /// Members that must be back for it to close.
    pub min_healthy: u32,
}

/// What [`CircuitBreaker::view`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerView {
    /// True while calls are refused.
    pub open: bool,
    /// Failed calls in a row so far.
    pub consecutive_failures: u32,
    /// Times the circuit opened.
    pub opened: u64,
}

impl CircuitBreaker {
    /// A closed breaker for `group` that opens after `threshold` failed
    /// calls in a row (never when 0), and notifies `changed` when it opens
    /// or closes.
    pub fn new(group: &str, threshold: u32, changed: Arc<Notify>) -> Self {
        Self {
            group: group.to_owned(),
            threshold,
            failures: AtomicU32::new(0),
            open: AtomicBool::new(false),
            opened_at: Mutex::new(None),
            opened: AtomicU64::new(0),
            changed,
        }
    }

    /// The `failure_threshold` it was made with.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Lets a call through unless the circuit is open. An open circuit
    /// closes here once `back_since(opened_at)` (members in rotation that
    /// answered a probe since then) reaches `min_healthy` (at least 1).
    pub fn check(
        &self,
        min_healthy: u32,
        back_since: impl FnOnce(Instant) -> usize,
    ) -> Result<(), CircuitOpen> {
        if !self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut opened_at = self.opened_at.lock();
        let Some(since) = *opened_at else {
            return Ok(());
        };
        let needed = min_healthy.max(1);
        if back_since(since) >= needed as usize {
            *opened_at = None;
            self.failures.store(0, Ordering::Relaxed);
            self.open.store(false, Ordering::Release);
            drop(opened_at);
            tracing::info!(group = %self.group, "circuit closed: members are back in rotation");
            self.changed.notify_one();
            return Ok(());
        }
        Err(CircuitOpen {
            group: self.group.clone(),
            threshold: self.threshold,
            min_healthy: needed,
        })
    }

    /// A call through the group got an answer.
    pub fn record_success(&self) {
        // An answer to a call sent before the circuit opened closes nothing.
        if !self.open.load(Ordering::Acquire) && self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// A call through the group failed in a way that says its member is
    /// unwell.
    pub fn record_failure(&self) {
        if self.threshold == 0 || self.open.load(Ordering::Acquire) {
            return;
        }
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < self.threshold {
            return;
        }
        let mut opened_at = self.opened_at.lock();
        if opened_at.is_none() {
            *opened_at = Some(Instant::now());
            self.open.store(true, Ordering::Release);
            drop(opened_at);
            self.opened.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                group = %self.group,
                failures = self.threshold,
                "circuit open: calls through the group are refused until members are back"
            );
            self.changed.notify_one();
        }
    }

    /// The breaker's state now (an open circuit that could close stays
    /// open until the next call checks it).
    pub fn view(&self) -> BreakerView {
        BreakerView {
            open: self.open.load(Ordering::Acquire),
            consecutive_failures: self.failures.load(Ordering::Relaxed),
            opened: self.opened.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_failures_in_a_row_and_closes_when_members_are_back() {
        let breaker = CircuitBreaker::new("g", 3, Arc::default());
        breaker.record_failure();
        breaker.record_failure();
        breaker.record_success();
        breaker.record_failure();
        breaker.record_failure();
        assert!(breaker.check(1, |_| 0).is_ok(), "a success reset the count");
        breaker.record_failure();
        let refused = breaker.check(2, |_| 1).unwrap_err();
        assert_eq!(refused.min_healthy, 2);
        assert!(refused.to_string().contains("group 'g'"), "{refused}");
        // A success seen while open (a call that was in flight) does not close it.
        breaker.record_success();
        assert!(breaker.view().open);
        let opened_at = Instant::now();
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        assert!(
            breaker
                .check(2, |since| {
                    assert_eq!(since, opened_at);
                    2
                })
                .is_ok()
        );
        assert_eq!(
            breaker.view(),
            BreakerView {
                open: false,
                consecutive_failures: 0,
                opened: 1
            }
        );
    }

    #[test]
    fn a_threshold_of_zero_never_opens() {
        let breaker = CircuitBreaker::new("g", 0, Arc::default());
        for _ in 0..100 {
            breaker.record_failure();
        }
        assert!(breaker.check(1, |_| 0).is_ok());
    }
}

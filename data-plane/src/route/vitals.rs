//! A member's vital signs, which other parts of routing read lock-free:
//! whether it is in rotation, when it last came back, how many probes it
//! failed, all as [`Stamp`]s of its own clock. The member writes them; a
//! group's outlier detection (`route/outlier.rs`) reads them without
//! depending on the member itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// What others may know of one member.
#[derive(Debug)]
pub(crate) struct Vitals {
    id: String,
    /// The base of the member's stamps.
    born: Instant,
    /// Mirror of the member's health, read lock-free on every call.
    healthy: AtomicBool,
    /// When the member last came back into rotation, for slow start.
    restored_at: AtomicU64,
    /// Probes that failed, ever: an outlier ejection ends early once the
    /// member has failed a probe and come back (it went down, and what
    /// answers now is a new process).
    probe_failures: AtomicU64,
}

impl Vitals {
    /// The vitals of member `id`, in rotation or not.
    pub(crate) fn new(id: String, healthy: bool) -> Self {
        Self {
            id,
            born: Instant::now(),
            healthy: AtomicBool::new(healthy),
            restored_at: AtomicU64::new(Stamp::NEVER.0),
            probe_failures: AtomicU64::new(0),
        }
    }

    /// The member's id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Whether the member is in rotation (its probes and calls say so).
    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub(crate) fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// `at` as a [`Stamp`] of this member.
    pub(crate) fn stamp(&self, at: Instant) -> Stamp {
        let nanos = at.saturating_duration_since(self.born).as_nanos();
        Stamp(
            u64::try_from(nanos)
                .unwrap_or(u64::MAX - 1)
                .saturating_add(1),
        )
    }

    /// When the member last came back into rotation, if it ever did.
    pub(crate) fn restored_at(&self) -> Stamp {
        Stamp(self.restored_at.load(Ordering::Relaxed))
    }

    pub(crate) fn note_restored(&self, at: Stamp) {
        self.restored_at.store(at.0, Ordering::Relaxed);
    }

    /// Failed probes since the member was built.
    pub(crate) fn probe_failures(&self) -> u64 {
        self.probe_failures.load(Ordering::Relaxed)
    }

    pub(crate) fn note_probe_failure(&self) {
        self.probe_failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// A point in time of one member, in nanoseconds since the member was
/// built plus one, so it fits an atomic; 0 is [`Stamp::NEVER`]. Stamps of
/// different members do not compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp(pub(crate) u64);

impl Stamp {
    /// No time: the event never happened.
    pub(crate) const NEVER: Stamp = Stamp(0);

    /// Whether the event happened.
    pub(crate) fn is_set(self) -> bool {
        self != Self::NEVER
    }

    /// The time from `earlier` to this stamp (zero if it is later).
    pub(crate) fn since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// This stamp moved `by` later.
    pub(crate) fn after(self, by: Duration) -> Stamp {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        Stamp(self.0.saturating_add(by))
    }
}

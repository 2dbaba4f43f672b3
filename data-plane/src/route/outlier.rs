//! Passive outlier ejection of a group's members, as Envoy's outlier
//! detection does it (`outlier_detection:` of a group).
//!
//! Probes say whether a member is up; calls say whether it does its job. A
//! member that answers its probes but fails `consecutive_failures`
//! delivered calls in a row (transport errors after delivery, 5xx,
//! protocol errors, and timeouts of members not watched for hangs; never a
//! tool's `isError` result, never a call that did not reach it) leaves the
//! group for an ejection time: `base_ejection_time` the first time, n times
//! that for the n-th ejection in a row (at most `max_ejection_time`), the
//! count falling by one for each `base_ejection_time` the member stays out
//! of trouble. Probes passing do not end an ejection, so a member that
//! answers pings but fails tools cannot flap back every probe period.
//!
//! Two things end it early. A member that failed a probe during its
//! ejection and then came back went down and up: what answers now is a new
//! process, and it returns at once (a restarted member is back within one
//! probe interval). And an ejection never takes more than
//! `max_ejection_percent` of the group out at once (one member always
//! may be), so a fault of the callers cannot empty a group.
//!
//! A member that comes back, from an ejection or from being out of
//! rotation, gets a share that grows from a tenth to full over
//! `slow_start` ([`Standing::ramp_percent`], used by the balancer).
//!
//! Calls record their outcome here where they settle (`InFlightCall`);
//! the group's order reads [`Outliers::standing`] of each member. Times are
//! [`Stamp`]s of the member, so the hot path reads atomics only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use hangar_proto::v1;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::route::vitals::{Stamp, Vitals};

/// The share a returning member starts from, in percent (Envoy's
/// `min_weight_percent` default).
const SLOW_START_FLOOR_PERCENT: u64 = 10;

/// A group's `outlier_detection:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutlierPolicy {
    /// Delivered calls in a row that failed and eject a member.
    pub(crate) consecutive_failures: u32,
    /// The first ejection's length.
    pub(crate) base_ejection_time: Duration,
    /// The longest ejection.
    pub(crate) max_ejection_time: Duration,
    /// Most of the group ejected at once, in percent (one member always may be).
    pub(crate) max_ejection_percent: u32,
    /// How long a returning member's share takes to grow to full; zero for none.
    pub(crate) slow_start: Duration,
}

impl OutlierPolicy {
    /// The policy of a snapshot's group; `None` when it has none.
    pub(crate) fn of(proto: Option<&v1::OutlierDetection>) -> Option<Self> {
        let p = proto?;
        let base = Duration::from_millis(p.base_ejection_time_ms.max(1));
        Some(Self {
            consecutive_failures: p.consecutive_failures.max(1),
            base_ejection_time: base,
            max_ejection_time: Duration::from_millis(p.max_ejection_time_ms).max(base),
            max_ejection_percent: p.max_ejection_percent.min(100),
            slow_start: Duration::from_millis(p.slow_start_ms),
        })
    }

    /// Members of a group of `size` that may be ejected at once.
    fn max_ejected(&self, size: usize) -> usize {
        (size * self.max_ejection_percent as usize / 100).max(1)
    }
}

/// What the balancer should know of one member now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Standing {
    /// Out of the group until its ejection time is up.
    pub(crate) ejected: bool,
    /// Its share of calls, in percent: below 100 while it ramps up after
    /// coming back.
    pub(crate) ramp_percent: u8,
}

impl Standing {
    const FULL: Standing = Standing {
        ejected: false,
        ramp_percent: 100,
    };
}

/// The clock, read once for all members of one order and only when a
/// member needs it.
#[derive(Debug, Default)]
pub(crate) struct LazyNow(Option<Instant>);

impl LazyNow {
    fn get(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

/// Ejection state of one member in one group; kept across snapshots that
/// keep the member.
#[derive(Debug, Default)]
struct Ejection {
    /// Delivered calls in a row that failed.
    failures: AtomicU32,
    /// Until when the member is out; [`Stamp::NEVER`] when it is not.
    until: AtomicU64,
    /// The member's failed probes when the ejection began.
    probe_failures_then: AtomicU64,
    /// When the last ejection ended, for slow start and to let the
    /// multiplier fall.
    returned_at: AtomicU64,
    /// Ejections in a row; the next lasts one more base time.
    multiplier: AtomicU32,
    /// Ejections since the member joined the group.
    ejections: AtomicU64,
}

/// The outlier detection of one group on this data plane.
#[derive(Debug)]
pub(crate) struct Outliers {
    group: String,
    policy: OutlierPolicy,
    /// By the member's index in the group.
    members: Vec<(Arc<Vitals>, Arc<Ejection>)>,
    /// Held while deciding an ejection, so the cap on the ejected share holds.
    ejecting: Mutex<()>,
    /// Wakes the control-plane reporter when a member leaves or returns.
    changed: Arc<Notify>,
}

impl Outliers {
    /// Outlier detection for `group` over `members` (in the group's order),
    /// keeping the state of members that `old` (the group's detection in
    /// the previous snapshot) had, so an apply does not lift an ejection.
    pub(crate) fn new(
        group: &str,
        policy: OutlierPolicy,
        members: &[Arc<Vitals>],
        old: Option<&Outliers>,
        changed: Arc<Notify>,
    ) -> Self {
        let kept = |member: &Arc<Vitals>| {
            old.and_then(|o| o.members.iter().find(|(m, _)| Arc::ptr_eq(m, member)))
                .map(|(_, state)| state.clone())
        };
        Self {
            group: group.to_owned(),
            policy,
            members: members
                .iter()
                .map(|m| (m.clone(), kept(m).unwrap_or_default()))
                .collect(),
            ejecting: Mutex::new(()),
            changed,
        }
    }

    /// Member `index`'s standing now; ends an ejection that is over.
    pub(crate) fn standing(&self, index: usize, now: &mut LazyNow) -> Standing {
        let (member, state) = &self.members[index];
        let until = Stamp(state.until.load(Ordering::Relaxed));
        if until.is_set() {
            let at = member.stamp(now.get());
            let restarted = member.is_healthy()
                && member.probe_failures() > state.probe_failures_then.load(Ordering::Relaxed);
            if at < until && !restarted {
                return Standing {
                    ejected: true,
                    ramp_percent: 100,
                };
            }
            let returned = if restarted { at } else { until };
            // One caller ends it; the others see it ended.
            if state
                .until
                .compare_exchange(
                    until.0,
                    Stamp::NEVER.0,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                state.returned_at.store(returned.0, Ordering::Relaxed);
                let reason = if restarted {
                    "it failed a probe and answers again (restarted)"
                } else {
                    "its ejection time is up"
                };
                tracing::info!(group = %self.group, member.id = %member.id(), reason, "member back in the group");
                self.changed.notify_one();
            }
        }
        Standing {
            ejected: false,
            ramp_percent: self.ramp_percent(member, state, now),
        }
    }

    /// The share of a member that came back within `slow_start`.
    fn ramp_percent(&self, member: &Vitals, state: &Ejection, now: &mut LazyNow) -> u8 {
        let window = self.policy.slow_start;
        let back = Stamp(state.returned_at.load(Ordering::Relaxed)).max(member.restored_at());
        if window.is_zero() || !back.is_set() {
            return Standing::FULL.ramp_percent;
        }
        let elapsed = member.stamp(now.get()).since(back);
        if elapsed >= window {
            return Standing::FULL.ramp_percent;
        }
        let grown =
            (100 - SLOW_START_FLOOR_PERCENT) as f64 * elapsed.as_secs_f64() / window.as_secs_f64();
        (SLOW_START_FLOOR_PERCENT as f64 + grown) as u8
    }

    /// Member `index` answered: its run of failures ends.
    pub(crate) fn record_answer(&self, index: usize) {
        let failures = &self.members[index].1.failures;
        // Read first: most calls succeed, and a store would bounce the
        // cache line between cores on every call.
        if failures.load(Ordering::Relaxed) != 0 {
            failures.store(0, Ordering::Relaxed);
        }
    }

    /// A delivered call to member `index` failed; ejects the member when
    /// that makes `consecutive_failures` in a row.
    pub(crate) fn record_failure(&self, index: usize) {
        let (member, state) = &self.members[index];
        let failures = state.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < self.policy.consecutive_failures {
            return;
        }
        let _deciding = self.ejecting.lock();
        let mut now = LazyNow::default();
        if self.standing(index, &mut now).ejected {
            return;
        }
        let ejected = (0..self.members.len())
            .filter(|&i| i != index && self.standing(i, &mut now).ejected)
            .count();
        let cap = self.policy.max_ejected(self.members.len());
        if ejected >= cap {
            tracing::debug!(
                group = %self.group, member.id = %member.id(), ejected, cap,
                "not ejecting: max_ejection_percent of the group is out already"
            );
            return;
        }
        state.failures.store(0, Ordering::Relaxed);
        let at = member.stamp(now.get());
        let duration = self.next_ejection_time(state, at);
        state
            .probe_failures_then
            .store(member.probe_failures(), Ordering::Relaxed);
        state.until.store(at.after(duration).0, Ordering::Relaxed);
        state.ejections.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            group = %self.group, member.id = %member.id(), failures,
            ejection_s = duration.as_secs_f64(),
            "member ejected from the group: its delivered calls keep failing"
        );
        self.changed.notify_one();
    }

    /// The length of an ejection starting `at`: one base time more than the
    /// last one, less one for each base time since the member came back.
    fn next_ejection_time(&self, state: &Ejection, at: Stamp) -> Duration {
        let base = self.policy.base_ejection_time;
        let returned = Stamp(state.returned_at.load(Ordering::Relaxed));
        let quiet = if returned.is_set() {
            at.since(returned)
        } else {
            Duration::ZERO
        };
        let forgiven = u32::try_from(quiet.as_nanos() / base.as_nanos().max(1)).unwrap_or(u32::MAX);
        let most = u32::try_from(
            self.policy
                .max_ejection_time
                .as_nanos()
                .div_ceil(base.as_nanos().max(1)),
        )
        .unwrap_or(u32::MAX);
        let multiplier = state
            .multiplier
            .load(Ordering::Relaxed)
            .saturating_sub(forgiven)
            .saturating_add(1)
            .min(most);
        state.multiplier.store(multiplier, Ordering::Relaxed);
        base.saturating_mul(multiplier)
            .min(self.policy.max_ejection_time)
    }

    /// Ids of the members ejected now, in the group's order.
    pub(crate) fn ejected(&self) -> Vec<String> {
        let mut now = LazyNow::default();
        (0..self.members.len())
            .filter(|&i| self.standing(i, &mut now).ejected)
            .map(|i| self.members[i].0.id().to_owned())
            .collect()
    }

    /// Ejections since the group got its members, over all of them.
    pub(crate) fn ejections(&self) -> u64 {
        self.members
            .iter()
            .map(|(_, s)| s.ejections.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
#[path = "outlier_tests.rs"]
mod tests;

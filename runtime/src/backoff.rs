//! Capped exponential backoff with jitter, for every loop that retries
//! something that failed: reconnecting to the control plane, following
//! etcd, restarting a crashed subprocess. [`Reconnect`] is the data plane's
//! policy for its control-plane stream, kept here so that the fleet bench's
//! simulated data planes reconnect exactly as real ones do.

use std::time::Duration;

use rand::Rng;

/// Delays that double from `first` up to `cap`. Each delay is drawn
/// uniformly from the upper half of the current step, so a fleet that
/// failed together does not retry in lockstep, while a retry never comes
/// sooner than half the step.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    step: Duration,
}

impl Backoff {
    /// Starts at `first`; no delay exceeds `cap`.
    pub fn new(first: Duration, cap: Duration) -> Self {
        Self {
            first,
            cap,
            step: first.min(cap),
        }
    }

    /// The delay before the next attempt; the step then doubles up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(self.cap);
        step.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// Back to the first step, after an attempt succeeded.
    pub fn reset(&mut self) {
        self.step = self.first.min(self.cap);
    }
}

/// When a data plane retries its control-plane stream: capped exponential
/// backoff while attempts fail, and after a stream that worked ends or
/// breaks, a first retry drawn uniformly from zero to [`Reconnect::SPREAD`]
/// (full jitter). A restarted control plane loses every stream at the same
/// moment; the upper half of a 100 ms step would bring the whole fleet back
/// within 50 ms, while a draw over the spread turns the moment into an even
/// arrival rate that the control plane admits as it comes.
#[derive(Debug, Clone)]
pub struct Reconnect {
    backoff: Backoff,
}

/// How the last attempt at the control-plane stream went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// It failed before a stream opened: no connection, or a refusal.
    Failed,
    /// The stream opened, then the control plane ended it.
    Ended,
    /// The stream opened, then broke (the control plane died, the
    /// connection was cut).
    Lost,
}

impl Reconnect {
    /// First delay of the backoff.
    pub const FIRST: Duration = Duration::from_millis(100);
    /// No delay is longer.
    pub const CAP: Duration = Duration::from_secs(5);
    /// The first retry after a stream that worked comes within this long.
    pub const SPREAD: Duration = Duration::from_secs(1);

    /// A stream not tried yet.
    pub fn new() -> Self {
        Self {
            backoff: Backoff::new(Self::FIRST, Self::CAP),
        }
    }

    /// The delay before the next attempt after `attempt`: after a stream
    /// that worked, a draw over the spread and the backoff starts over; a
    /// failure doubles it.
    pub fn after(&mut self, attempt: Attempt) -> Duration {
        match attempt {
            Attempt::Failed => self.backoff.next_delay(),
            Attempt::Ended | Attempt::Lost => {
                self.backoff.reset();
                Self::SPREAD.mul_f64(rand::rng().random_range(0.0..=1.0))
            }
        }
    }
}

impl Default for Reconnect {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_jitter_and_resets() {
        let first = Duration::from_millis(100);
        let cap = Duration::from_secs(5);
        let mut backoff = Backoff::new(first, cap);
        let mut step = first;
        for _ in 0..12 {
            let delay = backoff.next_delay();
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} within [{:?}, {step:?}]",
                step / 2
            );
            step = (step * 2).min(cap);
        }
        assert_eq!(step, cap);
        backoff.reset();
        assert!(backoff.next_delay() <= first);
    }

    #[test]
    fn a_stream_that_worked_is_retried_within_the_spread_then_backs_off_afresh() {
        let mut reconnect = Reconnect::new();
        for _ in 0..6 {
            reconnect.after(Attempt::Failed);
        }
        for ended in [Attempt::Ended, Attempt::Lost] {
            assert!(reconnect.after(ended) <= Reconnect::SPREAD);
            let delay = reconnect.after(Attempt::Failed);
            assert!(
                delay >= Reconnect::FIRST / 2 && delay <= Reconnect::FIRST,
                "{delay:?}: the backoff started over"
            );
        }
    }
}

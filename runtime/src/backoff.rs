//! Capped exponential backoff with jitter, for every loop that retries
//! something that failed: reconnecting to the control plane, following
//! etcd, restarting a crashed subprocess.

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
}

//! A member's latency as `least_latency` sees it: a peak-sensitive,
//! exponentially weighted moving average (Finagle's and Linkerd's "peak
//! EWMA").
//!
//! A sample above the average replaces it at once (a member that turns
//! slow is avoided from its next answer); one below pulls it down with a
//! weight that depends on the time since the last sample, `1 - e^(-Δt/τ)`,
//! so the average forgets at the same pace whether answers come ten or a
//! thousand times a second. Read without new samples, it decays toward
//! zero at that pace (as tower's `PeakEwma` does): a member that was slow
//! and so got no calls is tried again, instead of being judged forever by
//! its last answer. The balancer multiplies it by the member's calls in
//! flight plus one: the expected wait of a new call.
//!
//! Pure: callers pass the time (any monotonic offset).

use std::time::Duration;

/// How fast the average forgets: after `DECAY`, a sample's weight is
/// `1/e`. Shorter than Linkerd's 10 s, so a member that speeds up wins its
/// calls back within seconds; tool calls are long enough that a few
/// seconds still span many of them.
pub const DECAY: Duration = Duration::from_secs(3);

/// A peak-sensitive moving average of latency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakEwma {
    /// The average, in microseconds.
    micros: f64,
    /// When the last sample came.
    at: Duration,
}

impl PeakEwma {
    /// The average after its first sample.
    pub fn new(sample: Duration, now: Duration) -> Self {
        Self {
            micros: micros(sample),
            at: now,
        }
    }

    /// Folds in a sample taken at `now`.
    pub fn observe(&mut self, sample: Duration, now: Duration) {
        let sample = micros(sample);
        if sample > self.micros {
            self.micros = sample;
        } else {
            let elapsed = now.saturating_sub(self.at).as_secs_f64();
            let keep = (-elapsed / DECAY.as_secs_f64()).exp();
            self.micros = self.micros * keep + sample * (1.0 - keep);
        }
        self.at = self.at.max(now);
    }

    /// The average at `now` in whole microseconds, decayed for the time
    /// since the last sample; at least 1 (0 means "no samples" to the
    /// balancer).
    pub fn micros_at(&self, now: Duration) -> u64 {
        let idle = now.saturating_sub(self.at).as_secs_f64();
        let decayed = self.micros * (-idle / DECAY.as_secs_f64()).exp();
        (decayed.round() as u64).max(1)
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A slower sample takes over at once: a member that turns slow is
    /// avoided from its next answer.
    #[test]
    fn a_peak_takes_over_at_once() {
        let mut ewma = PeakEwma::new(10 * MS, Duration::ZERO);
        ewma.observe(200 * MS, MS);
        assert_eq!(ewma.micros_at(MS), 200_000);
    }

    /// Without samples it decays toward zero, so a member that was slow
    /// (and got no calls since) is tried again.
    #[test]
    fn an_idle_average_decays() {
        let ewma = PeakEwma::new(200 * MS, Duration::ZERO);
        assert_eq!(ewma.micros_at(Duration::ZERO), 200_000);
        // 200 ms / e after one decay time.
        assert!((73_000..74_000).contains(&ewma.micros_at(DECAY)));
        assert_eq!(ewma.micros_at(DECAY * 100), 1);
    }

    /// Faster samples pull it down at the decay's pace, not the sample
    /// rate's: after one decay time of fast answers it is mostly forgotten.
    #[test]
    fn faster_samples_decay_it_by_time() {
        let mut slow_rate = PeakEwma::new(200 * MS, Duration::ZERO);
        slow_rate.observe(10 * MS, DECAY);
        let mut fast_rate = PeakEwma::new(200 * MS, Duration::ZERO);
        for i in 1..=1000u32 {
            fast_rate.observe(10 * MS, DECAY * i / 1000);
        }
        // 10 ms + 190 ms / e ≈ 79.9 ms either way.
        for ewma in [slow_rate, fast_rate] {
            assert!(
                (79_000..81_000).contains(&ewma.micros_at(DECAY)),
                "{ewma:?}"
            );
        }
    }
}

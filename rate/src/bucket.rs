//! One token bucket: `burst` tokens at most, refilled at `rps` a second;
//! each call takes one.

use std::time::Duration;

use tokio::time::Instant;

/// The size of a bucket: its refill rate and how many tokens it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second (more than 0).
    pub rps: f64,
    /// Tokens the bucket holds when full (at least 1).
    pub burst: f64,
}

impl Rate {
    /// A rate of `rps` a second with `burst` at once; values out of range
    /// are raised to the least that works (a refill above 0, one token).
    pub fn new(rps: f64, burst: f64) -> Self {
        Self {
            rps: if rps.is_finite() && rps > 0.0 {
                rps
            } else {
                f64::MIN_POSITIVE
            },
            burst: if burst.is_finite() {
                burst.max(1.0)
            } else {
                1.0
            },
        }
    }
}

/// A token bucket. Starts full.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

// === impl Bucket ===

impl Bucket {
    /// A full bucket of `rate` as of `now`.
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            tokens: rate.burst,
            at: now,
        }
    }

    /// The bucket's size.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate.rps))
        }
    }

    /// Returns a token taken for a call that was refused further on, so a
    /// refusal costs nothing here.
    pub fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.rate.burst);
    }

    /// True when the bucket is full as of `now`: then it is the same as a
    /// new one, and may be forgotten without changing any decision.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.rate.burst
    }

    /// Resizes the bucket (a new fleet share), keeping the tokens it holds
    /// up to the new burst.
    pub fn resize(&mut self, rate: Rate, now: Instant) {
        self.refill(now);
        self.rate = rate;
        self.tokens = self.tokens.min(rate.burst);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.rps).min(self.rate.burst);
        self.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_admits_its_burst_then_one_per_refill() {
        let mut bucket = Bucket::new(Rate::new(10.0, 20.0), Instant::now());
        for _ in 0..20 {
            assert_eq!(bucket.take(Instant::now()), Ok(()));
        }
        // Empty: the next token is a tenth of a second away.
        assert_eq!(bucket.take(Instant::now()), Err(Duration::from_millis(100)));
        tokio::time::advance(Duration::from_millis(40)).await;
        let wait = bucket.take(Instant::now()).unwrap_err();
        assert!((wait.as_secs_f64() - 0.06).abs() < 1e-9, "{wait:?}");
        tokio::time::advance(Duration::from_millis(60)).await;
        assert_eq!(bucket.take(Instant::now()), Ok(()));
        assert!(bucket.take(Instant::now()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn refill_stops_at_the_burst() {
        let mut bucket = Bucket::new(Rate::new(100.0, 3.0), Instant::now());
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..3 {
            assert!(bucket.take(Instant::now()).is_ok());
        }
        assert!(bucket.take(Instant::now()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_given_back_is_there_for_the_next_call() {
        let mut bucket = Bucket::new(Rate::new(1.0, 1.0), Instant::now());
        assert!(bucket.take(Instant::now()).is_ok());
        bucket.give_back();
        assert!(bucket.take(Instant::now()).is_ok());
        assert!(bucket.take(Instant::now()).is_err());
        // Never above the burst.
        bucket.give_back();
        bucket.give_back();
        assert!(bucket.is_full(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_smaller_share_caps_the_tokens_held() {
        let mut bucket = Bucket::new(Rate::new(10.0, 10.0), Instant::now());
        bucket.resize(Rate::new(2.0, 2.0), Instant::now());
        assert!(bucket.take(Instant::now()).is_ok());
        assert!(bucket.take(Instant::now()).is_ok());
        assert_eq!(bucket.take(Instant::now()), Err(Duration::from_millis(500)));
    }

    #[test]
    fn rates_out_of_range_are_raised_to_the_least_that_works() {
        let rate = Rate::new(0.0, 0.0);
        assert!(rate.rps > 0.0);
        assert_eq!(rate.burst, 1.0);
        assert_eq!(Rate::new(f64::NAN, f64::INFINITY).burst, 1.0);
    }
}

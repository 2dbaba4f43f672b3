//! Why a call was refused, in the words MCP Hangar uses, and when to retry.

use std::fmt;
use std::time::Duration;

use crate::bucket::Rate;

/// Which bucket of a limit was empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The bucket all callers share.
    AllCallers,
    /// The calling client's own bucket (`per_caller`).
    EachCaller,
}

/// A refused call: the limit, its size and when a token is there again.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// What the limit is on, in words: `group 'search'`, `tool 'x' of
    /// server 'y'`, `this data plane (MCP_RATE_LIMIT_RPS)`.
    pub limit: String,
    /// Which bucket refused.
    pub which: Which,
    /// The size the config gives it.
    pub configured: Rate,
    /// This data plane's share of a fleet-wide limit; `None` for a limit of
    /// this data plane alone.
    pub share: Option<Rate>,
    /// How long until the bucket holds a token.
    pub retry_after: Duration,
}

impl Refusal {
    /// `Retry-After` in whole seconds, at least 1 (HTTP has no fractions).
    pub fn retry_after_header(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }

    /// The wait in milliseconds, rounded up, for machine-readable errors.
    pub fn retry_after_ms(&self) -> u64 {
        (self.retry_after.as_secs_f64() * 1000.0).ceil() as u64
    }
}

impl fmt::Display for Refusal {
    /// MCP Hangar's text, "RateLimitExceeded: the rate limit all callers
    /// share for … is used up (20 at once, refilled at 10 per second).
    /// Retry after 0.04s.", with the fleet share when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = match self.which {
            Which::AllCallers => "all callers share",
            Which::EachCaller => "each caller has",
        };
        write!(
            f,
            "RateLimitExceeded: the rate limit {whose} for {} is used up ({} at once, refilled at {} per second",
            self.limit,
            Number(self.configured.burst),
            Number(self.configured.rps),
        )?;
        if let Some(share) = self.share {
            write!(
                f,
                " across the fleet; this data plane's share is {} at once, {} per second",
                Number(share.burst.floor()),
                Number(share.rps),
            )?;
        }
        // Never "0s": a client reading it as "now" would spin.
        let seconds = (self.retry_after.as_secs_f64() * 100.0).ceil().max(1.0) / 100.0;
        write!(f, "). Retry after {}s.", Number(seconds))
    }
}

/// A number as people write it: no trailing zeros, at most two decimals.
struct Number(f64);

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{:.2}", self.0);
        let text = text.trim_end_matches('0').trim_end_matches('.');
        f.write_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(share: Option<Rate>, retry_after: Duration) -> Refusal {
        Refusal {
            limit: "group 'search'".to_owned(),
            which: Which::AllCallers,
            configured: Rate::new(10.0, 20.0),
            share,
            retry_after,
        }
    }

    #[test]
    fn reads_as_mcp_hangars_text() {
        let text = refusal(None, Duration::from_millis(40)).to_string();
        assert_eq!(
            text,
            "RateLimitExceeded: the rate limit all callers share for group 'search' is used up (20 at once, refilled at 10 per second). Retry after 0.04s."
        );
    }

    #[test]
    fn a_fleet_limit_names_this_data_planes_share() {
        let text = refusal(Some(Rate::new(2.5, 5.0)), Duration::from_millis(400)).to_string();
        assert!(
            text.ends_with(
                "(20 at once, refilled at 10 per second across the fleet; this data plane's share is 5 at once, 2.5 per second). Retry after 0.4s."
            ),
            "{text}"
        );
    }

    #[test]
    fn the_wait_is_never_zero() {
        let refused = refusal(None, Duration::from_micros(10));
        assert!(refused.to_string().ends_with("Retry after 0.01s."));
        assert_eq!(refused.retry_after_header(), 1);
        assert_eq!(refused.retry_after_ms(), 1);
        let refused = refusal(None, Duration::from_millis(2300));
        assert_eq!(refused.retry_after_header(), 3);
    }
}

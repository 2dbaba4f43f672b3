//! A group's retry policy (MCP Hangar's `retry:` keys): whether a call that
//! reached a member and failed is sent again, to the next member, and after
//! how long. The failover loop asks it; it never allows a retry by itself:
//! the tool must also be marked `readOnlyHint` or `idempotentHint` by the
//! member that failed (a delivered `tools/call` is not idempotent unless
//! the server says so).

use std::time::Duration;

use hangar_proto::v1;
use rand::Rng;
use serde::Serialize;

/// What a failed attempt was, for `retry_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureClass {
    /// No answer in time (deadline or read timeout).
    Timeout,
    /// The connection or process broke after the request was sent.
    Connection,
    /// HTTP 5xx.
    ServerError,
    /// An answer that is not valid MCP.
    Protocol,
}

impl FailureClass {
    /// Whether `name`, as `retry_on` spells it (MCP Hangar's error names or
    /// Hangar's own error kinds), names this class.
    fn named_by(self, name: &str) -> bool {
        let names: &[&str] = match self {
            Self::Timeout => &["timeout", "timeouterror", "read_timeout"],
            Self::Connection => &[
                "connection",
                "connectionerror",
                "connection_failed",
                "transport_error",
                "transienterror",
            ],
            Self::ServerError => &["server_error", "servererror", "5xx", "transienterror"],
            Self::Protocol => &["protocol_error", "protocolerror"],
        };
        names.contains(&name.to_ascii_lowercase().as_str())
    }
}

/// How the wait between retries grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Growth {
    Exponential,
    Linear,
    Constant,
}

/// One group's retry policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RetryPolicy {
    max_attempts: u32,
    growth: Growth,
    initial_delay: Duration,
    max_delay: Duration,
    retry_on: Vec<String>,
    jitter_factor: f64,
}

impl RetryPolicy {
    /// The policy of a snapshot group, if it has one.
    pub(crate) fn of(policy: Option<&v1::RetryPolicy>) -> Option<Self> {
        let policy = policy?;
        Some(Self {
            max_attempts: policy.max_attempts.max(1),
            growth: match policy.backoff.as_str() {
                "linear" => Growth::Linear,
                "constant" => Growth::Constant,
                _ => Growth::Exponential,
            },
            initial_delay: Duration::from_millis(policy.initial_delay_ms),
            max_delay: Duration::from_millis(policy.max_delay_ms),
            retry_on: policy.retry_on.clone(),
            jitter_factor: policy.jitter_factor.clamp(0.0, 1.0),
        })
    }

    /// Whether a call that has been sent `sent` times (to members that got
    /// it) and failed as `class` may be sent once more.
    pub(crate) fn allows(&self, sent: u32, class: Option<FailureClass>) -> bool {
        let Some(class) = class else {
            return false;
        };
        sent < self.max_attempts
            && (self.retry_on.is_empty() || self.retry_on.iter().any(|n| class.named_by(n)))
    }

    /// The wait before retry number `retry` (1 for the first).
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        let base = match self.growth {
            Growth::Exponential => self
                .initial_delay
                .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1))),
            Growth::Linear => self.initial_delay.saturating_mul(retry),
            Growth::Constant => self.initial_delay,
        }
        .min(self.max_delay);
        if self.jitter_factor == 0.0 {
            return base;
        }
        let spread = rand::rng().random_range(-self.jitter_factor..=self.jitter_factor);
        base.mul_f64(1.0 + spread).min(self.max_delay)
    }
}

/// One retry of a call, as `hangar_call` reports it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Retried {
    /// The member whose attempt failed.
    pub(crate) member: String,
    /// Why, as clients may see it.
    pub(crate) error: String,
    /// The wait before the next attempt.
    pub(crate) delay_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: &str, retry_on: &[&str]) -> RetryPolicy {
        RetryPolicy::of(Some(&v1::RetryPolicy {
            max_attempts: 3,
            backoff: backoff.into(),
            initial_delay_ms: 100,
            max_delay_ms: 350,
            retry_on: retry_on.iter().map(|s| (*s).to_owned()).collect(),
            jitter_factor: 0.0,
        }))
        .unwrap()
    }

    #[test]
    fn waits_grow_as_the_backoff_says_up_to_max_delay() {
        let ms = |p: &RetryPolicy, n| p.delay(n).as_millis();
        let exponential = policy("exponential", &[]);
        assert_eq!([1, 2, 3].map(|n| ms(&exponential, n)), [100, 200, 350]);
        let linear = policy("linear", &[]);
        assert_eq!([1, 2, 3, 4].map(|n| ms(&linear, n)), [100, 200, 300, 350]);
        assert_eq!(ms(&policy("constant", &[]), 5), 100);
    }

    #[test]
    fn attempts_and_retry_on_bound_what_is_retried() {
        let any = policy("constant", &[]);
        assert!(any.allows(1, Some(FailureClass::Timeout)));
        assert!(any.allows(2, Some(FailureClass::ServerError)));
        assert!(
            !any.allows(3, Some(FailureClass::ServerError)),
            "max_attempts"
        );
        assert!(
            !any.allows(1, None),
            "answers and refusals are never retried"
        );
        let timeouts = policy("constant", &["TimeoutError"]);
        assert!(timeouts.allows(1, Some(FailureClass::Timeout)));
        assert!(!timeouts.allows(1, Some(FailureClass::Connection)));
    }
}

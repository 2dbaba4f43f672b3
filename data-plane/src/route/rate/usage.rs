//! What the limits tell the control plane: calls a second offered,
//! admitted and refused, and the share each runs on; and the log line of
//! a limit that stopped refusing.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hangar_proto::v1;
use hangar_rate::Usage;
use tokio::time::Instant;

use super::limits::{RateLimits, Window};

/// Reports closer together than this repeat the last rates: a report sent
/// at once for a health change must not measure a few milliseconds.
const MIN_WINDOW: Duration = Duration::from_secs(1);

/// One measurement of a limit.
struct Sample {
    /// Offered, admitted and refused calls a second.
    rates: [f64; 3],
    /// Whether a whole window of at least [`MIN_WINDOW`] ended now with no
    /// call refused in it: the end of a refusing episode. Judged on the
    /// refused count alone, so a report that lands between two refusals
    /// of one burst cannot end the episode in between.
    quiet_window: bool,
}

impl Window {
    /// Offered, admitted and refused calls a second since the last
    /// measurement at least [`MIN_WINDOW`] ago.
    fn sample(&mut self, counts: Usage, now: Instant) -> Sample {
        let elapsed = now.saturating_duration_since(self.at);
        let mut quiet_window = false;
        if elapsed >= MIN_WINDOW {
            let per_second =
                |now: u64, then: u64| now.saturating_sub(then) as f64 / elapsed.as_secs_f64();
            self.rates = [
                per_second(counts.offered, self.counts.offered),
                per_second(counts.admitted, self.counts.admitted),
                per_second(counts.refused, self.counts.refused),
            ];
            quiet_window = counts.refused == self.counts.refused;
            self.at = now;
            self.counts = counts;
        }
        Sample {
            rates: self.rates,
            quiet_window,
        }
    }
}

impl RateLimits {
    /// Every limit's traffic for the health report; logs the limits that
    /// refused nothing for a whole window after refusing before.
    pub(crate) fn usage_report(&self) -> Vec<v1::LimitUsage> {
        let now = Instant::now();
        let mut report: Vec<v1::LimitUsage> = self
            .iter()
            .map(|limit| {
                let sample = limit.window.lock().sample(limit.limiter.usage(), now);
                let [offered, admitted, refused] = sample.rates;
                if sample.quiet_window && limit.refusing.swap(false, Ordering::Relaxed) {
                    tracing::info!(limit = %limit.id, "rate limit stopped refusing calls");
                }
                let local = limit.limiter.local();
                v1::LimitUsage {
                    limit: limit.id.clone(),
                    offered_rps: offered,
                    admitted_rps: admitted,
                    refused_rps: refused,
                    local_rps: local.map_or(0.0, |r| r.rps),
                    local_burst: local.map_or(0.0, |r| r.burst),
                    fleet: limit.limiter.is_fleet_wide(),
                }
            })
            .collect();
        report.sort_by(|a, b| a.limit.cmp(&b.limit));
        report
    }
}

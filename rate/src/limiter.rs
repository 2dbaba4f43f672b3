//! One configured limit on a data plane: a bucket all callers share, one
//! per caller, or both, and the counts the control plane divides a fleet
//! budget by.

use std::hash::{BuildHasher, Hash};
use std::num::NonZeroUsize;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use lru::LruCache;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::bucket::{Bucket, Rate};
use crate::refusal::{Refusal, Which};

/// Callers one limit keeps a bucket for. A flood of new callers pushes out
/// the least recently seen, so memory stays bounded whatever comes in; a
/// pushed-out caller starts again with a full bucket.
pub const MAX_CALLERS: usize = 10_000;

/// Identifies a caller to the per-caller buckets: a hash of its name (an
/// MCP session, a client address, later an authenticated client), keyed
/// per process so that no one can aim names at one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallerKey(u64);

static CALLER_HASHER: LazyLock<std::collections::hash_map::RandomState> =
    LazyLock::new(std::collections::hash_map::RandomState::new);

impl CallerKey {
    /// The key of the caller called `name`.
    pub fn of(name: impl Hash) -> Self {
        Self(CALLER_HASHER.hash_one(name))
    }
}

/// The buckets of one limit and what it saw.
#[derive(Debug)]
pub struct Limiter {
    label: String,
    configured: Option<Rate>,
    /// True when `configured` is the fleet's and `shared` holds this data
    /// plane's share of it.
    fleet: bool,
    shared: Option<Mutex<Bucket>>,
    per_caller: Option<(Rate, Mutex<LruCache<CallerKey, Bucket>>)>,
    offered: AtomicU64,
    admitted: AtomicU64,
    refused: AtomicU64,
}

/// What a limit saw since it was made: calls that came to it, calls it let
/// through, calls it refused (counted apart because a call refused by
/// another limit of its chain is neither).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Calls that asked this limit.
    pub offered: u64,
    /// Calls it admitted.
    pub admitted: u64,
    /// Calls it refused.
    pub refused: u64,
}

/// The buckets a call took from, to give back when another limit of its
/// chain refuses it.
#[derive(Debug, Clone, Copy)]
struct Taken {
    shared: bool,
    caller: Option<CallerKey>,
}

// === impl Limiter ===

impl Limiter {
    /// A limit called `label` in refusals, with a bucket of `all` for all
    /// callers and one of `per_caller` for each; `fleet` when `all` is the
    /// fleet's budget, of which this data plane starts with `share`.
    pub fn new(
        label: String,
        all: Option<Rate>,
        per_caller: Option<Rate>,
        fleet: bool,
        share: Option<Rate>,
        now: Instant,
    ) -> Self {
        let start = if fleet { share.or(all) } else { all };
        Self {
            label,
            configured: all,
            fleet,
            shared: start.map(|rate| Mutex::new(Bucket::new(rate, now))),
            per_caller: per_caller.map(|rate| {
                let cap = NonZeroUsize::new(MAX_CALLERS).expect("MAX_CALLERS is not zero");
                (rate, Mutex::new(LruCache::new(cap)))
            }),
            offered: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// What the limit is on, in words.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// True when the bucket all callers share is a share of a fleet budget.
    pub fn is_fleet_wide(&self) -> bool {
        self.fleet && self.shared.is_some()
    }

    /// The budget all callers share, as configured.
    pub fn configured(&self) -> Option<Rate> {
        self.configured
    }

    /// The per-caller size, if the limit has one.
    pub fn per_caller(&self) -> Option<Rate> {
        self.per_caller.as_ref().map(|(rate, _)| *rate)
    }

    /// The size of the shared bucket on this data plane now: the whole
    /// budget, or this data plane's share of the fleet's.
    pub fn local(&self) -> Option<Rate> {
        self.shared.as_ref().map(|bucket| bucket.lock().rate())
    }

    /// Sets this data plane's share of a fleet-wide budget.
    pub fn set_share(&self, share: Rate, now: Instant) {
        if let (true, Some(bucket)) = (self.fleet, &self.shared) {
            bucket.lock().resize(share, now);
        }
    }

    /// Counts a call that asks this limit, before any limit of its chain
    /// decides: the demand a fleet share follows.
    pub fn offer(&self) {
        self.offered.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts so far.
    pub fn usage(&self) -> Usage {
        Usage {
            offered: self.offered.load(Ordering::Relaxed),
            admitted: self.admitted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn take(&self, caller: CallerKey, now: Instant) -> Result<Taken, Refusal> {
        let mut taken = Taken {
            shared: false,
            caller: None,
        };
        if let Some((rate, callers)) = &self.per_caller {
            let mut callers = callers.lock();
            let bucket = callers.get_or_insert_mut(caller, || Bucket::new(*rate, now));
            if let Err(wait) = bucket.take(now) {
                drop(callers);
                return Err(self.refusal(Which::EachCaller, *rate, None, wait));
            }
            taken.caller = Some(caller);
        }
        if let Some(shared) = &self.shared {
            let mut bucket = shared.lock();
            if let Err(wait) = bucket.take(now) {
                let local = bucket.rate();
                drop(bucket);
                self.give_back(taken);
                let configured = self.configured.unwrap_or(local);
                let share = self.fleet.then_some(local);
                return Err(self.refusal(Which::AllCallers, configured, share, wait));
            }
            taken.shared = true;
        }
        Ok(taken)
    }

    fn give_back(&self, taken: Taken) {
        if taken.shared
            && let Some(shared) = &self.shared
        {
            shared.lock().give_back();
        }
        if let (Some(caller), Some((_, callers))) = (taken.caller, &self.per_caller)
            && let Some(bucket) = callers.lock().get_mut(&caller)
        {
            bucket.give_back();
        }
    }

    fn refusal(
        &self,
        which: Which,
        configured: Rate,
        share: Option<Rate>,
        retry_after: std::time::Duration,
    ) -> Refusal {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Refusal {
            limit: self.label.clone(),
            which,
            configured,
            share,
            retry_after,
        }
    }
}

/// Admits one call through every limit in `chain`, or none: the first that
/// refuses gives the refusal, and the limits before it get their tokens
/// back, so a refused call costs no limit anything. Every limit counts the
/// call as offered first, whichever refuses.
pub fn admit<'a>(
    chain: impl IntoIterator<Item = &'a Limiter> + Clone,
    caller: CallerKey,
    now: Instant,
) -> Result<(), Refusal> {
    for limiter in chain.clone() {
        limiter.offer();
    }
    let mut taken: Vec<(&Limiter, Taken)> = Vec::new();
    for limiter in chain {
        match limiter.take(caller, now) {
            Ok(t) => taken.push((limiter, t)),
            Err(refusal) => {
                for (limiter, t) in taken {
                    limiter.give_back(t);
                }
                return Err(refusal);
            }
        }
    }
    for (limiter, _) in taken {
        limiter.admitted.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(all: Option<Rate>, per_caller: Option<Rate>) -> Limiter {
        Limiter::new(
            "group 'g'".to_owned(),
            all,
            per_caller,
            false,
            None,
            Instant::now(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn one_noisy_caller_does_not_use_up_a_quiet_ones_budget() {
        let limit = limiter(Some(Rate::new(100.0, 100.0)), Some(Rate::new(1.0, 3.0)));
        let (noisy, quiet) = (CallerKey::of("noisy"), CallerKey::of("quiet"));
        let admitted = (0..50)
            .filter(|_| admit([&limit], noisy, Instant::now()).is_ok())
            .count();
        assert_eq!(admitted, 3);
        let refused = admit([&limit], noisy, Instant::now()).unwrap_err();
        assert_eq!(refused.which, Which::EachCaller);
        assert!(admit([&limit], quiet, Instant::now()).is_ok());
        assert_eq!(
            limit.usage(),
            Usage {
                offered: 52,
                admitted: 4,
                refused: 48
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_further_on_gives_the_tokens_back() {
        let outer = limiter(Some(Rate::new(1.0, 2.0)), None);
        let inner = limiter(Some(Rate::new(1.0, 1.0)), None);
        let caller = CallerKey::of("c");
        assert!(admit([&outer, &inner], caller, Instant::now()).is_ok());
        // The inner limit refuses; the outer keeps its second token...
        assert!(admit([&outer, &inner], caller, Instant::now()).is_err());
        // ...for a call that only the outer one limits.
        assert!(admit([&outer], caller, Instant::now()).is_ok());
        assert!(admit([&outer], caller, Instant::now()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_fleet_limit_runs_on_its_share_and_names_it() {
        let share = Rate::new(1.0, 1.0);
        let limit = Limiter::new(
            "group 'g'".to_owned(),
            Some(Rate::new(10.0, 10.0)),
            None,
            true,
            Some(share),
            Instant::now(),
        );
        let caller = CallerKey::of("c");
        assert!(admit([&limit], caller, Instant::now()).is_ok());
        let refused = admit([&limit], caller, Instant::now()).unwrap_err();
        assert_eq!(refused.configured, Rate::new(10.0, 10.0));
        assert_eq!(refused.share, Some(share));
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        // A larger share takes effect at once, with the tokens refilled
        // since then.
        limit.set_share(Rate::new(4.0, 4.0), Instant::now());
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(
            (0..5)
                .filter(|_| admit([&limit], caller, Instant::now()).is_ok())
                .count(),
            2
        );
    }

    #[tokio::test(start_paused = true)]
    async fn callers_beyond_the_cap_push_out_the_least_recent() {
        let limit = limiter(None, Some(Rate::new(1.0, 1.0)));
        let first = CallerKey::of(0_u64);
        assert!(admit([&limit], first, Instant::now()).is_ok());
        assert!(admit([&limit], first, Instant::now()).is_err());
        for name in 1..=MAX_CALLERS as u64 {
            assert!(admit([&limit], CallerKey::of(name), Instant::now()).is_ok());
        }
        let (_, callers) = limit.per_caller.as_ref().unwrap();
        assert_eq!(callers.lock().len(), MAX_CALLERS);
        // The first caller was pushed out, so it starts with a full bucket.
        assert!(admit([&limit], first, Instant::now()).is_ok());
    }
}

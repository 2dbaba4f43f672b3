//! When each MCP session last had a call served by the MCP library.
//!
//! The library ends a session after five minutes in which none of its
//! requests reached it. `hangar_call`s served directly (see
//! [`super::direct`]) never reach it, so a client making only those would
//! lose its session while busy. Leaving one call a minute per session to
//! the library keeps the session alive on the library's own terms, with no
//! second idea of when a session is idle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How often each busy session has a call served by the library: well
/// within the library's five-minute idle timeout.
const VISIT_EVERY: Duration = Duration::from_secs(60);

/// Sessions with no call for this long are forgotten (the library may have
/// ended them; a later call simply visits it again).
const FORGET_AFTER: Duration = Duration::from_secs(2 * 60);

/// The last library visit of every session that made a call lately.
#[derive(Debug)]
pub(crate) struct LibraryVisits {
    inner: Mutex<Visits>,
}

#[derive(Debug)]
struct Visits {
    last: HashMap<Arc<str>, Instant>,
    /// When forgotten sessions were last dropped from `last`.
    pruned: Instant,
}

impl Default for LibraryVisits {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Visits {
                last: HashMap::new(),
                pruned: Instant::now(),
            }),
        }
    }
}

impl LibraryVisits {
    /// Whether a call of `session` may skip the library now. When it may
    /// not, the call counts as the session's visit from now on.
    pub(crate) fn may_skip(&self, session: &str) -> bool {
        let now = Instant::now();
        let mut visits = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // At most once a minute, so the cost is spread over many calls.
        if now.duration_since(visits.pruned) >= VISIT_EVERY {
            visits
                .last
                .retain(|_, at| now.duration_since(*at) < FORGET_AFTER);
            visits.pruned = now;
        }
        match visits.last.get_mut(session) {
            Some(at) if now.duration_since(*at) < VISIT_EVERY => true,
            Some(at) => {
                *at = now;
                false
            }
            None => {
                visits.last.insert(session.into(), now);
                false
            }
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.inner.lock().expect("not poisoned").last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy session's first call, and one call a minute after it, go
    /// through the library; the calls between them skip it.
    #[tokio::test(start_paused = true)]
    async fn one_call_a_minute_visits_the_library() {
        let visits = LibraryVisits::default();
        assert!(!visits.may_skip("s1"), "the first call visits");
        assert!(visits.may_skip("s1"));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(visits.may_skip("s1"));
        assert!(!visits.may_skip("s2"), "sessions are counted apart");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!visits.may_skip("s1"), "a minute after its visit");
        assert!(visits.may_skip("s1"));
    }

    /// Sessions that stopped calling are forgotten, so ended sessions do
    /// not pile up.
    #[tokio::test(start_paused = true)]
    async fn forgets_quiet_sessions() {
        let visits = LibraryVisits::default();
        for n in 0..100 {
            visits.may_skip(&format!("gone-{n}"));
        }
        tokio::time::advance(FORGET_AFTER).await;
        visits.may_skip("busy");
        assert_eq!(visits.remembered(), 1);
    }
}

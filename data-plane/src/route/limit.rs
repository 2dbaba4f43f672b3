//! `max_concurrency`: a cap on calls in flight to one member or through one
//! group, with a bounded queue in front of it.
//!
//! A call beyond the cap waits for a slot, at most until its own deadline;
//! when the queue is full it is refused at once rather than piling up
//! memory. Either way nothing was sent, so a group may try another member.
//! Waiting calls count as in flight for `least_connections`, so a member
//! with a queue does not look idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Calls that may wait per slot of the cap: enough to absorb a burst, small
/// enough that a stuck member cannot collect an unbounded backlog.
const WAITING_PER_SLOT: u32 = 16;

/// A cap of `max` calls in flight.
#[derive(Debug)]
pub struct ConcurrencyLimit {
    slots: Arc<Semaphore>,
    max: u32,
    waiting: AtomicU32,
    max_waiting: u32,
}

/// Why a call got no slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The queue in front of the cap is full.
    #[error("{max} calls in flight (max_concurrency) and {waiting} waiting, the most allowed")]
    QueueFull {
        /// The cap.
        max: u32,
        /// Calls waiting.
        waiting: u32,
    },
    /// No slot freed up before the call's deadline.
    #[error("no free slot among max_concurrency {max} within {}", hangar_runtime::Rounded(*.waited))]
    TimedOut {
        /// The cap.
        max: u32,
        /// How long the call waited.
        waited: Duration,
    },
}

/// A slot held for one call; freed on drop.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl ConcurrencyLimit {
    /// A cap of `max` (at least 1) calls in flight.
    pub fn new(max: u32) -> Self {
        let max = max.max(1);
        Self {
            slots: Arc::new(Semaphore::new(max as usize)),
            max,
            waiting: AtomicU32::new(0),
            max_waiting: max.saturating_mul(WAITING_PER_SLOT),
        }
    }

    /// The cap.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// A slot, waiting at most `patience` (in the queue) for one.
    pub async fn acquire(&self, patience: Duration) -> Result<Slot, LimitError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(Slot(permit));
        }
        let waiting = self.waiting.fetch_add(1, Ordering::Relaxed);
        let _leave = Leave(&self.waiting);
        if waiting >= self.max_waiting {
            return Err(LimitError::QueueFull {
                max: self.max,
                waiting,
            });
        }
        match tokio::time::timeout(patience, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot(permit)),
            // The semaphore is never closed; treat it like a timeout anyway.
            Ok(Err(_)) | Err(_) => Err(LimitError::TimedOut {
                max: self.max,
                waited: patience,
            }),
        }
    }
}

/// Leaves the queue when the wait ends, however it ends.
struct Leave<'a>(&'a AtomicU32);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_beyond_the_cap_waits_for_a_slot_until_its_deadline() {
        let limit = ConcurrencyLimit::new(1);
        let held = limit.acquire(Duration::ZERO).await.unwrap();
        let err = limit.acquire(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(
            err,
            LimitError::TimedOut {
                max: 1,
                waited: Duration::from_secs(5)
            }
        );
        let limit = Arc::new(limit);
        let waiter = tokio::spawn({
            let limit = limit.clone();
            async move { limit.acquire(Duration::from_secs(5)).await.map(drop) }
        });
        tokio::task::yield_now().await;
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_is_bounded() {
        let limit = Arc::new(ConcurrencyLimit::new(1));
        let _held = limit.acquire(Duration::ZERO).await.unwrap();
        let mut waiters = Vec::new();
        for _ in 0..WAITING_PER_SLOT {
            let limit = limit.clone();
            waiters.push(tokio::spawn(async move {
                limit.acquire(Duration::from_secs(60)).await.map(drop)
            }));
        }
        // Let every waiter enter the queue.
        while limit.waiting.load(Ordering::Relaxed) < WAITING_PER_SLOT {
            tokio::task::yield_now().await;
        }
        let err = limit.acquire(Duration::from_secs(60)).await.unwrap_err();
        assert!(
            matches!(err, LimitError::QueueFull { max: 1, .. }),
            "{err:?}"
        );
        for waiter in waiters {
            waiter.abort();
        }
    }
}

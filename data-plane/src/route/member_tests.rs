//! The member's health over time, on paused tokio time: no real waiting.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::*;

const PERIOD: Duration = Duration::from_secs(10);

fn member(max_failures: u32) -> Arc<Member> {
    let upstream = Upstream::Unusable("a member that is never called".into());
    Arc::new(Member::new(
        "m".into(),
        upstream,
        PERIOD,
        max_failures,
        true,
        Default::default(),
        Arc::new(Notify::new()),
        CancellationToken::new(),
    ))
}

/// Starts probing with scripted outcomes (`true` = the probe succeeds);
/// once the script runs out every probe succeeds.
fn probe_with(member: &Arc<Member>, script: &[bool]) {
    let script = Arc::new(Mutex::new(
        script.iter().copied().collect::<VecDeque<bool>>(),
    ));
    let m = member.clone();
    tokio::spawn(async move {
        m.run_probes(move || {
            let ok = script.lock().pop_front().unwrap_or(true);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(UpstreamError::Protocol("probe failed".into()))
                }
            }
        })
        .await;
    });
}

/// Probes run at t=0, 10, 20, ...; `at(t)` observes just after the probe at t.
async fn at(secs: u64, start: tokio::time::Instant) {
    tokio::time::sleep_until(start + Duration::from_secs(secs) + Duration::from_millis(1)).await;
}

/// Three failed probes in a row take the member out at the third; one
/// successful probe brings it back.
#[tokio::test(start_paused = true)]
async fn leaves_after_threshold_and_returns_on_one_probe() {
    let start = tokio::time::Instant::now();
    let m = member(3);
    probe_with(&m, &[false, false, false, true]);
    at(10, start).await;
    assert!(m.is_healthy(), "two failures are below the threshold");
    at(20, start).await;
    assert!(!m.is_healthy(), "the third failure ejects");
    assert_eq!(m.report().consecutive_failures, 3);
    at(30, start).await;
    assert!(m.is_healthy(), "one good probe restores");
    assert_eq!(m.rotation_changes(), 2);
    m.stop();
}

/// A flapping member whose calls keep failing is readmitted at most once per
/// probe period: successful calls never readmit it, so it cannot oscillate
/// faster than the probes run.
#[tokio::test(start_paused = true)]
async fn flapping_member_changes_at_most_once_per_period() {
    let start = tokio::time::Instant::now();
    let m = member(1);
    probe_with(&m, &[]);
    for period in 0..6u64 {
        at(period * 10, start).await;
        // Between probes: failures eject, successes of calls do not readmit.
        for _ in 0..50 {
            m.observe(Outcome::Failure, None);
            m.observe(Outcome::CallSuccess, None);
        }
        assert!(!m.is_healthy());
    }
    // Each period: one ejection by a call, one readmission by the probe.
    assert!(m.rotation_changes() <= 2 * 6, "{}", m.rotation_changes());
    m.stop();
}

/// Stopping the member ends its probe loop.
#[tokio::test(start_paused = true)]
async fn stop_ends_probing() {
    let m = member(1);
    let probes = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = probes.clone();
    let looped = m.clone();
    let task = tokio::spawn(async move {
        looped
            .run_probes(move || {
                counted.fetch_add(1, Ordering::Relaxed);
                async { Ok(()) }
            })
            .await;
    });
    // Just after the probe at t=30, never racing it.
    tokio::time::sleep(PERIOD * 3 + Duration::from_millis(1)).await;
    m.stop();
    task.await.unwrap();
    let seen = probes.load(Ordering::Relaxed);
    assert_eq!(seen, 4, "probes at t=0, 10, 20, 30");
}

/// Calls waiting for a slot of `max_concurrency` count as in flight, so
/// `least_connections` sees a member with a queue as busy, and a call that
/// gets no slot in time leaves the member's health alone.
#[tokio::test(start_paused = true)]
async fn queued_calls_count_as_in_flight_and_a_full_member_stays_healthy() {
    let upstream = Upstream::Unusable("a member that is never called".into());
    let families = crate::metrics::CallFamilies::default();
    let member = Arc::new(
        Member::new(
            "m".into(),
            upstream,
            PERIOD,
            1,
            true,
            families.clone(),
            Arc::new(Notify::new()),
            CancellationToken::new(),
        )
        .with_max_concurrency(1),
    );
    let metrics = families.handles("g", "m");
    let ledger = |metrics| Ledger {
        metrics,
        breaker: None,
    };
    let held = member
        .admit(ledger(&metrics), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(member.in_flight(), 1);
    let waiting = tokio::spawn({
        let (member, metrics) = (member.clone(), metrics.clone());
        async move {
            let ledger = Ledger {
                metrics: &metrics,
                breaker: None,
            };
            member.admit(ledger, Duration::from_secs(5)).await.map(drop)
        }
    });
    while member.in_flight() < 2 {
        tokio::task::yield_now().await;
    }
    let refused = waiting.await.unwrap().unwrap_err();
    assert!(
        matches!(refused, UpstreamError::Saturated(_)),
        "{refused:?}"
    );
    assert_eq!(member.in_flight(), 1);
    assert!(member.is_healthy(), "being busy is not being unwell");
    drop(held);
    assert_eq!(member.in_flight(), 0);
}

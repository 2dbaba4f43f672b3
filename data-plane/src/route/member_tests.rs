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
        m.run_probes(move |_deadline| {
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

/// A member that served, went out and came back is stamped for slow start;
/// one entering rotation for the first time is not.
#[tokio::test(start_paused = true)]
async fn only_a_return_is_stamped_for_slow_start() {
    let start = tokio::time::Instant::now();
    let m = member(1);
    probe_with(&m, &[true, false, true]);
    at(0, start).await;
    assert!(
        !m.vitals().restored_at().is_set(),
        "in rotation from the start"
    );
    at(10, start).await;
    assert!(!m.is_healthy());
    at(20, start).await;
    assert!(m.is_healthy());
    assert_eq!(
        m.vitals().restored_at(),
        m.stamp(start + Duration::from_secs(20))
    );
    m.stop();

    let late = Arc::new(Member::new(
        "late".into(),
        Upstream::Unusable("never called".into()),
        PERIOD,
        1,
        false,
        Default::default(),
        Arc::new(Notify::new()),
        CancellationToken::new(),
    ));
    probe_with(&late, &[true]);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(late.is_healthy(), "its first probe brings it in");
    assert!(
        !late.vitals().restored_at().is_set(),
        "a first entry is no return"
    );
    late.stop();
}

/// `least_latency` judges a member tool by tool: what `search` takes says
/// nothing of a tool the member has not run yet, which stays unknown (the
/// balancer scores it neutral); requests without a tool use the overall
/// average.
#[tokio::test(start_paused = true)]
async fn latency_is_kept_per_tool() {
    let m = member(3);
    m.observe_latency(Some("search"), Duration::from_millis(200));
    assert_eq!(m.latency_micros(Some("search")), 200_000);
    assert_eq!(m.latency_micros(Some("add")), 0, "not run yet: unknown");
    assert_eq!(m.latency_micros(None), 200_000);
    m.observe_latency(Some("add"), Duration::from_millis(2));
    assert_eq!(m.latency_micros(Some("add")), 2_000);
    // Unseen for a decay time, an average falls, so the member is tried again.
    tokio::time::advance(hangar_balance::latency::DECAY).await;
    assert!(m.latency_micros(Some("search")) < 80_000);
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
            .run_probes(move |_deadline| {
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
    let member = Arc::new(
        Member::new(
            "m".into(),
            upstream,
            PERIOD,
            1,
            true,
            Default::default(),
            Arc::new(Notify::new()),
            CancellationToken::new(),
        )
        .with_max_concurrency(1),
    );
    let metrics = Arc::new(crate::metrics::MemberCalls::default());
    let ledger = |metrics| Ledger {
        metrics,
        breaker: None,
        outliers: None,
        tool: None,
        asking: None,
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
                outliers: None,
                tool: None,
                asking: None,
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

/// A member that sends nothing is watched only through a real client's
/// activity: an HTTP member that is never actually called.
fn watched_member(stall: Duration) -> Arc<Member> {
    let server = hangar_proto::v1::Server {
        id: "m".into(),
        transport: Some(hangar_proto::v1::server::Transport::Endpoint(
            "http://127.0.0.1:1/mcp".into(),
        )),
        ..Default::default()
    };
    let upstream = Upstream::remote(&server, &Default::default());
    Arc::new(
        Member::new(
            "m".into(),
            upstream,
            PERIOD,
            3,
            true,
            Default::default(),
            Arc::new(Notify::new()),
            CancellationToken::new(),
        )
        .with_stall_timeout(stall),
    )
}

/// Probes with `answer` for any probe after the first (at t=0, which
/// succeeds); records each probe's deadline.
fn probe_answering(member: &Arc<Member>, answer: bool) -> Arc<Mutex<Vec<Duration>>> {
    let deadlines = Arc::new(Mutex::new(Vec::new()));
    let seen = deadlines.clone();
    let m = member.clone();
    tokio::spawn(async move {
        m.run_probes(move |deadline| {
            let first = {
                let mut seen = seen.lock();
                seen.push(deadline);
                seen.len() == 1
            };
            async move {
                if first || answer {
                    Ok(())
                } else {
                    Err(UpstreamError::Timeout(deadline))
                }
            }
        })
        .await;
    });
    deadlines
}

/// A member with a call outstanding that sends nothing for its stall
/// timeout and fails the check leaves rotation at once (below
/// `max_consecutive_failures`), without waiting for the probe period.
#[tokio::test(start_paused = true)]
async fn a_silent_member_that_fails_its_check_leaves_at_once() {
    let m = watched_member(Duration::from_secs(2));
    let deadlines = probe_answering(&m, false);
    let metrics = crate::metrics::MemberCalls::default();
    let _call = m.begin_call(Ledger {
        metrics: &metrics,
        breaker: None,
        outliers: None,
        tool: None,
        asking: None,
    });
    tokio::time::sleep(Duration::from_millis(1900)).await;
    assert!(m.is_healthy(), "silent for less than the stall timeout");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!m.is_healthy(), "hung: out after one failed check");
    assert_eq!(m.consecutive_failures(), 1);
    assert!(
        m.report().last_error.starts_with("hung"),
        "{}",
        m.report().last_error
    );
    assert_eq!(
        deadlines.lock()[1],
        Duration::from_millis(750),
        "the check's deadline"
    );
    m.stop();
}

/// A member that hangs while probes come often (every 2 s, each waiting
/// for its deadline) still leaves within its stall timeout and a check's
/// deadline: a regular probe of a member with calls outstanding is as
/// short as a check, and failing it while silent is a hang.
#[tokio::test(start_paused = true)]
async fn a_hung_member_leaves_fast_even_between_frequent_probes() {
    let stall = Duration::from_secs(2);
    let server = hangar_proto::v1::Server {
        id: "m".into(),
        transport: Some(hangar_proto::v1::server::Transport::Endpoint(
            "http://127.0.0.1:1/mcp".into(),
        )),
        ..Default::default()
    };
    let m = Arc::new(
        Member::new(
            "m".into(),
            Upstream::remote(&server, &Default::default()),
            Duration::from_secs(2),
            3,
            true,
            Default::default(),
            Arc::new(Notify::new()),
            CancellationToken::new(),
        )
        .with_stall_timeout(stall),
    );
    let probed = m.clone();
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    tokio::spawn(async move {
        probed
            .run_probes(move |deadline| {
                let first = first.swap(false, std::sync::atomic::Ordering::Relaxed);
                async move {
                    if first {
                        return Ok(());
                    }
                    // A stopped process: nothing until the deadline.
                    tokio::time::sleep(deadline).await;
                    Err(UpstreamError::Timeout(deadline))
                }
            })
            .await;
    });
    // The member hangs between probes: its call begins at 0.3 s.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = crate::metrics::MemberCalls::default();
    let _call = m.begin_call(Ledger {
        metrics: &metrics,
        breaker: None,
        outliers: None,
        tool: None,
        asking: None,
    });
    tokio::time::sleep(Duration::from_millis(1900)).await;
    assert!(m.is_healthy());
    // The probe at 2 s fails at 3 s, the member silent for 2.7 s by then.
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert!(
        !m.is_healthy(),
        "hung: out by 3.6 s, not when a long probe ends"
    );
    assert!(
        m.report().last_error.starts_with("hung"),
        "{}",
        m.report().last_error
    );
    m.stop();
}

/// The same silence on a member that answers the check is a long call:
/// it stays in rotation, and is checked again only after another full
/// stall timeout.
#[tokio::test(start_paused = true)]
async fn a_silent_member_that_answers_its_check_is_busy() {
    let m = watched_member(Duration::from_secs(2));
    let deadlines = probe_answering(&m, true);
    let metrics = crate::metrics::MemberCalls::default();
    let _call = m.begin_call(Ledger {
        metrics: &metrics,
        breaker: None,
        outliers: None,
        tool: None,
        asking: None,
    });
    tokio::time::sleep(Duration::from_millis(9000)).await;
    assert!(m.is_healthy());
    // t=0 regular, then checks at about 2, 4, 6 and 8 s: not one per tick.
    let checks = deadlines.lock().len() - 1;
    assert!((3..=5).contains(&checks), "{checks} checks in 9 s");
    m.stop();
}

/// A call that went silent (its read timeout) does not count against a
/// watched member by itself: it asks for a check, which finds it busy.
#[tokio::test(start_paused = true)]
async fn a_silent_call_asks_for_a_check_instead_of_counting() {
    let m = watched_member(Duration::from_secs(2));
    let deadlines = probe_answering(&m, true);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let metrics = crate::metrics::MemberCalls::default();
    for _ in 0..5 {
        let call = m.begin_call(Ledger {
            metrics: &metrics,
            breaker: None,
            outliers: None,
            tool: None,
            asking: None,
        });
        call.failed(&UpstreamError::Quiet(Duration::from_secs(30)));
        drop(call);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(m.is_healthy(), "five read timeouts, each one a busy member");
    assert_eq!(m.consecutive_failures(), 0);
    assert!(deadlines.lock().len() >= 2, "the silence was checked");
    m.stop();
}

//! Outlier ejection over time, on paused tokio time: no real waiting.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::{Instant, advance};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::route::member::Member;
use crate::upstream::{Upstream, UpstreamError};

const BASE: Duration = Duration::from_secs(10);

fn policy() -> OutlierPolicy {
    OutlierPolicy {
        consecutive_failures: 3,
        base_ejection_time: BASE,
        max_ejection_time: Duration::from_secs(25),
        max_ejection_percent: 50,
        slow_start: Duration::from_secs(10),
    }
}

fn members(n: usize) -> Vec<Arc<Member>> {
    (0..n)
        .map(|i| {
            Arc::new(Member::new(
                format!("m{i}"),
                Upstream::Unusable("never called".into()),
                Duration::from_secs(1),
                100,
                true,
                Default::default(),
                Arc::new(Notify::new()),
                CancellationToken::new(),
            ))
        })
        .collect()
}

fn vitals(members: &[Arc<Member>]) -> Vec<Arc<Vitals>> {
    members.iter().map(|m| m.vitals().clone()).collect()
}

fn outliers(members: &[Arc<Member>]) -> Outliers {
    Outliers::new(
        "g",
        policy(),
        &vitals(members),
        None,
        Arc::new(Notify::new()),
    )
}

fn fail(o: &Outliers, index: usize, times: u32) {
    for _ in 0..times {
        o.record_failure(index);
    }
}

fn standing(o: &Outliers, index: usize) -> Standing {
    o.standing(index, &mut LazyNow::default())
}

/// `consecutive_failures` delivered failures in a row eject the member for
/// the base time; it is back when that is up, ramping up from a tenth.
#[tokio::test(start_paused = true)]
async fn ejects_for_the_base_time_then_ramps_up() {
    let m = members(3);
    let o = outliers(&m);
    fail(&o, 0, 2);
    assert!(!standing(&o, 0).ejected, "two failures are not three");
    fail(&o, 0, 1);
    assert!(standing(&o, 0).ejected);
    assert_eq!(o.ejected(), ["m0"]);
    advance(BASE - Duration::from_millis(1)).await;
    assert!(
        standing(&o, 0).ejected,
        "still out just before its time is up"
    );
    advance(Duration::from_millis(1)).await;
    assert_eq!(standing(&o, 0).ramp_percent, 10);
    advance(Duration::from_secs(5)).await;
    assert_eq!(standing(&o, 0).ramp_percent, 55);
    advance(Duration::from_secs(5)).await;
    assert_eq!(standing(&o, 0), Standing::FULL);
}

/// An answer between failures ends the run: failures must be in a row.
#[tokio::test(start_paused = true)]
async fn an_answer_resets_the_run() {
    let m = members(3);
    let o = outliers(&m);
    fail(&o, 0, 2);
    o.record_answer(0);
    fail(&o, 0, 2);
    assert!(!standing(&o, 0).ejected);
}

/// Each ejection soon after the last lasts one base time longer, up to
/// the most; time out of trouble brings it back down.
#[tokio::test(start_paused = true)]
async fn ejection_time_grows_and_decays() {
    let m = members(3);
    let o = outliers(&m);
    let mut lengths = Vec::new();
    for _ in 0..3 {
        fail(&o, 0, 3);
        let started = Instant::now();
        while standing(&o, 0).ejected {
            advance(Duration::from_secs(1)).await;
        }
        lengths.push(started.elapsed().as_secs());
    }
    assert_eq!(lengths, [10, 20, 25], "base, twice the base, then the cap");
    // Two base times without trouble take two steps off the multiplier.
    advance(2 * BASE).await;
    fail(&o, 0, 3);
    let started = Instant::now();
    while standing(&o, 0).ejected {
        advance(Duration::from_secs(1)).await;
    }
    assert_eq!(started.elapsed().as_secs(), 20);
}

/// No more than `max_ejection_percent` of the group is out at once (one
/// member always may be): with half of three, a second stays in.
#[tokio::test(start_paused = true)]
async fn the_cap_keeps_most_of_the_group_in() {
    let m = members(3);
    let o = outliers(&m);
    fail(&o, 0, 3);
    fail(&o, 1, 3);
    assert_eq!(o.ejected(), ["m0"]);
    // Once the first is back, the second's next failure ejects it.
    advance(BASE).await;
    fail(&o, 1, 1);
    assert_eq!(o.ejected(), ["m1"]);
}

/// A member that failed a probe during its ejection and answers again was
/// restarted: it is back at once, not when its time is up.
#[tokio::test(start_paused = true)]
async fn a_restarted_member_returns_at_once() {
    let m = members(3);
    let o = outliers(&m);
    // Probes every second: pass, fail once (the member went down), then pass.
    let script = Arc::new(parking_lot::Mutex::new(VecDeque::from([true, true, false])));
    let probed = m[0].clone();
    tokio::spawn(async move {
        probed
            .run_probes(move |_| {
                let ok = script.lock().pop_front().unwrap_or(true);
                async move {
                    if ok {
                        Ok(())
                    } else {
                        Err(UpstreamError::Protocol("down".into()))
                    }
                }
            })
            .await;
    });
    tokio::task::yield_now().await;
    fail(&o, 0, 3);
    assert!(standing(&o, 0).ejected);
    // Sleeping (not advancing) lets the probe loop run meanwhile.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(standing(&o, 0).ejected, "probes that pass do not end it");
    // The failed probe at t=2 s, the passing one at t=3 s.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(!standing(&o, 0).ejected, "back well before its 10 s are up");
}

/// A snapshot that keeps the member keeps its ejection.
#[tokio::test(start_paused = true)]
async fn an_apply_keeps_the_ejection() {
    let m = members(3);
    let old = outliers(&m);
    fail(&old, 2, 3);
    let new = Outliers::new(
        "g",
        policy(),
        &vitals(&m[1..]),
        Some(&old),
        Arc::new(Notify::new()),
    );
    assert_eq!(new.ejected(), ["m2"]);
    let rebuilt = members(1);
    let fresh = Outliers::new(
        "g",
        policy(),
        &vitals(&rebuilt),
        Some(&old),
        Arc::new(Notify::new()),
    );
    assert!(fresh.ejected().is_empty(), "a new member starts clean");
}

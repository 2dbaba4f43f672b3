//! Fleet bookkeeping on paused time.

use std::time::Duration;

use hangar_proto::v1::{HealthReport, Hello, MemberHealth};

use super::*;

const EXPIRY: Duration = Duration::from_secs(30);

fn hello(node: &str) -> Hello {
    Hello {
        node_id: node.into(),
        held_version: 3,
        ..Default::default()
    }
}

/// A health report with each `(server, healthy)` of `healthy`.
pub(crate) fn report(healthy: &[(&str, bool)]) -> HealthReport {
    HealthReport {
        members: healthy
            .iter()
            .map(|(id, ok)| MemberHealth {
                server_id: (*id).into(),
                healthy: *ok,
                ..Default::default()
            })
            .collect(),
        groups: Vec::new(),
        limits: Vec::new(),
    }
}

/// A silent but connected data plane turns stale after the expiry; a
/// disconnected one is listed until the expiry, then forgotten.
#[tokio::test(start_paused = true)]
async fn silent_planes_go_stale_and_disconnected_ones_expire() {
    let fleet = Fleet::new(EXPIRY);
    let quiet = fleet.connect(&hello("quiet"), None).unwrap();
    let gone = fleet.connect(&hello("gone"), None).unwrap();
    fleet.disconnect(&gone);
    let state = |node: &str| {
        fleet
            .planes()
            .iter()
            .find(|p| p.node_id == node)
            .map(|p| p.state(Instant::now(), EXPIRY))
    };
    assert_eq!(state("quiet"), Some(PlaneState::Connected));
    assert_eq!(state("gone"), Some(PlaneState::Disconnected));

    tokio::time::advance(EXPIRY + Duration::from_secs(1)).await;
    fleet.expire();
    assert_eq!(state("quiet"), Some(PlaneState::Stale));
    assert_eq!(state("gone"), None, "forgotten after the expiry");
    fleet.report(&quiet, report(&[]));
    assert_eq!(
        state("quiet"),
        Some(PlaneState::Connected),
        "a report revives it"
    );
}

/// Only a server that every counting data plane sees failing is unhealthy
/// everywhere; one data plane's local trouble is not.
#[tokio::test(start_paused = true)]
async fn unhealthy_everywhere_needs_every_reporter() {
    let fleet = Fleet::new(EXPIRY);
    let a = fleet.connect(&hello("a"), None).unwrap();
    let b = fleet.connect(&hello("b"), None).unwrap();
    fleet.report(&a, report(&[("x", false), ("y", false)]));
    fleet.report(&b, report(&[("x", false), ("y", true)]));
    assert_eq!(
        *fleet.unhealthy_everywhere(),
        HashSet::from(["x".to_owned()])
    );

    // Reports of a data plane that went silent stop counting.
    tokio::time::advance(EXPIRY + Duration::from_secs(1)).await;
    fleet.expire();
    fleet.report(&a, report(&[("x", false), ("y", false)]));
    assert_eq!(
        *fleet.unhealthy_everywhere(),
        HashSet::from(["x".to_owned(), "y".to_owned()])
    );
}

/// A reconnect under the same node id replaces the entry; the old stream's
/// late disconnect does not remove the new one.
#[tokio::test(start_paused = true)]
async fn reconnect_replaces_and_old_disconnect_is_ignored() {
    let fleet = Fleet::new(EXPIRY);
    let old = fleet.connect(&hello("dp"), None).unwrap();
    let new = fleet.connect(&hello("dp"), None).unwrap();
    fleet.disconnect(&old);
    fleet.ack(&new, 4);
    let planes = fleet.planes();
    assert_eq!(planes.len(), 1);
    assert!(planes[0].connected);
    assert_eq!(planes[0].acked_version, 4);
}

/// More than the quorum of the connected reporters, and at least two,
/// eject a server fleet-wide; a single reporter never does.
#[tokio::test(start_paused = true)]
async fn ejection_needs_a_quorum_of_at_least_two() {
    let fleet = Fleet::new(EXPIRY).with_quorum(0.5);
    let planes: Vec<_> = (0..4)
        .map(|i| fleet.connect(&hello(&format!("dp-{i}")), None).unwrap())
        .collect();
    let ejected = || fleet.ejected().borrow().iter().cloned().collect::<Vec<_>>();
    fleet.report(&planes[0], report(&[("a", false), ("solo", false)]));
    assert!(ejected().is_empty(), "one failing reporter");
    fleet.report(&planes[1], report(&[("a", false)]));
    fleet.report(&planes[2], report(&[("a", true)]));
    fleet.report(&planes[3], report(&[("a", true)]));
    assert!(ejected().is_empty(), "2 of 4 is not more than half");
    fleet.report(&planes[2], report(&[("a", false)]));
    assert_eq!(ejected(), ["a"], "3 of 4");
    fleet.disconnect(&planes[2]);
    fleet.disconnect(&planes[1]);
    assert!(ejected().is_empty(), "1 of the 2 connected");
}

fn instance(node: &str, instance: &str) -> Hello {
    Hello {
        instance: instance.into(),
        ..hello(node)
    }
}

/// Another process under the node id of a connected, reporting data plane
/// is refused (two never merge into one row); the same process
/// reconnecting replaces its entry; once the first is gone or silent past
/// the expiry, the id is free.
#[tokio::test(start_paused = true)]
async fn a_node_id_in_use_is_refused_to_another_process() {
    let fleet = Fleet::new(EXPIRY);
    let first = fleet.connect(&instance("ide", "p1"), None).unwrap();
    let refused = fleet.connect(&instance("ide", "p2"), None).unwrap_err();
    assert!(
        refused
            .to_string()
            .starts_with("node id 'ide' is in use by another data plane")
    );
    let again = fleet.connect(&instance("ide", "p1"), None).unwrap();
    assert_eq!(fleet.planes().len(), 1);
    fleet.disconnect(&first);
    fleet.disconnect(&again);
    fleet.connect(&instance("ide", "p2"), None).unwrap();

    let quiet = fleet.connect(&instance("quiet", "p1"), None).unwrap();
    tokio::time::advance(EXPIRY + Duration::from_secs(1)).await;
    fleet.connect(&instance("quiet", "p2"), None).unwrap();
    drop(quiet);
}

/// The reports of data planes silent past the expiry stop counting toward
/// an ejection, and count again once they speak; a data plane that
/// reconnects counts with its new stream's reports only.
#[tokio::test(start_paused = true)]
async fn silent_and_reconnected_planes_leave_the_ejection_count() {
    let fleet = Fleet::new(EXPIRY).with_quorum(0.5);
    let planes: Vec<_> = (0..3)
        .map(|i| fleet.connect(&hello(&format!("dp-{i}")), None).unwrap())
        .collect();
    let ejected = || fleet.ejected().borrow().iter().cloned().collect::<Vec<_>>();
    fleet.report(&planes[0], report(&[("a", false)]));
    fleet.report(&planes[1], report(&[("a", false)]));
    fleet.report(&planes[2], report(&[("a", true)]));
    assert_eq!(ejected(), ["a"], "2 of 3");

    tokio::time::advance(EXPIRY / 2).await;
    fleet.report(&planes[2], report(&[("a", true)]));
    tokio::time::advance(EXPIRY / 2 + Duration::from_secs(1)).await;
    fleet.report(&planes[2], report(&[("a", true)]));
    assert!(ejected().is_empty(), "the failing two went silent");

    fleet.ack(&planes[0], 4);
    fleet.ack(&planes[1], 4);
    fleet.report(&planes[2], report(&[("a", true)]));
    assert_eq!(ejected(), ["a"], "heard from again");

    let again = fleet.connect(&hello("dp-1"), None).unwrap();
    fleet.report(&planes[2], report(&[("a", true)]));
    assert!(ejected().is_empty(), "1 of 2 that report it");
    fleet.report(&again, report(&[("a", false)]));
    assert_eq!(ejected(), ["a"], "the new stream's report");
}

/// The NACK log keeps the last [`RECENT_NACKS`], newest first, each reason
/// cut to [`NACK_REASON_CHARS`], and outlives the ACK that clears a data
/// plane's own last NACK.
#[tokio::test(start_paused = true)]
async fn recent_nacks_are_bounded_newest_first_and_outlive_the_next_ack() {
    let fleet = Fleet::new(EXPIRY);
    let conn = fleet.connect(&hello("dp-1"), None).unwrap();
    for version in 1..=(RECENT_NACKS as u64 + 5) {
        fleet.nack(&conn, version, format!("reason {version}"));
    }
    fleet.nack(&conn, 99, "é".repeat(NACK_REASON_CHARS * 2));
    fleet.ack(&conn, 100);
    let nacks = fleet.recent_nacks();
    assert_eq!(nacks.len(), RECENT_NACKS);
    assert_eq!(nacks[0].version, 99);
    assert_eq!(nacks[0].reason.chars().count(), NACK_REASON_CHARS);
    assert_eq!(nacks[1].reason, format!("reason {}", RECENT_NACKS + 5));
    assert_eq!(nacks[0].node_id, "dp-1");
    assert_eq!(
        fleet.planes()[0].last_nack,
        None,
        "the ACK clears the row's NACK"
    );
}

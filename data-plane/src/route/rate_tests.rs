//! The data plane's rate limits built from snapshots, with paused time.

use std::collections::HashMap;
use std::time::Duration;

use hangar_proto::v1::{self, RateLimit, RateShare, RateShares, RateSize};
use hangar_rate::{CallerKey, Which};

use super::build::{EnvLimit, ShareBook};
use super::*;

fn size(rps: f64, burst: u32) -> Option<RateSize> {
    Some(RateSize { rps, burst })
}

/// Group `g` (100/s, tool `search` 2/s burst 2) over server `s` (1/s burst
/// 1, per data plane), and a top-level limit of 1000/s.
fn snapshot() -> v1::Snapshot {
    let mut tools = HashMap::new();
    tools.insert(
        "search".to_owned(),
        RateLimit {
            all: size(2.0, 2),
            ..RateLimit::default()
        },
    );
    v1::Snapshot {
        version: 1,
        servers: vec![v1::Server {
            id: "s".into(),
            rate_limit: Some(RateLimit {
                all: size(1.0, 1),
                per_data_plane: true,
                ..RateLimit::default()
            }),
            ..v1::Server::default()
        }],
        groups: vec![v1::Group {
            id: "g".into(),
            rate_limit: Some(RateLimit {
                all: size(100.0, 100),
                per_data_plane: true,
                tools,
                ..RateLimit::default()
            }),
            ..v1::Group::default()
        }],
        rate_limit: Some(RateLimit {
            all: size(1000.0, 1000),
            ..RateLimit::default()
        }),
        client_auth: None,
        access: vec![],
    }
}

fn build(snapshot: &v1::Snapshot, old: &RateLimits) -> RateLimits {
    RateLimits::build(snapshot, old, None, &ShareBook::default())
}

fn caller() -> CallerKey {
    CallerKey::of("c")
}

#[tokio::test(start_paused = true)]
async fn a_tools_limit_refuses_its_tool_only_and_other_methods_pass() {
    let limits = build(&snapshot(), &RateLimits::default());
    let search = Asking::tool_call(caller(), "search");
    assert!(limits.admit_group("g", &search).is_ok());
    assert!(limits.admit_group("g", &search).is_ok());
    let refused = limits.admit_group("g", &search).unwrap_err();
    assert_eq!(refused.limit, "tool 'search' of group 'g'");
    assert!(
        limits
            .admit_group("g", &Asking::tool_call(caller(), "other"))
            .is_ok()
    );
    let list = Asking {
        caller: caller(),
        method: "tools/list",
        tool: None,
    };
    for _ in 0..10 {
        assert!(limits.admit_group("g", &list).is_ok());
    }
    // The refused call cost the group and the top level nothing: each
    // admitted 3 tool calls (2 of search, 1 other), not 4.
    let group = limits.groups["g"].own.as_ref().unwrap();
    assert_eq!(group.limiter.usage().admitted, 3);
    assert_eq!(limits.every_call[0].limiter.usage().admitted, 3);
}

#[tokio::test(start_paused = true)]
async fn a_servers_limit_is_its_members_to_check() {
    let limits = build(&snapshot(), &RateLimits::default());
    let server = limits.server("s").expect("s has limits");
    let call = Asking::tool_call(caller(), "x");
    assert!(server.admit(&call).is_ok());
    assert_eq!(server.admit(&call).unwrap_err().limit, "server 's'");
    // Not part of a group's entry: members check it.
    assert!(limits.admit_group("g", &call).is_ok());
}

#[tokio::test(start_paused = true)]
async fn unchanged_limits_keep_their_buckets_across_snapshots() {
    let first = build(&snapshot(), &RateLimits::default());
    let server = first.server("s").unwrap();
    assert!(server.admit(&Asking::tool_call(caller(), "x")).is_ok());
    let second = build(&snapshot(), &first);
    let kept = second.server("s").unwrap();
    assert!(kept.admit(&Asking::tool_call(caller(), "x")).is_err());
    // A new size is a new bucket.
    let mut bigger = snapshot();
    bigger.servers[0].rate_limit.as_mut().unwrap().all = size(5.0, 5);
    let third = build(&bigger, &second);
    assert!(
        third
            .server("s")
            .unwrap()
            .admit(&Asking::tool_call(caller(), "x"))
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn fleet_limits_run_on_their_share_once_it_arrives() {
    let mut book = ShareBook::default();
    book.record(&RateShares {
        version: 1,
        shares: Vec::new(),
        data_planes: 4,
    });
    let limits = RateLimits::build(&snapshot(), &RateLimits::default(), None, &book);
    let top = &limits.every_call[0];
    // Before its share: an even split of 1000/s among the 4 data planes.
    assert_eq!(top.limiter.local().map(|r| r.rps), Some(250.0));
    book.record(&RateShares {
        version: 1,
        shares: vec![RateShare {
            limit: "all".into(),
            rps: 1.0,
            burst: 1.0,
        }],
        data_planes: 4,
    });
    limits.apply_shares(&book);
    assert_eq!(top.limiter.local().map(|r| r.rps), Some(1.0));
    // Data-plane limits keep their own size whatever the shares say.
    let group = limits.groups["g"].own.as_ref().unwrap();
    assert_eq!(group.limiter.local().map(|r| r.rps), Some(100.0));
}

#[tokio::test(start_paused = true)]
async fn the_environments_limit_covers_every_call_and_reports_as_env() {
    let env = EnvLimit(hangar_rate::Rate::new(1.0, 2.0));
    let limits = RateLimits::build(
        &v1::Snapshot::default(),
        &RateLimits::default(),
        Some(env),
        &ShareBook::default(),
    );
    let call = Asking::tool_call(caller(), "x");
    assert!(limits.admit_direct(&call).is_ok());
    assert!(limits.admit_direct(&call).is_ok());
    let refused = limits.admit_direct(&call).unwrap_err();
    assert_eq!(refused.which, Which::AllCallers);
    assert_eq!(refused.share, None);
    assert!(
        refused
            .to_string()
            .starts_with("RateLimitExceeded: the rate limit all callers share for this data plane (MCP_RATE_LIMIT_RPS) is used up (2 at once, refilled at 1 per second)"),
        "{refused}"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let report = limits.usage_report();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].limit, "env");
    assert_eq!(
        (
            report[0].offered_rps,
            report[0].admitted_rps,
            report[0].refused_rps
        ),
        (1.5, 1.0, 0.5)
    );
    assert!(!report[0].fleet);
}

/// A burst refused across a report stays one episode: the episode ends
/// only when a whole report window passes without a refusal, so a report
/// sent at once (a health change) between two refusals cannot split it.
#[tokio::test(start_paused = true)]
async fn a_refusing_episode_ends_only_after_a_whole_quiet_window() {
    let env = EnvLimit(hangar_rate::Rate::new(1.0, 1.0));
    let limits = RateLimits::build(
        &v1::Snapshot::default(),
        &RateLimits::default(),
        Some(env),
        &ShareBook::default(),
    );
    let refusing = || {
        limits.every_call[0]
            .refusing
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let call = Asking::tool_call(caller(), "x");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(limits.admit_direct(&call).is_ok());
    assert!(limits.admit_direct(&call).is_err());
    assert!(refusing());
    // A report right after the refusal, another a moment later with no
    // refusal between them, and one a window later that counts a second
    // refusal: the episode goes on.
    limits.usage_report();
    tokio::time::advance(Duration::from_millis(1)).await;
    limits.usage_report();
    assert!(refusing(), "a moment is not a quiet window");
    assert!(limits.admit_direct(&call).is_err());
    tokio::time::advance(Duration::from_secs(1)).await;
    limits.usage_report();
    assert!(refusing(), "the window held a refusal");
    // A whole window with none ends it.
    tokio::time::advance(Duration::from_secs(1)).await;
    limits.usage_report();
    assert!(!refusing());
}

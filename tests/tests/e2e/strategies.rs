//! Each strategy through a data plane with three backends, checking the
//! distribution it promises.

use std::collections::BTreeMap;
use std::time::Duration;

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::data_plane::served_counts;
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::stack::Stack;
use serde_json::json;

async fn three_backends() -> Vec<FakeMcpHandle> {
    let mut servers = Vec::new();
    for name in ["a", "b", "c"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    servers
}

fn config(strategy: &str, servers: &[FakeMcpHandle]) -> GroupConfig {
    let endpoints: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    GroupConfig {
        strategy: strategy.into(),
        ..GroupConfig::recipe(&endpoints)
    }
}

fn tally(sequence: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for member in sequence {
        *counts.entry(member.clone()).or_default() += 1;
    }
    counts
}

fn expect(counts: &[(&str, usize)]) -> BTreeMap<String, usize> {
    counts.iter().map(|(m, n)| ((*m).to_owned(), *n)).collect()
}

/// `random` spreads calls over every healthy member, none starved: with
/// 300 calls each of three members gets 100 ± 40 (about five standard
/// deviations, so the check does not flake).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_spreads_uniformly() {
    let servers = three_backends().await;
    let stack = Stack::start(&config("random", &servers).yaml()).await;
    let sequence = stack
        .client()
        .await
        .sequence(RECIPE_GROUP, "add", json!({"a": 1, "b": 1}), 300)
        .await;
    let counts = tally(&sequence);
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(
        counts.values().all(|&n| (60..=140).contains(&n)),
        "{counts:?}"
    );
    stack.stop().await;
}

/// `weighted_round_robin` with weights 3:1:1 gives exact shares over every
/// cycle of five calls, interleaved (nginx's smooth order), not in bursts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_is_exact_and_smooth() {
    let servers = three_backends().await;
    let mut config = config("weighted_round_robin", &servers);
    config.members[0].weight = 3;
    let stack = Stack::start(&config.yaml()).await;
    let sequence = stack
        .client()
        .await
        .sequence(RECIPE_GROUP, "add", json!({"a": 1, "b": 1}), 10)
        .await;
    // Each process starts at a random point of the cycle, then follows it.
    let cycle = ["my-mcp", "my-mcp-backup", "my-mcp", "my-mcp-3", "my-mcp"];
    let follows = (0..5).any(|k| (0..10).all(|i| sequence[i] == cycle[(k + i) % 5]));
    assert!(follows, "not nginx's smooth order: {sequence:?}");
    stack.stop().await;
}

/// `least_connections` steers new calls away from a member that is busy
/// with slow calls, where round robin would give it a third.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_avoids_the_slow_member() {
    let servers = vec![
        FakeMcp::new("slow")
            .latency(Duration::from_secs(1))
            .start()
            .await,
        FakeMcp::new("b").start().await,
        FakeMcp::new("c").start().await,
    ];
    let stack = Stack::start(&config("least_connections", &servers).yaml()).await;
    let calls: Vec<_> = (0..60)
        .map(|_| json!({"mcp_server": RECIPE_GROUP, "tool": "add", "arguments": {"a": 1, "b": 1}}))
        .collect();
    let out = stack
        .client()
        .await
        .hangar_call(json!({"calls": calls, "max_concurrency": 6}))
        .await;
    let counts = served_counts(&out);
    let slow = counts.get("my-mcp").copied().unwrap_or(0);
    // Each slow call holds the member for a second, while the 60 fast calls
    // finish long before that: the slow member sees only the first picks.
    assert!(
        slow <= 6,
        "the slow member got {slow} of 60 calls: {counts:?}"
    );
    assert_eq!(counts.values().sum::<usize>(), 60);
    stack.stop().await;
}

/// `least_latency` learns that a member answers ten times slower and sends
/// it almost nothing, even when calls come one at a time (where
/// least_connections sees every member idle and rotates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_latency_avoids_the_slow_member() {
    let servers = vec![
        FakeMcp::new("slow")
            .latency(Duration::from_millis(30))
            .start()
            .await,
        FakeMcp::new("b")
            .latency(Duration::from_millis(3))
            .start()
            .await,
        FakeMcp::new("c")
            .latency(Duration::from_millis(3))
            .start()
            .await,
    ];
    let stack = Stack::start(&config("least_latency", &servers).yaml()).await;
    let client = stack.client().await;
    let add = json!({"mcp_server": RECIPE_GROUP, "tool": "add", "arguments": {"a": 1, "b": 1}});
    let out = client
        .hangar_call(json!({"calls": vec![add; 60], "max_concurrency": 1}))
        .await;
    assert_eq!(out["succeeded"], 60, "{out}");
    let counts = served_counts(&out);
    let slow = counts.get("my-mcp").copied().unwrap_or(0);
    assert!(
        slow < 6,
        "the slow member got {slow} of 60 calls: {counts:?}"
    );

    let status = stack.cp.status().await;
    assert_eq!(status.groups[0].strategy, "least_latency");
    stack.stop().await;
}

/// `priority` sends everything to the lowest number; when it fails the
/// backups share the traffic without losing a call, and traffic returns to
/// the primary once a probe finds it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_fails_over_and_back() {
    let mut servers = three_backends().await;
    let mut config = config("priority", &servers);
    config.members[1].priority = 2;
    config.members[2].priority = 2;
    let stack = Stack::start(&config.yaml()).await;
    let client = stack.client().await;
    let args = json!({"a": 1, "b": 1});
    assert_eq!(
        tally(&client.sequence(RECIPE_GROUP, "add", args.clone(), 10).await),
        expect(&[("my-mcp", 10)])
    );

    servers[0].stop().await;
    let counts = tally(&client.sequence(RECIPE_GROUP, "add", args.clone(), 10).await);
    assert_eq!(counts, expect(&[("my-mcp-3", 5), ("my-mcp-backup", 5)]));

    servers[0].restart().await.expect("restart");
    eventually("traffic to return to the primary", || {
        let client = &client;
        let args = args.clone();
        async move {
            let sequence = client.sequence(RECIPE_GROUP, "add", args, 1).await;
            (sequence[0] == "my-mcp").then_some(())
        }
    })
    .await;
    assert_eq!(
        tally(&client.sequence(RECIPE_GROUP, "add", args, 10).await),
        expect(&[("my-mcp", 10)])
    );
    stack.stop().await;
}

//! `/metrics` of the data plane and the control plane, scraped over real
//! HTTP as Prometheus would, after real traffic.

use hangar_proto::v1::{Server, Snapshot, server::Transport};
use hangar_tests::configs::{GroupConfig, RECIPE_GROUP, RECIPE_MEMBERS};
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::metrics::Scrape;
use hangar_tests::raw::Raw;
use hangar_tests::stack::Stack;
use serde_json::json;

async fn three_backends() -> Vec<FakeMcpHandle> {
    let mut servers = Vec::new();
    for name in ["a", "b", "c"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    servers
}

fn config(servers: &[FakeMcpHandle]) -> GroupConfig {
    let endpoints: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    GroupConfig {
        // Health changes here come from calls alone, not from probes.
        health_check_interval_s: 30.0,
        ..GroupConfig::recipe(&endpoints)
    }
}

/// After N calls through a group, the data plane's metrics count N calls
/// with outcome `ok`, split per member exactly as the members served them,
/// with one latency observation each; a call that names a server counts
/// under an empty group. Health, config version and source match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_counts_calls_per_member() {
    let servers = three_backends().await;
    let stack = Stack::start(&config(&servers).yaml()).await;
    let client = stack.client().await;
    let served = client
        .sequence(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 30)
        .await;
    let direct = client
        .batch("my-mcp", "add", json!({"a": 1, "b": 2}), 2)
        .await;
    assert_eq!(direct["succeeded"], 2, "{direct}");

    let scrape = Scrape::fetch(&stack.dp.metrics_url()).await;
    let group = ("group", RECIPE_GROUP);
    assert_eq!(scrape.sum("hangar_calls_total", &[group]), 30.0);
    for member in RECIPE_MEMBERS {
        let by_member = served.iter().filter(|m| *m == member).count() as f64;
        assert!(by_member > 0.0, "round robin reaches {member}");
        let ok = [group, ("member", member), ("outcome", "ok")];
        assert_eq!(scrape.value("hangar_calls_total", &ok), Some(by_member));
        for outcome in ["rejected", "unreachable", "timeout", "error", "cancelled"] {
            let labels = [group, ("member", member), ("outcome", outcome)];
            assert_eq!(scrape.value("hangar_calls_total", &labels), Some(0.0));
        }
        let latency = [group, ("member", member)];
        let count = scrape.value("hangar_call_duration_seconds_count", &latency);
        assert_eq!(count, Some(by_member));
        let le_inf = [group, ("member", member), ("le", "+Inf")];
        let inf = scrape.value("hangar_call_duration_seconds_bucket", &le_inf);
        assert_eq!(inf, Some(by_member));
        assert_eq!(
            scrape.value("hangar_member_healthy", &[("member", member)]),
            Some(1.0)
        );
        let in_flight = scrape.value("hangar_calls_in_flight", &[("member", member)]);
        assert_eq!(in_flight, Some(0.0));
    }
    let direct_ok = [("group", ""), ("member", "my-mcp"), ("outcome", "ok")];
    assert_eq!(scrape.value("hangar_calls_total", &direct_ok), Some(2.0));
    let version = stack.cp.status().await.version as f64;
    assert_eq!(scrape.value("hangar_config_version", &[]), Some(version));
    let source = |s| scrape.value("hangar_config_source", &[("source", s)]);
    assert_eq!(source("control_plane"), Some(1.0));
    assert_eq!(source("cache"), Some(0.0));
    let healthy_members = scrape.value("hangar_group_healthy_members", &[group]);
    assert_eq!(healthy_members, Some(3.0));
    stack.stop().await;
}

/// Requests through `/groups/{group}/mcp` count under the group and the
/// member of the session: `initialize`, the `initialized` notification and
/// every call of the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_counts_transparent_requests() {
    let servers = three_backends().await;
    let stack = Stack::start(&config(&servers).yaml()).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: stack
            .dp
            .mcp_url()
            .replace("/mcp", &format!("/groups/{RECIPE_GROUP}/mcp")),
    };
    let session = raw.initialize().await;
    let mut served_by = String::new();
    for _ in 0..5 {
        served_by = raw.whoami(&session).await.expect("whoami");
    }
    // The backends are named a, b, c after the recipe's members, in order.
    let index = servers
        .iter()
        .position(|s| s.name() == served_by)
        .expect("a backend served the session");
    let member = RECIPE_MEMBERS[index];
    let ok = [
        ("group", RECIPE_GROUP),
        ("member", member),
        ("outcome", "ok"),
    ];
    let scrape = eventually("the session's last answer to settle", || async {
        let scrape = Scrape::fetch(&stack.dp.metrics_url()).await;
        (scrape.value("hangar_calls_total", &ok) == Some(7.0)).then_some(scrape)
    })
    .await;
    let total = scrape.sum("hangar_calls_total", &[("group", RECIPE_GROUP)]);
    assert_eq!(total, 7.0, "only the session's member was called");
    stack.stop().await;
}

/// A killed member shows health 0 once it left rotation, its refused
/// connections are counted as `unreachable` (exactly the ejection
/// threshold, since later calls skip it), and no call was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_shows_a_killed_member() {
    let mut servers = three_backends().await;
    let config = config(&servers);
    let stack = Stack::start(&config.yaml()).await;
    let client = stack.client().await;
    servers[2].stop().await;
    // One call at a time, so no call tries the dead member after it left
    // rotation; `sequence` fails the test if any call failed.
    client
        .sequence(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 30)
        .await;

    let scrape = Scrape::fetch(&stack.dp.metrics_url()).await;
    let dead = ("member", "my-mcp-3");
    assert_eq!(scrape.value("hangar_member_healthy", &[dead]), Some(0.0));
    let failures = f64::from(config.max_consecutive_failures);
    let unreachable = [("group", RECIPE_GROUP), dead, ("outcome", "unreachable")];
    assert_eq!(
        scrape.value("hangar_calls_total", &unreachable),
        Some(failures)
    );
    let changes = scrape.value("hangar_member_rotation_changes_total", &[dead]);
    assert_eq!(changes, Some(1.0));
    let ok = scrape.sum(
        "hangar_calls_total",
        &[("group", RECIPE_GROUP), ("outcome", "ok")],
    );
    assert_eq!(ok, 30.0);
    let group = [("group", RECIPE_GROUP)];
    assert_eq!(
        scrape.value("hangar_group_healthy_members", &group),
        Some(2.0)
    );
    stack.stop().await;
}

/// `/metrics` answers a scraper that names the data plane by any host
/// (the MCP endpoints refuse such a `Host`), and is not an MCP endpoint:
/// a JSON-RPC POST gets 405, not a JSON-RPC answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_metrics_are_for_scrapers_only() {
    let servers = three_backends().await;
    let stack = Stack::start(&config(&servers).yaml()).await;
    let http = reqwest::Client::new();
    let foreign_host = |url: String| http.get(url).header("host", "dp-1.example:9000");
    let mcp = foreign_host(stack.dp.mcp_url()).send().await.unwrap();
    assert_eq!(mcp.status(), 403, "the MCP endpoint refuses a foreign Host");
    let scrape = foreign_host(stack.dp.metrics_url()).send().await.unwrap();
    assert_eq!(scrape.status(), 200);

    let post = http
        .post(stack.dp.metrics_url())
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    stack.stop().await;
}

/// The control plane's metrics, on its gRPC listener, count every apply by
/// result, show the data plane connected and on the version in force, the
/// one snapshot push it acked, a NACK, and the data plane leaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_counts_applies_and_pushes() {
    let servers = three_backends().await;
    let yaml = config(&servers).yaml();
    let Stack { cp, dp } = Stack::start(&yaml).await;
    assert!(!cp.apply(&yaml).await.expect("same config").changed);
    let invalid = "mcp_servers:\n  g:\n    mode: group\n    members: []\n";
    assert!(cp.apply(invalid).await.is_err());

    let scrape = Scrape::fetch(&cp.metrics_url()).await;
    let applies = |r| scrape.value("hangar_config_applies_total", &[("result", r)]);
    assert_eq!(
        [applies("applied"), applies("unchanged"), applies("invalid")],
        [Some(1.0); 3]
    );
    assert_eq!(applies("failed"), Some(0.0));
    let planes = |s| scrape.value("hangar_data_planes", &[("state", s)]);
    assert_eq!(planes("connected"), Some(1.0));
    assert_eq!(planes("disconnected"), Some(0.0));
    assert_eq!(scrape.value("hangar_data_planes_behind", &[]), Some(0.0));
    assert_eq!(scrape.value("hangar_config_version", &[]), Some(1.0));
    assert_eq!(scrape.value("hangar_snapshots_sent_total", &[]), Some(1.0));
    let pushes = scrape.value("hangar_snapshot_push_duration_seconds_count", &[]);
    assert_eq!(pushes, Some(1.0), "the data plane's ACK was timed");
    assert_eq!(scrape.value("hangar_snapshot_nacks_total", &[]), Some(0.0));

    let mut bad = Snapshot {
        version: 2,
        ..Default::default()
    };
    bad.servers.push(Server {
        id: "x".into(),
        transport: Some(Transport::Endpoint("ftp://nowhere".into())),
        probe_interval_ms: 1000,
        max_consecutive_failures: 1,
        ..Default::default()
    });
    cp.inject_snapshot(bad);
    eventually("the NACK to be counted", || async {
        let scrape = Scrape::fetch(&cp.metrics_url()).await;
        (scrape.value("hangar_snapshot_nacks_total", &[]) == Some(1.0)).then_some(())
    })
    .await;

    dp.stop().await;
    eventually("the data plane to show disconnected", || async {
        let scrape = Scrape::fetch(&cp.metrics_url()).await;
        let planes = |s| scrape.value("hangar_data_planes", &[("state", s)]);
        (planes("disconnected") == Some(1.0) && planes("connected") == Some(0.0)).then_some(())
    })
    .await;
    cp.stop().await;
}

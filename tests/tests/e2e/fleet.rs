//! The fleet protocol under faults: NACKs, the snapshot cache, applies
//! while a data plane is away, and fleet-wide health hints.

use hangar_proto::v1::{Server, Snapshot, server::Transport};
use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::{DataPlane, McpClient};
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::metrics::Scrape;
use serde_json::{Value, json};

async fn backends(n: usize) -> Vec<FakeMcpHandle> {
    let mut servers = Vec::new();
    for i in 0..n {
        servers.push(FakeMcp::new(format!("s{i}")).start().await);
    }
    servers
}

fn config(servers: &[FakeMcpHandle]) -> GroupConfig {
    let endpoints: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    GroupConfig::recipe(&endpoints)
}

fn with_cache(cp_url: &str, node_id: &str, dir: &std::path::Path) -> hangar_data_plane::Settings {
    hangar_data_plane::Settings {
        cache_dir: Some(dir.to_path_buf()),
        ..hangar_data_plane::Settings::new(cp_url, node_id)
    }
}

async fn local_status(client: &McpClient) -> Value {
    client.call("hangar_status", json!({})).await
}

async fn one_call_succeeds(client: &McpClient) -> bool {
    client
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 1}), 1)
        .await["succeeded"]
        == 1
}

/// A snapshot the data planes cannot use is NACKed with the reason, the
/// control plane shows the NACK per data plane, and each data plane keeps
/// serving its last good version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_snapshot_is_nacked_and_last_good_kept() {
    let servers = backends(1).await;
    let cp = ControlPlane::start().await;
    let dp1 = DataPlane::start(&cp.url(), "dp-1").await;
    let dp2 = DataPlane::start(&cp.url(), "dp-2").await;
    cp.apply_and_wait(&config(&servers).yaml(), 2).await;

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
    let planes = eventually("both data planes to NACK version 2", || async {
        let status = cp.status().await;
        status
            .data_planes
            .iter()
            .all(|p| p.last_nack.starts_with("version 2: "))
            .then_some(status.data_planes)
    })
    .await;
    for plane in &planes {
        assert_eq!(plane.acked_version, 1);
        assert_eq!(
            plane.last_nack,
            "version 2: server 'x': endpoint must be http or https"
        );
    }
    for dp in [&dp1, &dp2] {
        let client = dp.client().await;
        assert!(
            one_call_succeeds(&client).await,
            "the last good snapshot still serves"
        );
        assert_eq!(local_status(&client).await["config_version"], 1);
    }
    dp1.stop().await;
    dp2.stop().await;
    cp.stop().await;
}

/// A data plane restarted with `--cache-dir` while the control plane is
/// down serves its cached snapshot at once and says so; when the control
/// plane is back with a newer version it receives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_serves_without_control_plane_and_catches_up() {
    let servers = backends(2).await;
    let cache = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start_in(state.path()).await;
    let cp_url = cp.url();
    let dp = DataPlane::start_with(with_cache(&cp_url, "dp-1", cache.path())).await;
    let mut config = config(&servers[..1]);
    cp.apply_and_wait(&config.yaml(), 1).await;
    dp.stop().await;
    cp.stop().await;

    // No control plane anywhere: the cached snapshot serves.
    let dp = DataPlane::start_with(with_cache(&cp_url, "dp-1", cache.path())).await;
    let client = dp.client().await;
    assert!(one_call_succeeds(&client).await);
    let local = local_status(&client).await;
    assert_eq!(
        (
            local["config_version"].clone(),
            local["config_source"].clone()
        ),
        (json!(1), json!("cache"))
    );
    let scrape = Scrape::fetch(&dp.metrics_url()).await;
    let source = |s| scrape.value("hangar_config_source", &[("source", s)]);
    assert_eq!(
        (source("cache"), source("control_plane")),
        (Some(1.0), Some(0.0))
    );
    assert_eq!(scrape.value("hangar_config_version", &[]), Some(1.0));

    // Apply while the data plane is away; it gets the new version once a
    // control plane on the same state answers.
    let cp = ControlPlane::start_in(state.path()).await;
    config = self::config(&servers);
    assert_eq!(cp.apply(&config.yaml()).await.unwrap().version, 2);
    dp.stop().await;
    let dp = DataPlane::start_with(with_cache(&cp.url(), "dp-1", cache.path())).await;
    eventually("the data plane to ack version 2", || async {
        (cp.status().await.data_planes.first()?.acked_version == 2).then_some(())
    })
    .await;
    let local = local_status(&dp.client().await).await;
    assert_eq!(local["config_source"], "control_plane");
    assert_eq!(local["groups"][0]["total"], 2);
    dp.stop().await;
    cp.stop().await;
}

/// A member every data plane sees failing is marked in the snapshots sent
/// to data planes that connect later: they start it out of rotation at once
/// instead of learning it with their own failed calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_data_plane_starts_fleet_dead_member_out_of_rotation() {
    let mut servers = backends(2).await;
    let config = GroupConfig {
        health_check_interval_s: 30.0,
        max_consecutive_failures: 3,
        ..config(&servers)
    };
    let cp = ControlPlane::start().await;
    let dp1 = DataPlane::start(&cp.url(), "dp-1").await;
    cp.apply_and_wait(&config.yaml(), 1).await;
    servers[1].stop().await;
    // dp-1 learns it through failed calls (failover keeps every call good).
    let client = dp1.client().await;
    for _ in 0..6 {
        assert!(one_call_succeeds(&client).await);
    }
    eventually("the control plane to see my-mcp-backup dead", || async {
        let status = cp.status().await;
        let server = status.servers.iter().find(|s| s.id == "my-mcp-backup")?;
        (server.state == "dead").then_some(())
    })
    .await;

    let dp2 = DataPlane::start(&cp.url(), "dp-2").await;
    eventually("dp-2 to ack", || async {
        let status = cp.status().await;
        status
            .data_planes
            .iter()
            .any(|p| p.node_id == "dp-2" && p.acked_version == 1)
            .then_some(())
    })
    .await;
    let local = local_status(&dp2.client().await).await;
    let backup = local["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "my-mcp-backup")
        .unwrap();
    assert_eq!(backup["healthy"], false, "{local}");
    assert_eq!(
        backup["errors"], 0,
        "no call of dp-2 was spent to learn it: {local}"
    );
    dp1.stop().await;
    dp2.stop().await;
    cp.stop().await;
}

/// Whether `member` of `group` is in rotation on the data plane `client`
/// talks to.
async fn in_rotation(client: &McpClient, group: &str, member: &str) -> bool {
    let status = local_status(client).await;
    status["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["name"] == group))
        .and_then(|g| g["members"].as_array())
        .and_then(|members| members.iter().find(|m| m["id"] == member))
        .is_some_and(|m| m["in_rotation"] == true)
}

/// A quorum of the data planes that use a member (more than half, and at
/// least two) seeing it failing takes it out of rotation on every data
/// plane, also one that can reach it and never failed a call on it; one
/// data plane alone never does. When the quorum is lost it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_of_data_planes_takes_a_member_out_for_the_whole_fleet() {
    use hangar_tests::witness::Witness;

    let servers = backends(2).await;
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    let yaml = format!(
        "mcp_servers:\n  s0:\n    mode: remote\n    endpoint: \"{}\"\n  s1:\n    mode: remote\n    endpoint: \"{}\"\n  g:\n    mode: group\n    members: [{{id: s0}}, {{id: s1}}]\n",
        servers[0].url(),
        servers[1].url()
    );
    cp.apply_and_wait(&yaml, 1).await;
    let client = dp.client().await;
    eventually("dp-1 to use both members", || async {
        (in_rotation(&client, "g", "s0").await && in_rotation(&client, "g", "s1").await)
            .then_some(())
    })
    .await;

    let view = [("s0", true), ("s1", false)];
    let w1 = Witness::connect(&cp.url(), "w-1", &view).await;
    let status = eventually("w-1's report to count", || async {
        let status = cp.status().await;
        let s1 = status.servers.iter().find(|s| s.id == "s1")?.clone();
        (s1.reported_by == 2).then_some(s1)
    })
    .await;
    assert!(!status.fleet_ejected, "one data plane alone: {status:?}");
    assert_eq!(status.failing_on, ["w-1"]);
    assert!(in_rotation(&client, "g", "s1").await);

    let w2 = Witness::connect(&cp.url(), "w-2", &view).await;
    eventually("s1 out of rotation on dp-1 too", || async {
        (!in_rotation(&client, "g", "s1").await).then_some(())
    })
    .await;
    let status = cp.status().await;
    let s1 = status.servers.iter().find(|s| s.id == "s1").unwrap();
    assert!(s1.fleet_ejected, "{s1:?}");
    assert_eq!(s1.failing_on, ["w-1", "w-2"]);
    let g = status.groups.iter().find(|g| g.id == "g").unwrap();
    assert_eq!(
        (g.state.as_str(), g.healthy_members),
        ("partial", 1),
        "{g:?}"
    );
    let served = client.batch("g", "add", json!({"a": 1, "b": 1}), 4).await;
    let results = served["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["served_by"] == "s0"), "{served}");

    drop(w2);
    eventually("s1 back once the quorum is gone", || async {
        in_rotation(&client, "g", "s1").await.then_some(())
    })
    .await;
    drop(w1);
    dp.stop().await;
    cp.stop().await;
}

//! Members dying, coming back, and config changes under traffic.

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::data_plane::McpClient;
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::stack::Stack;
use serde_json::{Value, json};

async fn three_backends() -> Vec<FakeMcpHandle> {
    let mut servers = Vec::new();
    for name in ["a", "b", "c"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    servers
}

fn endpoints(servers: &[FakeMcpHandle]) -> Vec<String> {
    servers.iter().map(FakeMcpHandle::url).collect()
}

/// The data plane's own view of one server, from `hangar_status`.
async fn local_server(client: &McpClient, id: &str) -> Value {
    let status = client.call("hangar_status", json!({})).await;
    let servers = status["servers"].as_array().expect("servers").clone();
    servers
        .into_iter()
        .find(|s| s["id"] == id)
        .expect("server in hangar_status")
}

/// A member killed while a client keeps calling costs no call: calls that
/// could not reach it go to the others at once, and after
/// `max_consecutive_failures` refused connections it is out of rotation, so
/// later calls do not even try it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_member_loses_no_call() {
    let mut servers = three_backends().await;
    let config = GroupConfig {
        health_check_interval_s: 30.0,
        ..GroupConfig::recipe(&endpoints(&servers))
    };
    let stack = Stack::start(&config.yaml()).await;
    let client = stack.client().await;
    let mut failed = 0;
    for i in 0..120 {
        if i == 40 {
            servers[2].stop().await;
        }
        let out = client
            .batch(RECIPE_GROUP, "add", json!({"a": i, "b": 1}), 1)
            .await;
        if out["succeeded"] != 1 {
            failed += 1;
        }
    }
    assert_eq!(failed, 0);
    // Out of rotation by passive health alone (the probe period is 30 s),
    // after exactly max_consecutive_failures refused attempts.
    let dead = local_server(&client, "my-mcp-3").await;
    assert_eq!(dead["healthy"], false, "{dead}");
    assert_eq!(dead["errors"], 2, "{dead}");
    let status = stack.cp.status().await;
    assert_eq!(status.groups[0].state, "partial");
    stack.stop().await;
}

/// Below `min_healthy` the group is `unavailable` and calls fail at once
/// with `NoAvailableMemberError`, naming the group and its healthy count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_min_healthy_calls_fail_fast() {
    let mut servers = three_backends().await;
    let config = GroupConfig {
        min_healthy: 2,
        max_consecutive_failures: 1,
        ..GroupConfig::recipe(&endpoints(&servers))
    };
    let stack = Stack::start(&config.yaml()).await;
    let client = stack.client().await;
    servers[1].stop().await;
    servers[2].stop().await;
    eventually("the group to be unavailable", || async {
        (stack.cp.status().await.groups[0].state == "unavailable").then_some(())
    })
    .await;
    let out = client
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 1}), 1)
        .await;
    let result = &out["results"][0];
    assert_eq!(result["error_type"], "NoAvailableMemberError");
    assert_eq!(
        result["error"],
        "No available member in group 'my-mcp-group': 1 of 3 members healthy, min_healthy is 2"
    );
    assert_eq!(servers[0].calls(), 0, "an unavailable group sends nothing");
    stack.stop().await;
}

/// New weights apply to a running data plane without a restart: calls in
/// flight during the apply complete, a member that is down stays out of
/// rotation (its health is kept), and the next calls follow the new weights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_change_applies_live_and_keeps_health() {
    let mut servers = three_backends().await;
    let mut config = GroupConfig {
        strategy: "weighted_round_robin".into(),
        health_check_interval_s: 30.0,
        max_consecutive_failures: 1,
        ..GroupConfig::recipe(&endpoints(&servers))
    };
    let stack = Stack::start(&config.yaml()).await;
    let client = stack.client().await;
    servers[2].stop().await;
    // One refused call takes my-mcp-3 out (max_consecutive_failures 1).
    client
        .sequence(RECIPE_GROUP, "add", json!({"a": 1, "b": 1}), 3)
        .await;
    assert_eq!(local_server(&client, "my-mcp-3").await["healthy"], false);

    let slow_client = stack.client().await;
    let in_flight = tokio::spawn(async move {
        let calls =
            vec![json!({"mcp_server": "my-mcp", "tool": "sleep", "arguments": {"ms": 500}}); 4];
        slow_client
            .hangar_call(json!({"calls": calls, "max_concurrency": 4}))
            .await
    });
    eventually("the slow calls to be in flight", || async {
        (servers[0].in_flight() == 4).then_some(())
    })
    .await;
    config.members[0].weight = 3;
    stack.cp.apply_and_wait(&config.yaml(), 1).await;
    assert_eq!(
        local_server(&client, "my-mcp-3").await["healthy"],
        false,
        "health is kept"
    );
    let out = in_flight.await.unwrap();
    assert_eq!(
        out["succeeded"], 4,
        "in-flight calls survive the apply: {out}"
    );

    let sequence = client
        .sequence(RECIPE_GROUP, "add", json!({"a": 1, "b": 1}), 8)
        .await;
    let primary = sequence.iter().filter(|m| *m == "my-mcp").count();
    assert_eq!((primary, sequence.len() - primary), (6, 2), "{sequence:?}");
    assert!(!sequence.iter().any(|m| m == "my-mcp-3"));
    stack.stop().await;
}

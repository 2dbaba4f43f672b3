//! Round robin across a group, member loss and recovery.

use hangar_proto::v1::StatusResponse;
use hangar_tests::configs::{self, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::{DataPlane, served_counts};
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::stack::Stack;
use serde_json::json;

fn group_line(status: &StatusResponse) -> (String, u32, u32) {
    let g = status
        .groups
        .iter()
        .find(|g| g.id == RECIPE_GROUP)
        .expect("group in status");
    (g.state.clone(), g.healthy_members, g.total_members)
}

/// The recipe's promise: calls spread evenly over the group; a stopped
/// member leaves rotation without failing any call and the group reads
/// `partial 2/3`; once restarted it is back in rotation and the group `ready`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_calls_and_survives_member_loss() {
    let mut servers = Vec::new();
    for name in ["a", "b", "c"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    let endpoints: Vec<String> = servers.iter().map(|s| s.url()).collect();
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    let applied = cp
        .apply(&configs::recipe(&endpoints, 0.1, 2))
        .await
        .expect("apply");
    assert_eq!(applied.version, 1);
    eventually("the data plane to ack version 1", || async {
        let status = cp.status().await;
        (status.data_planes.first()?.acked_version == 1 && group_line(&status).0 == "ready")
            .then_some(())
    })
    .await;

    let client = dp.client().await;
    let out = client
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 30)
        .await;
    assert_eq!(out["succeeded"], 30, "{out}");
    let counts = served_counts(&out);
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        [10, 10, 10],
        "{counts:?}"
    );
    assert_eq!(out["results"][0]["result"]["structuredContent"]["sum"], 3);

    // Stop the third member: calls keep succeeding on the other two, at
    // once, even before the member leaves rotation.
    servers[2].stop().await;
    let out = client
        .batch(RECIPE_GROUP, "add", json!({"a": 2, "b": 2}), 30)
        .await;
    assert_eq!(
        out["succeeded"], 30,
        "no call may fail while a member dies: {out}"
    );
    let counts = served_counts(&out);
    assert!(!counts.contains_key("my-mcp-3"), "{counts:?}");

    eventually("the group to be partial 2/3", || async {
        (group_line(&cp.status().await) == ("partial".into(), 2, 3)).then_some(())
    })
    .await;
    let status = cp.status().await;
    let dead = status
        .servers
        .iter()
        .find(|s| s.id == "my-mcp-3")
        .expect("my-mcp-3");
    assert_eq!(dead.state, "dead");

    // Restart it on the same port: back in rotation after a good probe.
    servers[2]
        .restart()
        .await
        .expect("restart on the same port");
    eventually("the group to be ready again", || async {
        (group_line(&cp.status().await) == ("ready".into(), 3, 3)).then_some(())
    })
    .await;
    // It ramps up from a tenth of its share (slow start) to all of it.
    eventually("the restarted member to take calls again", || async {
        let out = client
            .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 1}), 30)
            .await;
        served_counts(&out).contains_key("my-mcp-3").then_some(())
    })
    .await;
    dp.stop().await;
    cp.stop().await;
}

/// A tool result with `isError: true` is the tool's answer: the call is
/// reported as failed, but the member stays healthy and in rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_errors_do_not_eject_members() {
    let a = FakeMcp::new("a").start().await;
    let stack = Stack::start(&configs::recipe(&[a.url()], 0.1, 1)).await;
    let (cp, dp) = (&stack.cp, &stack.dp);
    let client = dp.client().await;
    let out = client.batch(RECIPE_GROUP, "fail", json!({}), 3).await;
    assert_eq!(out["failed"], 3, "{out}");
    let first = &out["results"][0];
    assert_eq!(first["error_type"], "ToolInvocationError");
    assert_eq!(first["result"]["isError"], true);
    assert!(
        first["error"].as_str().unwrap().starts_with("tool_error: "),
        "{first}"
    );
    let out = client
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 1}), 1)
        .await;
    assert_eq!(
        out["succeeded"], 1,
        "the member must still be in rotation: {out}"
    );
    let status = cp.status().await;
    assert_eq!(status.servers[0].state, "ready");
    stack.stop().await;
}

//! The applied config outlives the control plane.

use hangar_tests::configs;
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::{DataPlane, served_counts};
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;
use serde_json::json;

/// A restarted control plane comes back with the same config and version,
/// and a data plane that connects only then gets that snapshot at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_applied_config() {
    let a = FakeMcp::new("a").start().await;
    let state = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start_in(state.path()).await;
    let yaml = configs::recipe(&[a.url()], 0.2, 2);
    assert_eq!(cp.apply(&yaml).await.unwrap().version, 1);
    cp.stop().await;

    let cp = ControlPlane::start_in(state.path()).await;
    let status = cp.status().await;
    assert_eq!(status.version, 1);
    assert_eq!(status.groups[0].id, "my-mcp-group");
    // The same config again is not a new version.
    let again = cp.apply(&yaml).await.unwrap();
    assert_eq!((again.version, again.changed), (1, false));

    let dp = DataPlane::start(&cp.url(), "late").await;
    eventually("the late data plane to ack version 1", || async {
        (cp.status().await.data_planes.first()?.acked_version == 1).then_some(())
    })
    .await;
    let out = dp
        .client()
        .await
        .batch("my-mcp-group", "add", json!({"a": 1, "b": 1}), 2)
        .await;
    assert_eq!(served_counts(&out).get("my-mcp"), Some(&2));
    dp.stop().await;
    cp.stop().await;
}

/// The data plane keeps serving its last snapshot while the control plane
/// is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_serves_while_control_plane_is_down() {
    let a = FakeMcp::new("a").start().await;
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    cp.apply_and_wait(&configs::recipe(&[a.url()], 0.2, 2), 1)
        .await;
    cp.stop().await;
    let out = dp
        .client()
        .await
        .batch("my-mcp-group", "add", json!({"a": 1, "b": 1}), 3)
        .await;
    assert_eq!(out["succeeded"], 3, "{out}");
    dp.stop().await;
}

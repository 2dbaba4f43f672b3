//! Applying configs through the Admin API.

use hangar_proto::v1::ValidationErrors;
use hangar_tests::configs;
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::DataPlane;
use prost::Message;

/// A bad config is refused with every error in the status details, and
/// nothing changes: the version in force and the data planes stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_changes_nothing() {
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    let good = configs::recipe(&["http://127.0.0.1:1".to_owned()], 10.0, 3);
    cp.apply_and_wait(&good, 1).await;

    let bad = good
        .replace("weight: 1", "weight: 0")
        .replace("round_robin", "fastest");
    let status = cp
        .apply(&bad)
        .await
        .expect_err("bad config must be refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let details = ValidationErrors::decode(status.details()).unwrap();
    let paths: Vec<&str> = details.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "mcp_servers.my-mcp-group.strategy",
            "mcp_servers.my-mcp-group.members[0].weight"
        ]
    );
    assert!(
        details
            .errors
            .iter()
            .all(|e| e.line > 0 && e.column > 0 && e.source_name == "config.yaml")
    );

    let status = cp.status().await;
    assert_eq!(status.version, 1);
    assert_eq!(status.groups[0].strategy, "round_robin");
    assert_eq!(status.data_planes[0].acked_version, 1);
    dp.stop().await;
    cp.stop().await;
}

/// A status watcher does not keep a stopping control plane alive: the
/// watch ends and shutdown completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_status_watches() {
    let cp = ControlPlane::start().await;
    let mut watch = cp
        .admin()
        .await
        .watch_status(hangar_proto::v1::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        watch.message().await.unwrap().is_some(),
        "the first status comes at once"
    );
    tokio::time::timeout(std::time::Duration::from_secs(10), cp.stop())
        .await
        .expect("shutdown must not wait for the watch");
    assert!(matches!(watch.message().await, Ok(None) | Err(_)));
}

//! Applying configs through the Admin API.

use hangar_proto::v1::ValidationErrors;
use hangar_tests::configs;
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::DataPlane;
use hangar_tests::eventually::eventually;
use hangar_tests::metrics::Scrape;
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

/// A config with no servers over one with some is refused unless asked
/// for: the config in force and the data planes stay as they were. With
/// `allow_empty` it applies, and the data planes empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptying_every_data_plane_must_be_asked_for() {
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    let good = configs::recipe(&["http://127.0.0.1:1".to_owned()], 10.0, 3);
    cp.apply_and_wait(&good, 1).await;
    let before = cp.status().await;
    let (servers, groups) = (before.servers.len(), before.groups.len());
    assert!(servers > 0 && groups > 0);

    let empty = "mcp_servers: {}\n";
    let status = cp.apply(empty).await.expect_err("must be refused");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        status.message(),
        format!(
            "the config has no servers: applying it would remove every server ({} in force) from every data plane; pass --allow-empty to do that",
            servers + groups
        )
    );
    let status = cp.status().await;
    assert_eq!(status.version, 1);
    assert_eq!(status.servers.len(), servers);
    assert_eq!(status.groups.len(), groups);
    assert_eq!(status.data_planes[0].acked_version, 1);
    let scrape = Scrape::fetch(&cp.metrics_url()).await;
    let refused = scrape.value("hangar_config_applies_total", &[("result", "refused")]);
    assert_eq!(refused, Some(1.0));

    let applied = cp.apply_allowing_empty(empty).await.expect("asked for");
    assert_eq!((applied.version, applied.changed), (2, true));
    eventually("the data plane to ack the empty config", || async {
        let status = cp.status().await;
        (status.data_planes[0].acked_version == 2).then_some(())
    })
    .await;
    let status = cp.status().await;
    assert!(status.servers.is_empty() && status.groups.is_empty());
    dp.stop().await;
    cp.stop().await;
}

/// Where no server is in force, an empty config removes nothing and needs
/// no flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_first_config_needs_no_flag() {
    let cp = ControlPlane::start().await;
    let applied = cp
        .apply("mcp_servers: {}\n")
        .await
        .expect("nothing to remove");
    assert_eq!(applied.version, 0, "equal to the config before any apply");
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

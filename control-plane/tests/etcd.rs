//! Control-plane replicas sharing their config through a real etcd.
//!
//! Each test starts its own etcd on loopback (see `hangar_tests::etcd`);
//! without an `etcd` binary they skip with a note, or fail under `CI=true`.

use std::time::Duration;

use hangar_etcd_api::etcdserverpb::kv_client::KvClient;
use hangar_etcd_api::etcdserverpb::{DeleteRangeRequest, RangeRequest};
use hangar_proto::client::ControlPlaneChannel;
use hangar_proto::v1::admin_service_client::AdminServiceClient;
use hangar_proto::v1::{ApplyRequest, StatusRequest};
use hangar_tests::configs;
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::DataPlane;
use hangar_tests::etcd::Etcd;
use hangar_tests::eventually::{PATIENCE, eventually};
use hangar_tests::fake_mcp::FakeMcp;
use serde_json::json;
use tokio::time::Instant;

/// A data plane on replica A gets a config applied through replica B, and
/// both replicas report it. Prints the apply-to-ACK latency through etcd
/// next to that of a single control plane on its state directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_on_one_replica_reaches_data_planes_of_another() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let mcp = FakeMcp::new("a").start().await;
    let a = ControlPlane::start_with(etcd.replica_settings()).await;
    let b = ControlPlane::start_with(etcd.replica_settings()).await;
    let dp = data_plane_on(&a, &b).await;

    let yaml = configs::recipe(&[mcp.url()], 0.2, 2);
    let applied = b.apply(&yaml).await.expect("apply through B");
    assert_eq!((applied.version, applied.changed), (1, true));
    wait_acked(&a, 1).await;
    assert_eq!(b.status().await.version, 1);
    let out = dp
        .client()
        .await
        .batch("my-mcp-group", "add", json!({"a": 1, "b": 2}), 2)
        .await;
    assert_eq!(out["succeeded"], 2, "{out}");

    // B rolls up the health that A's data plane reports, once; A lists it once.
    eventually("B to roll up the data plane on A", || async {
        let status = b.status().await;
        let [plane] = status.data_planes.as_slice() else {
            return None;
        };
        let server = status.servers.iter().find(|s| s.id == "my-mcp")?;
        (plane.node_id == "dp-1"
            && plane.acked_version == 1
            && server.reported_by == 1
            && server.healthy_on == 1)
            .then_some(())
    })
    .await;
    assert_eq!(a.status().await.data_planes.len(), 1);

    // Re-applying through the other replica is no new version.
    let again = a.apply(&yaml).await.expect("same config through A");
    assert_eq!((again.version, again.changed), (1, false));

    let through_etcd = apply_to_ack(&b, &a, &mcp.url()).await;
    dp.stop().await;
    let single = ControlPlane::start().await;
    let single_dp = DataPlane::start(&single.url(), "dp-1").await;
    let local = apply_to_ack(&single, &single, &mcp.url()).await;
    println!(
        "apply-to-ACK, median of {ROUNDS}: through etcd (apply on B, data plane on A) {through_etcd:?}; single node {local:?}"
    );

    single_dp.stop().await;
    single.stop().await;
    a.stop().await;
    b.stop().await;
}

/// Two replicas applying different configs at the same moment, [`RACES`] times: per
/// version exactly one wins, the other is refused with ABORTED and the
/// conflict message, and both replicas end on the same config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_have_one_winner_per_version() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let a = ControlPlane::start_with(etcd.replica_settings()).await;
    let b = ControlPlane::start_with(etcd.replica_settings()).await;
    let (mut admin_a, mut admin_b) = (a.admin().await, b.admin().await);
    let mut conflicts = 0;
    let mut version = 0;
    // Whether two applies overlap is up to the scheduler; over this many
    // rounds some always do (typically most of them).
    for round in 0..RACES {
        let yaml_a = configs::recipe(&[format!("http://127.0.0.1:1/a{round}")], 0.5, 2);
        let yaml_b = configs::recipe(&[format!("http://127.0.0.1:1/b{round}")], 0.5, 2);
        let (ra, rb) = tokio::join!(
            apply_with(&mut admin_a, &yaml_a),
            apply_with(&mut admin_b, &yaml_b)
        );
        let mut won = Vec::new();
        for result in [ra, rb] {
            match result {
                Ok(applied) => {
                    assert!(applied.changed, "round {round}: {applied:?}");
                    won.push(applied.version);
                }
                Err(status) => {
                    assert_eq!(
                        status.code(),
                        tonic::Code::Aborted,
                        "round {round}: {status:?}"
                    );
                    assert!(
                        status
                            .message()
                            .starts_with("config changed concurrently (version ")
                            && status.message().ends_with("re-run apply"),
                        "round {round}: {}",
                        status.message()
                    );
                    conflicts += 1;
                }
            }
        }
        won.sort_unstable();
        // Either one winner, or the two ran one after the other.
        let expected: &[u64] = if won.len() == 1 {
            &[version + 1]
        } else {
            &[version + 1, version + 2]
        };
        assert_eq!(won, expected, "round {round}: versions won");
        version = *won.last().expect("someone wins every round");
    }
    println!("{conflicts} of {RACES} rounds ended in a conflict");
    assert!(
        conflicts > 0,
        "no apply ever raced another; the test proves nothing"
    );
    eventually("both replicas to hold the last version", || async {
        let (sa, sb) = (a.status().await, b.status().await);
        (sa.version == version && sb.version == version).then_some(())
    })
    .await;
    a.stop().await;
    b.stop().await;
}

/// With etcd down, applies fail with a clear UNAVAILABLE, status still
/// answers and the data plane keeps serving; once etcd is back on the same
/// data, applies work again and reach the data plane through the other
/// replica's resumed watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_outage_keeps_serving_and_recovers() {
    let Some(mut etcd) = Etcd::start().await else {
        return;
    };
    let mcp = FakeMcp::new("a").start().await;
    let a = ControlPlane::start_with(etcd.replica_settings()).await;
    let b = ControlPlane::start_with(etcd.replica_settings()).await;
    let dp = data_plane_on(&a, &b).await;
    a.apply(&configs::recipe(&[mcp.url()], 0.2, 2))
        .await
        .expect("first apply");
    wait_acked(&a, 1).await;
    // B follows etcd's watch on its own time: both hold version 1 first.
    eventually("replica B to hold version 1", || async {
        (b.status().await.version == 1).then_some(())
    })
    .await;

    etcd.stop().await;
    let err = b
        .apply(&configs::recipe(&[mcp.url()], 0.3, 2))
        .await
        .expect_err("apply without etcd");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(
        err.message()
            .starts_with("config store unavailable (etcd at http://127.0.0.1:"),
        "{}",
        err.message()
    );
    assert_eq!(a.status().await.version, 1);
    assert_eq!(b.status().await.version, 1);
    let out = dp
        .client()
        .await
        .batch("my-mcp-group", "add", json!({"a": 1, "b": 2}), 3)
        .await;
    assert_eq!(out["succeeded"], 3, "{out}");

    etcd.restart().await;
    let yaml = configs::recipe(&[mcp.url()], 0.3, 2);
    // The client reconnects on its own schedule; until then applies say so.
    let applied = eventually("an apply through B to succeed with etcd back", || async {
        b.apply(&yaml).await.ok()
    })
    .await;
    assert_eq!((applied.version, applied.changed), (2, true));
    wait_acked(&a, 2).await;
    dp.stop().await;
    a.stop().await;
    b.stop().await;
}

/// A data plane whose replica is stopped fails over to the other one
/// without failing a call, and gets the next apply from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_fails_over_to_another_replica() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let mcp = FakeMcp::new("a").start().await;
    let a = ControlPlane::start_with(etcd.replica_settings()).await;
    let b = ControlPlane::start_with(etcd.replica_settings()).await;
    let dp = data_plane_on(&a, &b).await;
    a.apply(&configs::recipe(&[mcp.url()], 0.2, 2))
        .await
        .expect("apply through A");
    wait_acked(&a, 1).await;
    assert!(b.status().await.data_planes.is_empty());

    let client = dp.client().await;
    // Calls all through the failover: none may fail.
    let calls = hundred_calls(&client);
    let failover = async {
        a.stop().await;
        wait_acked(&b, 1).await;
    };
    let (succeeded, ()) = tokio::join!(calls, failover);
    assert_eq!(succeeded, 100);
    // Whether from its own stream or from A's last report, B lists it once.
    assert_eq!(b.status().await.data_planes.len(), 1);

    let applied = b
        .apply(&configs::recipe(&[mcp.url()], 0.3, 2))
        .await
        .expect("apply through B");
    assert_eq!(applied.version, 2);
    wait_acked(&b, 2).await;
    dp.stop().await;
    b.stop().await;
}

/// A config key deleted by hand in etcd does not wedge applies: the next
/// apply creates it again with the next version, and data planes get it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_recreates_a_deleted_config_key() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let mcp = FakeMcp::new("a").start().await;
    let a = ControlPlane::start_with(etcd.replica_settings()).await;
    let dp = DataPlane::start(&a.url(), "dp-1").await;
    a.apply(&configs::recipe(&[mcp.url()], 0.2, 2))
        .await
        .expect("first apply");
    wait_acked(&a, 1).await;

    let mut kv = KvClient::connect(etcd.store_url().replace("etcd://", "http://"))
        .await
        .expect("etcd client");
    let key = b"/hangar/config".to_vec();
    let deleted = kv
        .delete_range(DeleteRangeRequest {
            key: key.clone(),
            ..DeleteRangeRequest::default()
        })
        .await
        .expect("delete")
        .into_inner();
    assert_eq!(deleted.deleted, 1);

    let applied = a
        .apply(&configs::recipe(&[mcp.url()], 0.3, 2))
        .await
        .expect("apply after the delete");
    assert_eq!((applied.version, applied.changed), (2, true));
    wait_acked(&a, 2).await;
    let stored = kv
        .range(RangeRequest {
            key,
            ..RangeRequest::default()
        })
        .await
        .expect("get")
        .into_inner();
    let stored: serde_json::Value =
        serde_json::from_slice(&stored.kvs[0].value).expect("stored JSON");
    assert_eq!(stored["version"], 2);
    dp.stop().await;
    a.stop().await;
}

/// Rounds of simultaneous applies in the conflict test.
const RACES: u32 = 20;

/// How many applies [`apply_to_ack`] times.
const ROUNDS: u32 = 10;

/// The median time from an apply through `apply_on` until every data plane
/// of `acked_on` acked it, over [`ROUNDS`] configs.
async fn apply_to_ack(apply_on: &ControlPlane, acked_on: &ControlPlane, url: &str) -> Duration {
    let mut admin = apply_on.admin().await;
    let mut observer = acked_on.admin().await;
    let mut times = Vec::new();
    for round in 0..ROUNDS {
        let yaml = configs::recipe(&[url.to_owned()], 1.0 + f64::from(round), 2);
        let start = Instant::now();
        let version = apply_with(&mut admin, &yaml).await.expect("apply").version;
        let deadline = start + PATIENCE;
        loop {
            let status = observer
                .status(hangar_proto::v1::StatusRequest {})
                .await
                .expect("status")
                .into_inner();
            if status
                .data_planes
                .iter()
                .all(|p| p.acked_version == version)
            {
                break;
            }
            assert!(Instant::now() < deadline, "version {version} never acked");
            // Polling as tightly as the measurement needs; bounded above.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(start.elapsed());
    }
    times.sort_unstable();
    times[times.len() / 2]
}

/// 100 calls through the group in batches of 5, each of which must
/// succeed; returns how many did.
async fn hundred_calls(client: &hangar_tests::data_plane::McpClient) -> usize {
    let mut succeeded = 0;
    for _ in 0..20 {
        let out = client
            .batch("my-mcp-group", "add", json!({"a": 1, "b": 2}), 5)
            .await;
        assert_eq!(out["succeeded"], 5, "{out}");
        succeeded += 5;
    }
    succeeded
}

/// A data plane that follows `a` first and fails over to `b`.
async fn data_plane_on(a: &ControlPlane, b: &ControlPlane) -> DataPlane {
    DataPlane::start_with(hangar_data_plane::Settings {
        control_planes: vec![a.url(), b.url()],
        ..hangar_data_plane::Settings::new(a.url(), "dp-1")
    })
    .await
}

/// Waits until `cp` has a data plane and every one of its data planes acked `version`.
async fn wait_acked(cp: &ControlPlane, version: u64) {
    eventually(
        &format!("the data plane to ack version {version}"),
        || async {
            let planes = cp.status().await.data_planes;
            (!planes.is_empty() && planes.iter().all(|p| p.acked_version == version)).then_some(())
        },
    )
    .await;
}

async fn apply_with(
    admin: &mut AdminServiceClient<ControlPlaneChannel>,
    yaml: &str,
) -> Result<hangar_proto::v1::ApplyResponse, tonic::Status> {
    let request = ApplyRequest {
        yaml: yaml.to_owned(),
        source_name: "config.yaml".to_owned(),
        allow_empty: false,
    };
    admin.apply(request).await.map(tonic::Response::into_inner)
}

/// Replica processes on etcd: `kill -9` of the replica a data plane follows
/// while calls run through it fails no call; the data plane is on the other
/// replica (connected, on the same version) soon after, and the time that
/// takes is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_replica_process_fails_no_call() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let mcp = FakeMcp::new("a").start().await;
    let replica = |port: u16| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hangar-control-plane"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--store", &etcd.store_url()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn a replica")
    };
    let (port_a, port_b) = (hangar_tests::free_port(), hangar_tests::free_port());
    let mut process_a = replica(port_a);
    let _process_b = replica(port_b);
    let (url_a, url_b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    let admin = |url: String| async move {
        eventually(&format!("a replica at {url}"), || async {
            let channel = hangar_proto::client::connect(&url, &Default::default())
                .await
                .ok()?;
            Some(AdminServiceClient::new(channel))
        })
        .await
    };
    let (mut admin_a, mut admin_b) = (admin(url_a.clone()).await, admin(url_b.clone()).await);
    let dp = DataPlane::start_with(hangar_data_plane::Settings {
        control_planes: vec![url_a.clone(), url_b.clone()],
        ..hangar_data_plane::Settings::new(url_a.clone(), "dp-1")
    })
    .await;
    let request = ApplyRequest {
        yaml: configs::recipe(&[mcp.url()], 0.2, 2),
        source_name: "config.yaml".into(),
        allow_empty: false,
    };
    admin_a.apply(request).await.expect("apply through A");
    let connected_on = |admin: AdminServiceClient<ControlPlaneChannel>| async move {
        let mut admin = admin;
        let status = admin.status(StatusRequest {}).await.ok()?.into_inner();
        status
            .data_planes
            .iter()
            .any(|p| p.node_id == "dp-1" && p.state == "connected" && p.acked_version == 1)
            .then_some(())
    };
    eventually("the data plane on A", || connected_on(admin_a.clone())).await;

    let client = dp.client().await;
    let calls = hundred_calls(&client);
    let failover = async {
        process_a.start_kill().expect("kill -9 replica A");
        let killed = Instant::now();
        let _ = process_a.wait().await;
        eventually("the data plane on B", || connected_on(admin_b.clone())).await;
        killed.elapsed()
    };
    let (succeeded, took) = tokio::join!(calls, failover);
    assert_eq!(succeeded, 100);
    println!("failover after kill -9: the data plane was connected to replica B {took:?} later");
    let request = ApplyRequest {
        yaml: configs::recipe(&[mcp.url()], 0.3, 2),
        source_name: "config.yaml".into(),
        allow_empty: false,
    };
    assert_eq!(
        admin_b
            .apply(request)
            .await
            .expect("apply through B")
            .into_inner()
            .version,
        2
    );
    dp.stop().await;
}

/// A fleet budget with two replicas, each with a data plane of its own:
/// each replica divides it over the data planes of both (it hears of the
/// other's through etcd), so each data plane runs on half, not all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_divide_a_fleet_budget_over_every_replicas_data_planes() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let mcp = FakeMcp::new("a").start().await;
    let a = ControlPlane::start_with(etcd.replica_settings()).await;
    let b = ControlPlane::start_with(etcd.replica_settings()).await;
    let on_a = DataPlane::start(&a.url(), "dp-a").await;
    let on_b = DataPlane::start(&b.url(), "dp-b").await;
    let yaml = format!(
        "rate_limit: {{rps: 40, burst: 40}}\n{}",
        configs::recipe(&[mcp.url()], 0.2, 2)
    );
    a.apply(&yaml).await.expect("apply");
    for (replica, node) in [(&a, "dp-a"), (&b, "dp-b")] {
        eventually("each data plane runs on half the budget", || async {
            let status = replica.status().await;
            let limit = status.limits.iter().find(|l| l.limit == "all")?;
            let mine = limit.data_planes.iter().find(|p| p.node_id == node)?;
            let shares: f64 = limit.data_planes.iter().map(|p| p.share_rps).sum();
            (limit.data_planes.len() == 2
                && (mine.share_rps - 20.0).abs() < 0.01
                && (shares - 40.0).abs() < 0.01)
                .then_some(())
        })
        .await;
    }
    on_a.stop().await;
    on_b.stop().await;
    a.stop().await;
    b.stop().await;
}

/// Replicas share one session key through etcd: a session a data plane of
/// one replica sealed routes through a data plane of the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_session_key() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let mcp = FakeMcp::new("a").start().await;
    let a = ControlPlane::start_with(etcd.replica_settings()).await;
    let b = ControlPlane::start_with(etcd.replica_settings()).await;
    let on_a = DataPlane::start(&a.url(), "dp-a").await;
    let on_b = DataPlane::start(&b.url(), "dp-b").await;
    a.apply(&configs::recipe(&[mcp.url()], 0.2, 2))
        .await
        .expect("apply");
    wait_acked(&a, 1).await;
    wait_acked(&b, 1).await;
    let raw = |dp: &DataPlane| hangar_tests::raw::Raw {
        http: reqwest::Client::new(),
        url: format!("http://{}/groups/my-mcp-group/mcp", dp.addr()),
    };
    let session = raw(&on_a).initialize().await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}}});
    assert_eq!(raw(&on_b).post(Some(&session), call).await.status(), 200);
    on_a.stop().await;
    on_b.stop().await;
    a.stop().await;
    b.stop().await;
}

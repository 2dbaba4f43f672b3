//! The control plane binary keeps its config through `kill -9`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hangar_proto::v1::admin_service_client::AdminServiceClient;
use hangar_proto::v1::{ApplyRequest, StatusRequest};

const CONFIG: &str = "mcp_servers:\n  a:\n    mode: remote\n    endpoint: \"http://127.0.0.1:1\"\n  g:\n    mode: group\n    members:\n      - id: a\n";

/// A control plane process on `port`, killed (SIGKILL) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(port: u16, state_dir: &std::path::Path) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_hangar-control-plane"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
        .arg(state_dir)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn control plane");
    Process(child)
}

/// Connects, retrying while the process starts (bounded, no fixed sleep
/// beyond the short poll interval).
async fn admin(port: u16) -> AdminServiceClient<tonic::transport::Channel> {
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if let Ok(client) = AdminServiceClient::connect(url.clone()).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("control plane did not start on {url}");
}

/// Applied config and its version come back after SIGKILL.
#[tokio::test]
async fn applied_config_survives_kill_9() {
    let state = tempfile::tempdir().unwrap();
    // The binary takes a fixed port: reserve a free one, release it, hand it over.
    let port = hangar_tests::free_port();

    let mut process = start(port, state.path());
    let mut client = admin(port).await;
    for yaml in [
        CONFIG.to_owned(),
        CONFIG.replace("127.0.0.1:1", "127.0.0.1:2"),
    ] {
        let request = ApplyRequest {
            yaml,
            source_name: "config.yaml".into(),
            allow_empty: false,
        };
        client.apply(request).await.expect("apply");
    }
    process.0.kill().expect("SIGKILL");
    process.0.wait().expect("reap");
    drop(client);

    let _process = start(port, state.path());
    let status = admin(port)
        .await
        .status(StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.version, 2);
    assert_eq!(status.servers[0].endpoint, "http://127.0.0.1:2/mcp");
    assert_eq!(status.groups[0].id, "g");
}

/// kill -9 of the control plane while clients call through two data planes:
/// no call fails during the outage, the restarted control plane has the same
/// config and version, both data planes resync, and status is whole again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_planes_ride_out_a_control_plane_crash() {
    use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
    use hangar_tests::data_plane::DataPlane;
    use hangar_tests::eventually::eventually;
    use hangar_tests::fake_mcp::FakeMcp;

    let mut backends = Vec::new();
    for name in ["a", "b", "c"] {
        backends.push(FakeMcp::new(name).start().await);
    }
    let endpoints: Vec<String> = backends.iter().map(|b| b.url()).collect();
    let state = tempfile::tempdir().unwrap();
    let port = hangar_tests::free_port();
    let url = format!("http://127.0.0.1:{port}");

    let mut process = start(port, state.path());
    let request = ApplyRequest {
        yaml: GroupConfig::recipe(&endpoints).yaml(),
        source_name: "config.yaml".into(),
        allow_empty: false,
    };
    assert_eq!(
        admin(port)
            .await
            .apply(request)
            .await
            .expect("apply")
            .into_inner()
            .version,
        1
    );
    let dps = [
        DataPlane::start(&url, "dp-1").await,
        DataPlane::start(&url, "dp-2").await,
    ];
    let acked = |port| async move {
        let status = admin(port)
            .await
            .status(StatusRequest {})
            .await
            .ok()?
            .into_inner();
        let whole = status.data_planes.len() == 2
            && status
                .data_planes
                .iter()
                .all(|p| p.acked_version == 1 && p.state == "connected")
            && status.groups.first().is_some_and(|g| g.state == "ready");
        whole.then_some(status)
    };
    eventually("both data planes to ack", || acked(port)).await;

    let clients = [dps[0].client().await, dps[1].client().await];
    let mut failed = 0;
    for i in 0..150 {
        if i == 50 {
            process.0.kill().expect("SIGKILL");
            process.0.wait().expect("reap");
        }
        if i == 100 {
            process = start(port, state.path());
        }
        let out = clients[i % 2]
            .batch(RECIPE_GROUP, "add", serde_json::json!({"a": 1, "b": 1}), 1)
            .await;
        if out["succeeded"] != 1 {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "calls must not notice the control plane");
    let status = eventually("both data planes to resync and report", || acked(port)).await;
    assert_eq!(status.version, 1);
    assert!(status.servers.iter().all(|s| s.state == "ready"));
    drop(process);
    for dp in dps {
        dp.stop().await;
    }
}

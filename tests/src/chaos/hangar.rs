//! The Hangar under test: the release `hangar-control-plane` and one
//! `hangar-data-plane` (node `dp-1`) from a binary directory, on loopback
//! ports chosen free, and the config applied through the Admin API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use hangar_proto::v1::ApplyRequest;
use hangar_proto::v1::admin_service_client::AdminServiceClient;

use crate::chaos::proc::{Proc, free_port, wait_for};

/// How long a Hangar binary may take to listen after it is started.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// The group every client calls.
pub const GROUP: &str = "chaos-group";

/// The control plane and the data plane, as processes.
#[derive(Debug)]
pub struct Hangar {
    bin_dir: PathBuf,
    log_dir: PathBuf,
    state_dir: PathBuf,
    /// Address of the control plane (kept across its restarts).
    pub cp_addr: SocketAddr,
    /// Address of the data plane (MCP endpoints and `/metrics`).
    pub dp_addr: SocketAddr,
    cp: Option<Proc>,
    dp: Proc,
}

impl Hangar {
    /// Starts both binaries from `bin_dir`, applies `yaml` and returns
    /// once the control plane took it (the caller waits for the data plane
    /// to serve).
    pub async fn start(
        bin_dir: &Path,
        state_dir: &Path,
        log_dir: &Path,
        yaml: &str,
    ) -> anyhow::Result<Self> {
        let cp_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let dp_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let mut hangar = Self {
            bin_dir: bin_dir.to_owned(),
            log_dir: log_dir.to_owned(),
            state_dir: state_dir.to_owned(),
            cp_addr,
            dp_addr,
            cp: None,
            dp: Proc::spawn(
                "hangar-data-plane",
                &bin_dir.join("hangar-data-plane"),
                &[
                    "--control-plane".into(),
                    format!("http://{cp_addr}"),
                    "--node-id".into(),
                    "dp-1".into(),
                    "--listen".into(),
                    dp_addr.to_string(),
                ],
                &log_dir.join("data-plane.log"),
            )?,
        };
        hangar.start_control_plane()?;
        hangar.apply(yaml).await?;
        Ok(hangar)
    }

    fn start_control_plane(&mut self) -> anyhow::Result<()> {
        self.cp = Some(Proc::spawn(
            "hangar-control-plane",
            &self.bin_dir.join("hangar-control-plane"),
            &[
                "--listen".into(),
                self.cp_addr.to_string(),
                "--state-dir".into(),
                self.state_dir.display().to_string(),
            ],
            &self.log_dir.join("control-plane.log"),
        )?);
        Ok(())
    }

    /// The control plane's URL.
    pub fn cp_url(&self) -> String {
        format!("http://{}", self.cp_addr)
    }

    /// The data plane's base URL.
    pub fn dp_url(&self) -> String {
        format!("http://{}", self.dp_addr)
    }

    /// PID of the data plane.
    pub fn dp_pid(&self) -> u32 {
        self.dp.pid()
    }

    /// Applies `yaml` through the Admin API once the control plane listens.
    pub async fn apply(&self, yaml: &str) -> anyhow::Result<()> {
        self.wait_control_plane().await?;
        let mut admin = AdminServiceClient::connect(self.cp_url()).await?;
        admin
            .apply(ApplyRequest {
                yaml: yaml.to_owned(),
                source_name: "chaos.yaml".into(),
                allow_empty: false,
            })
            .await
            .context("apply the config")?;
        Ok(())
    }

    /// Waits until the control plane accepts gRPC connections.
    pub async fn wait_control_plane(&self) -> anyhow::Result<()> {
        let url = self.cp_url();
        wait_for("the control plane to listen", START_PATIENCE, || {
            let url = url.clone();
            async move { AdminServiceClient::connect(url).await.is_ok() }
        })
        .await
    }

    /// SIGKILL of the control plane; the data plane keeps its last config.
    pub async fn kill_control_plane(&mut self) -> anyhow::Result<()> {
        if let Some(mut cp) = self.cp.take() {
            cp.kill().await?;
        }
        Ok(())
    }

    /// Starts the control plane again with the same state dir and address
    /// and waits until it listens.
    pub async fn restart_control_plane(&mut self) -> anyhow::Result<()> {
        self.start_control_plane()?;
        self.wait_control_plane().await
    }

    /// Stops both binaries (SIGKILL by PID) and waits for them.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.kill_control_plane().await?;
        self.dp.kill().await
    }
}

/// The config: one `mode: remote` server per `(id, endpoint)` and a
/// round-robin group over them, in keys the older build accepts too.
pub fn config_yaml(members: &[(String, String)]) -> String {
    let mut yaml = String::from("mcp_servers:\n");
    for (id, endpoint) in members {
        yaml.push_str(&format!(
            "  {id}:\n    mode: remote\n    endpoint: \"{endpoint}\"\n    health_check_interval_s: 2\n    max_consecutive_failures: 3\n"
        ));
    }
    yaml.push_str(&format!(
        "  {GROUP}:\n    mode: group\n    strategy: round_robin\n    min_healthy: 1\n    members:\n"
    ));
    for (id, _) in members {
        yaml.push_str(&format!("      - id: {id}\n"));
    }
    yaml
}

//! The release binaries a bench runs: a control plane and a data plane
//! started as processes from the bench's own directory, a config applied
//! through the Admin API, and a wait until a group serves.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use hangar_proto::v1::ApplyRequest;
use hangar_proto::v1::admin_service_client::AdminServiceClient;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::bench::load::{self, Target};

/// A process the bench started; killed when dropped.
#[derive(Debug)]
pub struct Process(Child);

impl Process {
    /// Its process id (0 once it has been reaped).
    pub fn pid(&self) -> u32 {
        self.0.id().unwrap_or(0)
    }
}

/// A loopback address with a port free right now.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Starts `bin` with `args`, logging only warnings.
pub fn spawn(bin: PathBuf, args: &[String]) -> anyhow::Result<Process> {
    let child = Command::new(&bin)
        .args(args)
        .env("HANGAR_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {} (run `cargo build --release --bins`)",
                bin.display()
            )
        })?;
    Ok(Process(child))
}

/// Starts a data plane `node_id` on `addr` following `cp_url`, with
/// `extra` arguments.
fn data_plane(
    bin_dir: &Path,
    cp_url: &str,
    (node_id, addr): (&str, SocketAddr),
    extra: &[String],
) -> anyhow::Result<Process> {
    let mut args = vec![
        "--control-plane".into(),
        cp_url.to_owned(),
        "--node-id".into(),
        node_id.to_owned(),
        "--listen".into(),
        addr.to_string(),
    ];
    args.extend_from_slice(extra);
    spawn(bin_dir.join("hangar-data-plane"), &args)
}

/// A control plane with its state in `state_dir` and one data plane
/// following it, both from `bin_dir`.
#[derive(Debug)]
pub struct Planes {
    /// The control plane's gRPC URL.
    pub cp_url: String,
    /// Where the data plane serves MCP.
    pub dp_addr: SocketAddr,
    /// The data plane's process.
    pub dp: Process,
    _cp: Process,
}

impl Planes {
    /// Starts both; `dp_args` are added to the data plane's.
    pub fn start(bin_dir: &Path, state_dir: &Path, dp_args: &[String]) -> anyhow::Result<Self> {
        let (cp_addr, dp_addr) = (free_addr()?, free_addr()?);
        let cp = spawn(
            bin_dir.join("hangar-control-plane"),
            &[
                "--listen".into(),
                cp_addr.to_string(),
                "--state-dir".into(),
                state_dir.display().to_string(),
            ],
        )?;
        let cp_url = format!("http://{cp_addr}");
        let dp = data_plane(bin_dir, &cp_url, ("bench", dp_addr), dp_args)?;
        Ok(Self {
            cp_url,
            dp_addr,
            dp,
            _cp: cp,
        })
    }

    /// Starts another data plane, `node_id`, following the same control
    /// plane with `dp_args` added; returns where it serves MCP.
    pub fn add_data_plane(
        &self,
        bin_dir: &Path,
        node_id: &str,
        dp_args: &[String],
    ) -> anyhow::Result<(SocketAddr, Process)> {
        let addr = free_addr()?;
        let dp = data_plane(bin_dir, &self.cp_url, (node_id, addr), dp_args)?;
        Ok((addr, dp))
    }

    /// The URL of `group`'s transparent endpoint.
    pub fn group_url(&self, group: &str) -> String {
        format!("http://{}/groups/{group}/mcp", self.dp_addr)
    }

    /// Applies `yaml` once the control plane answers.
    pub async fn apply(&self, yaml: &str) -> anyhow::Result<()> {
        for _ in 0..200 {
            if let Ok(mut admin) = AdminServiceClient::connect(self.cp_url.clone()).await {
                admin
                    .apply(ApplyRequest {
                        yaml: yaml.to_owned(),
                        source_name: "bench.yaml".into(),
                        allow_empty: false,
                    })
                    .await?;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("control plane did not start")
    }

    /// Waits until a call of `add` through `group` succeeds.
    pub async fn wait_until_served(&self, group: &str) -> anyhow::Result<()> {
        wait_until_serves(&self.group_url(group)).await
    }
}

/// Waits until a call of `add` through the group endpoint `url` succeeds.
pub async fn wait_until_serves(url: &str) -> anyhow::Result<()> {
    let probe = Target::tool("probe", url, "add", json!({"a": 1, "b": 1}));
    for _ in 0..200 {
        if load::run(&probe, 1, Duration::from_millis(20)).await.ok > 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the data plane never served the group")
}

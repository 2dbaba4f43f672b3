//! One member: `examples/python/server.py` on the official MCP Python SDK,
//! in its default stateful Streamable HTTP mode, on a port fixed for the
//! whole run so that a restarted member comes back at the address the
//! config names.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::chaos::proc::{Proc, free_port, wait_for};
use crate::python_sdk;

/// How long a member may take to answer `/healthz` after it is started
/// (importing the SDK alone takes about a second).
const START_PATIENCE: Duration = Duration::from_secs(30);

/// A member process that faults can kill, stop and restart.
#[derive(Debug)]
pub struct Member {
    /// Server id in the config, also the `--name` it runs with.
    pub id: String,
    port: u16,
    log: PathBuf,
    proc: Option<Proc>,
    http: reqwest::Client,
}

impl Member {
    /// Starts member `id` on a free port, logging to `log_dir/ID.log`, and
    /// waits until it answers `/healthz`.
    pub async fn start(id: &str, log_dir: &std::path::Path) -> anyhow::Result<Self> {
        let mut member = Self {
            id: id.to_owned(),
            port: free_port()?,
            log: log_dir.join(format!("{id}.log")),
            proc: None,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(2))
                .build()?,
        };
        member.spawn(0)?;
        member.wait_ready().await?;
        Ok(member)
    }

    /// The MCP endpoint the config names.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// The running process.
    pub fn proc(&self) -> anyhow::Result<&Proc> {
        self.proc.as_ref().context("member not running")
    }

    /// Starts the process on the member's port with `latency_ms` added to
    /// every tool call; does not wait for it (see [`Member::wait_ready`]).
    pub fn spawn(&mut self, latency_ms: u64) -> anyhow::Result<()> {
        let python = python_sdk::python();
        anyhow::ensure!(
            python.exists(),
            "no python with the MCP SDK at {} (run scripts/python-env)",
            python.display()
        );
        let mut args = vec![
            python_sdk::example_server().display().to_string(),
            "--port".into(),
            self.port.to_string(),
            "--name".into(),
            self.id.clone(),
        ];
        if latency_ms > 0 {
            args.extend(["--latency-ms".into(), latency_ms.to_string()]);
        }
        self.proc = Some(Proc::spawn(&self.id, &python, &args, &self.log)?);
        Ok(())
    }

    /// Waits until the member answers `GET /healthz` with 200.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        wait_for(
            &format!("member {} /healthz", self.id),
            START_PATIENCE,
            || {
                let request = self.http.get(&url).send();
                async move { request.await.is_ok_and(|r| r.status().is_success()) }
            },
        )
        .await
    }

    /// SIGKILL, waiting for the process to be gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut proc) = self.proc.take() {
            proc.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM and wait for the exit (the server lets in-flight calls
    /// finish for up to 3 s); SIGKILL if it takes longer than 10 s.
    pub async fn terminate(&mut self) -> anyhow::Result<()> {
        if let Some(mut proc) = self.proc.take() {
            proc.signal("TERM")?;
            if proc.wait_exit(Duration::from_secs(10)).await.is_err() {
                proc.kill().await?;
            }
        }
        Ok(())
    }
}

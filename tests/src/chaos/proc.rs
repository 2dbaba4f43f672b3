//! A child process the bench owns: started with `kill_on_drop`, so that
//! dropping the run (normal end, error, Ctrl-C or SIGTERM) sends SIGKILL to
//! its PID, and signals sent by PID with kill(1) because the workspace
//! forbids the unsafe code kill(2) would take.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// A running child process, killed by PID when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    pid: u32,
    name: String,
}

impl Proc {
    /// Starts `program` with `args`; its stdout and stderr go to
    /// `log` (appended), so a restarted process keeps one log file.
    pub fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        let child = Command::new(program)
            .args(args)
            .env("HANGAR_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let pid = child.id().context("a started child has a pid")?;
        Ok(Self {
            child,
            pid,
            name: name.to_owned(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid.to_string()])
            .status()
            .context("run kill")?;
        if !status.success() {
            bail!("kill -{signal} {} ({}) failed", self.pid, self.name);
        }
        Ok(())
    }

    /// Waits at most `patience` for the process to exit.
    pub async fn wait_exit(&mut self, patience: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(patience, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit within {patience:?}", self.name))??;
        Ok(())
    }

    /// SIGKILL and wait for the exit (a stopped process dies of SIGKILL too).
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.signal("KILL")?;
        self.wait_exit(Duration::from_secs(10)).await
    }
}

/// Polls `check` with a backoff from 10 ms to 200 ms until it is true or
/// `patience` has passed: a readiness wait instead of a fixed sleep.
pub async fn wait_for<F, Fut>(what: &str, patience: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + patience;
    let mut pause = Duration::from_millis(10);
    loop {
        if check().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {patience:?} waiting for {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// A loopback port that was free a moment ago, for a program that must be
/// told its port and is restarted on the same one.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

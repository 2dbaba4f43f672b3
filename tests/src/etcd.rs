//! A real single-member etcd on loopback, for the replicated control plane.
//!
//! The `etcd` binary comes from the system (`apt-get install etcd-server`).
//! Without it, [`Etcd::start`] returns `None` and the test skips with a note,
//! except under `CI=true`, where a missing etcd must fail the run rather
//! than pass it vacuously.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::eventually::eventually;
use crate::{find_on_path, free_port};

/// A running etcd; killed (by its PID) when dropped.
#[derive(Debug)]
pub struct Etcd {
    binary: PathBuf,
    client_port: u16,
    peer_port: u16,
    data: tempfile::TempDir,
    child: Option<Child>,
}

impl Etcd {
    /// Starts etcd on free loopback ports with a fresh data directory and
    /// waits until it answers; `None` (after printing why) when `etcd` is
    /// not installed and this is not CI.
    ///
    /// # Panics
    /// Under `CI=true` when `etcd` is not installed, or when it does not
    /// become healthy.
    pub async fn start() -> Option<Self> {
        let Some(binary) = find_on_path("etcd") else {
            let why = "etcd is not installed (apt-get install etcd-server)";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{why}; CI must run the etcd tests"
            );
            eprintln!("skipping: {why}");
            return None;
        };
        let mut etcd = Self {
            binary,
            client_port: free_port(),
            peer_port: free_port(),
            data: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        etcd.restart().await;
        Some(etcd)
    }

    /// The `--store` URL of the control plane (`etcd://127.0.0.1:PORT`).
    pub fn store_url(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.client_port)
    }

    /// Control-plane settings for a replica on this etcd under `/hangar`.
    pub fn replica_settings(&self) -> hangar_control_plane::Settings {
        let etcd = hangar_control_plane::etcd::EtcdSettings::parse(
            &self.store_url(),
            hangar_control_plane::etcd::EtcdSettings::DEFAULT_PREFIX,
        )
        .expect("a valid store URL");
        hangar_control_plane::Settings::etcd(etcd)
    }

    /// The data directory, kept across [`Etcd::stop`] and [`Etcd::restart`].
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Kills etcd and waits for it to exit; the data directory stays.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill etcd");
        }
    }

    /// Starts etcd (again) on the same ports and data directory and waits
    /// until it is healthy.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(&self.binary)
            .arg("--name=hangar-test")
            .arg(format!(
                "--data-dir={}",
                self.data.path().join("etcd").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=hangar-test={peer}"))
            // zap honours the level; the default logger prints raft chatter.
            .arg("--logger=zap")
            .arg("--log-level=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn etcd");
        self.child = Some(child);
        let health = format!("{client}/health");
        let http = reqwest::Client::new();
        eventually("etcd to become healthy", || async {
            let body = http.get(&health).send().await.ok()?.text().await.ok()?;
            body.contains("\"health\":\"true\"").then_some(())
        })
        .await;
    }
}

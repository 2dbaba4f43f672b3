//! The example server and client on the official MCP Python SDK
//! (`examples/python/server.py` and `client.py`), started as real processes
//! so tests prove interop with the SDK's own server and client stacks.
//!
//! The interpreter is `$HANGAR_PYTHON`, else `.venv/bin/python` at the
//! workspace root (made by `scripts/python-env`, which `scripts/test` runs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::eventually::eventually;

/// Wire modes of the example server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sessions (`Mcp-Session-Id`), SSE answers.
    Stateful,
    /// SDK stateless HTTP: no session id.
    Stateless,
    /// Sessions, `application/json` answers.
    JsonResponse,
}

/// A running example server; the process is killed when this is dropped.
#[derive(Debug)]
pub struct PyBackend {
    name: String,
    mode: Mode,
    addr: SocketAddr,
    child: Option<Child>,
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The interpreter with `examples/python/requirements.txt` installed.
pub fn python() -> PathBuf {
    std::env::var_os("HANGAR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"))
}

/// `examples/python/server.py`.
pub fn example_server() -> PathBuf {
    examples_dir().join("server.py")
}

fn examples_dir() -> PathBuf {
    workspace_root().join("examples/python")
}

impl PyBackend {
    /// Starts a backend named `name` on a free loopback port and waits until it answers.
    pub async fn start(name: &str, mode: Mode) -> Self {
        // The server takes a fixed port: reserve one, release it, hand it over.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let mut backend = Self {
            name: name.to_owned(),
            mode,
            addr,
            child: None,
        };
        backend.restart().await;
        backend
    }

    /// The MCP endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bare `http://host:port` authority, as the recipe writes endpoints.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Kills the process (SIGKILL by PID) and waits for it to exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill backend");
        }
    }

    /// Starts the process again on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        let script = example_server();
        let python = python();
        assert!(
            python.exists(),
            "python with the MCP Python SDK not found at {} (run scripts/python-env, or set HANGAR_PYTHON)",
            python.display()
        );
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .args([
                "--port",
                &self.addr.port().to_string(),
                "--name",
                &self.name,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        match self.mode {
            Mode::Stateful => {}
            Mode::Stateless => {
                cmd.arg("--stateless");
            }
            Mode::JsonResponse => {
                cmd.arg("--json-response");
            }
        }
        self.child = Some(cmd.spawn().expect("spawn python backend"));
        let health = format!("http://{}/healthz", self.addr);
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        eventually("the python backend to answer /healthz", || {
            let request = client.get(&health).send();
            async move {
                request
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(drop)
            }
        })
        .await;
    }
}

/// The Python SDK's client holding one session with `url`
/// (`tests/interop/python/session_client.py`), and its handshake line.
pub async fn session_client(url: &str) -> (crate::conversation::Conversation, serde_json::Value) {
    let mut command = Command::new(python());
    command
        .arg(workspace_root().join("tests/interop/python/session_client.py"))
        .arg(url);
    crate::conversation::Conversation::start(command, "session_client.py").await
}

/// Runs `examples/python/client.py` (official Python SDK client) with `args`.
pub async fn run_client(args: &[&str]) -> crate::process::ClientOutput {
    let mut command = Command::new(python());
    command.arg(examples_dir().join("client.py")).args(args);
    crate::process::run_json_lines(command, "client.py").await
}

/// `n` calls of `tool` with `arguments` to `url`, each on a fresh
/// connection (and so a fresh session), made by `client.py` in `mode`;
/// panics unless every call got a result. One JSON line per call.
pub async fn fresh_calls(
    url: &str,
    mode: &str,
    tool: &str,
    arguments: &str,
    n: usize,
) -> Vec<serde_json::Value> {
    let n = n.to_string();
    let (status, lines, stderr) = run_client(&[
        "--mode", mode, url, "call", tool, arguments, "--n", &n, "--fresh",
    ])
    .await;
    assert!(status.success(), "{mode}: {stderr}");
    lines
}

/// The members that served `lines` of `client.py` (`served_by`), sorted.
pub fn served_by(lines: &[serde_json::Value]) -> Vec<&str> {
    let mut served: Vec<&str> = lines
        .iter()
        .map(|l| l["served_by"].as_str().unwrap_or("?"))
        .collect();
    served.sort_unstable();
    served
}

/// Runs `tests/interop/python/auth_client.py` (official Python SDK client
/// with a credential header) with `args`.
pub async fn run_auth_client(args: &[&str]) -> crate::process::ClientOutput {
    let mut command = Command::new(python());
    command
        .arg(workspace_root().join("tests/interop/python/auth_client.py"))
        .args(args);
    crate::process::run_json_lines(command, "auth_client.py").await
}

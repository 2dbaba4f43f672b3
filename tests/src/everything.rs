//! `@modelcontextprotocol/server-everything` (the MCP project's reference
//! server, pinned in `tests/interop/ts/package.json`) over Streamable HTTP,
//! as a real process: a member we did not write, which answers an unknown
//! session id with 400 as the TypeScript SDK's servers do.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::eventually::eventually;

/// A running server-everything; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Everything {
    port: u16,
    child: Option<Child>,
}

fn entry_point() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("interop/ts/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

impl Everything {
    /// Starts one on a free port and waits until it accepts connections.
    pub async fn start() -> Self {
        let mut server = Self {
            port: crate::free_port(),
            child: None,
        };
        server.restart().await;
        server
    }

    /// The MCP endpoint URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// `kill -9` by PID, and waits for the process to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill server-everything");
        }
    }

    /// Starts the process again on the same port; waits until it accepts
    /// connections.
    pub async fn restart(&mut self) {
        let entry = entry_point();
        assert!(
            entry.exists(),
            "server-everything not installed at {} (run scripts/node-env)",
            entry.display()
        );
        let child = Command::new("node")
            .arg(entry)
            .arg("streamableHttp")
            .env("PORT", self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        eventually("server-everything to accept connections", || {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(addr).await.ok().map(drop) }
        })
        .await;
    }
}

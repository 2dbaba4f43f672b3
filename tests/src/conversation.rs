//! A client program kept running between steps of a test: it holds one MCP
//! session and acts on each line written to its stdin, printing one JSON
//! line per act (`tests/interop/*/session_client.*`), so a test can break
//! the session's member in between calls, as happens to a long-lived IDE
//! or agent session.

use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::eventually::PATIENCE;

/// A running session client; killed when dropped.
#[derive(Debug)]
pub struct Conversation {
    what: String,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Conversation {
    /// Starts `command` and reads its first line (the handshake's).
    pub async fn start(mut command: Command, what: &str) -> (Self, Value) {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let mut conversation = Self {
            what: what.to_owned(),
            child,
            stdin,
            stdout,
        };
        let first = conversation.line().await;
        (conversation, first)
    }

    /// Asks the client for one call; its line.
    pub async fn call(&mut self) -> Value {
        self.stdin
            .write_all(b"call\n")
            .await
            .unwrap_or_else(|e| panic!("{} stopped reading: {e}", self.what));
        self.line().await
    }

    async fn line(&mut self) -> Value {
        let line = tokio::time::timeout(PATIENCE, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("{} printed nothing for {PATIENCE:?}", self.what))
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.what))
            .unwrap_or_else(|| panic!("{} exited", self.what));
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{} printed non-JSON {line:?}: {e}", self.what))
    }

    /// Closes its stdin and waits for it to exit.
    pub async fn finish(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(PATIENCE, self.child.wait()).await;
    }
}

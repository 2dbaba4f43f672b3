//! The three kinds of client, on the wire, and reading their answers.
//!
//! - **legacy**: `initialize` (protocol 2025-06-18) on `/groups/{group}/mcp`,
//!   `notifications/initialized`, then every call with the `Mcp-Session-Id`
//!   the data plane handed out. It never initializes again, as the official
//!   SDK clients do not, so a lost session shows as errors.
//! - **modern**: session-less 2026-07-28 on the same path: the
//!   `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers and the
//!   protocol version and client capabilities in `params._meta`, the shape
//!   the e2e tests send.
//! - **hangar_call**: `initialize` once on `/mcp` (the rmcp endpoint), then
//!   `tools/call` of `hangar_call` with one call to the group.
//!
//! Every request sends `Accept: application/json, text/event-stream`; an
//! answer may be JSON or SSE, and [`Answer`] holds the JSON-RPC response
//! found in either.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::chaos::hangar::GROUP;

/// The revision legacy and `hangar_call` clients speak.
const LEGACY_VERSION: &str = "2025-06-18";
/// The session-less revision.
const MODERN_VERSION: &str = "2026-07-28";
/// Longest a client waits for one answer. Far above the data plane's own
/// timeouts, so what a call came to is the data plane's doing.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Which of the three clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Sessions on `/groups/{group}/mcp`.
    Legacy,
    /// 2026-07-28, no session, on `/groups/{group}/mcp`.
    Modern,
    /// `hangar_call` on `/mcp`.
    HangarCall,
}

impl Kind {
    /// All kinds, in report order.
    pub const ALL: [Kind; 3] = [Kind::Legacy, Kind::Modern, Kind::HangarCall];

    /// Whether the client holds a session that the data plane can lose.
    pub fn has_session(self) -> bool {
        self != Kind::Modern
    }
}

/// What came back for one request.
#[derive(Debug)]
pub enum Answer {
    /// No HTTP answer at all.
    Transport {
        /// The data plane refused the connection (or could not be reached).
        connect: bool,
        /// The client gave up waiting (60 s).
        timeout: bool,
        /// The error, for the report's samples.
        detail: String,
    },
    /// An HTTP answer.
    Http {
        /// The status code.
        status: u16,
        /// The JSON-RPC response in the body (JSON or an SSE `data:` line), if any.
        message: Option<Value>,
        /// The body's start, for the report's samples.
        text: String,
    },
}

/// One client's connection and, for the kinds that have one, its session.
#[derive(Debug)]
pub struct WireClient {
    /// The kind of client.
    pub kind: Kind,
    url: String,
    http: reqwest::Client,
    session: Option<String>,
    /// The `tools/call` params sent each time.
    params: Value,
    next_id: u64,
}

impl WireClient {
    /// A client of `kind` on the data plane at `dp_url` that calls `tool`
    /// with `arguments`; legacy and `hangar_call` clients initialize here.
    pub async fn connect(
        kind: Kind,
        dp_url: &str,
        tool: &str,
        arguments: Value,
    ) -> anyhow::Result<Self> {
        let (url, params) = match kind {
            Kind::Legacy => (
                format!("{dp_url}/groups/{GROUP}/mcp"),
                json!({"name": tool, "arguments": arguments}),
            ),
            Kind::Modern => (
                format!("{dp_url}/groups/{GROUP}/mcp"),
                json!({"name": tool, "arguments": arguments, "_meta": {
                    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                    "io.modelcontextprotocol/clientCapabilities": {}}}),
            ),
            Kind::HangarCall => (
                format!("{dp_url}/mcp"),
                json!({"name": "hangar_call", "arguments": {"calls": [
                    {"mcp_server": GROUP, "tool": tool, "arguments": arguments}]}}),
            ),
        };
        // One keep-alive connection per client, like one busy user.
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .timeout(CALL_TIMEOUT)
            .build()?;
        let mut client = Self {
            kind,
            url,
            http,
            session: None,
            params,
            next_id: 1,
        };
        if kind.has_session() {
            client.initialize().await?;
        }
        Ok(client)
    }

    async fn initialize(&mut self) -> anyhow::Result<()> {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": LEGACY_VERSION, "capabilities": {},
            "clientInfo": {"name": "hangar-chaos-bench", "version": "1"}}});
        let response = self.request(&body, None).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "initialize on {}: HTTP {}",
            self.url,
            response.status()
        );
        self.session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        response.bytes().await?;
        self.session
            .as_ref()
            .context("initialize handed out no Mcp-Session-Id")?;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self
            .request(&note, Some("notifications/initialized"))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "notifications/initialized: HTTP {}",
            response.status()
        );
        Ok(())
    }

    /// One `tools/call`, and what came back.
    pub async fn call(&mut self) -> Answer {
        let id = self.next_id;
        self.next_id += 1;
        let body =
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": self.params});
        let response = match self.request(&body, Some("tools/call")).send().await {
            Ok(response) => response,
            Err(err) => return transport(&err),
        };
        let status = response.status().as_u16();
        let sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let text = match response.text().await {
            Ok(text) => text,
            Err(err) => return transport(&err),
        };
        Answer::Http {
            status,
            message: response_message(&text, sse),
            text: text.chars().take(300).collect(),
        }
    }

    fn request(&self, body: &Value, method: Option<&str>) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        match self.kind {
            Kind::Modern => {
                request = request.header("mcp-protocol-version", MODERN_VERSION);
                if let Some(method) = method {
                    request = request.header("mcp-method", method);
                }
                if let Some(name) = self.params["name"].as_str() {
                    request = request.header("mcp-name", name);
                }
            }
            // initialize goes without the header; later requests carry it.
            _ if self.session.is_some() => {
                request = request.header("mcp-protocol-version", LEGACY_VERSION);
            }
            _ => {}
        }
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        request
    }
}

fn transport(err: &reqwest::Error) -> Answer {
    Answer::Transport {
        connect: err.is_connect(),
        timeout: err.is_timeout(),
        detail: format!("{err:#}"),
    }
}

/// The JSON-RPC response (a message with `result` or `error`) in a body:
/// the whole body as JSON, or the `data:` lines of an SSE stream, where
/// notifications may come before it.
pub fn response_message(text: &str, sse: bool) -> Option<Value> {
    let is_response = |m: &Value| m.get("result").is_some() || m.get("error").is_some();
    if !sse {
        return serde_json::from_str::<Value>(text).ok().filter(is_response);
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(is_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_and_sse() {
        let json = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        assert!(response_message(json, false).is_some());
        let sse = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-1,\"message\":\"x\"}}\n\n";
        assert_eq!(
            response_message(sse, true).unwrap()["error"]["message"],
            "x"
        );
        assert!(response_message("not json", false).is_none());
    }
}

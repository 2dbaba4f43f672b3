//! A raw Streamable HTTP MCP client, for tests that check the wire itself
//! (status codes, headers, session ids) rather than what an SDK makes of it.

use serde_json::{Value, json};

/// A raw Streamable HTTP client, to check the wire itself.
#[derive(Debug)]
pub struct Raw {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The MCP endpoint.
    pub url: String,
}

impl Raw {
    /// POSTs one JSON-RPC message, in `session` if given.
    pub async fn post(&self, session: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send().await.expect("post")
    }

    /// `initialize`; returns the session id the proxy handed out.
    pub async fn initialize(&self) -> String {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
        let response = self.post(None, body).await;
        assert_eq!(response.status(), 200);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let _ = response.bytes().await;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(self.post(Some(&session), note).await.status(), 202);
        session
    }

    /// DELETE: ends `session`.
    pub async fn delete(&self, session: &str) -> reqwest::Response {
        self.http
            .delete(&self.url)
            .header("mcp-session-id", session)
            .send()
            .await
            .expect("an answer to the DELETE")
    }

    /// Opens the session's GET event stream, as SDK clients do.
    pub async fn event_stream(&self, session: &str) -> reqwest::Response {
        self.http
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .expect("an answer to the GET")
    }

    /// `server-everything`'s `get-sum` of 2 and 3 in a session: whether it
    /// was answered 200 with the sum.
    pub async fn get_sum(&self, session: &str) -> bool {
        let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "get-sum", "arguments": {"a": 2, "b": 3}}});
        let answer = self.post(Some(session), call).await;
        answer.status() == 200 && answer.text().await.is_ok_and(|t| t.contains('5'))
    }

    /// `whoami` in a session; returns who served it, or the HTTP status.
    pub async fn whoami(&self, session: &str) -> Result<String, u16> {
        let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}});
        let response = self.post(Some(session), body).await;
        if response.status() != 200 {
            return Err(response.status().as_u16());
        }
        let text = response.text().await.unwrap();
        let data = text
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or(&text)
            .to_owned();
        let message: Value = serde_json::from_str(&data).unwrap();
        Ok(message["result"]["structuredContent"]["served_by"]
            .as_str()
            .unwrap()
            .to_owned())
    }
}

/// A 2026-07-28 `tools/call` of `tool` with `arguments` to `url` (stateless,
/// with the headers that era requires), ready to send.
pub fn modern_call(
    http: &reqwest::Client,
    url: &str,
    id: u64,
    tool: &str,
    arguments: Value,
) -> reqwest::RequestBuilder {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": tool, "arguments": arguments,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    http.post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(body.to_string())
}

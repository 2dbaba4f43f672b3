//! `hangar-data-plane --stdio --group NAME`: one group as a stdio MCP server.
//!
//! Each line on stdin is one JSON-RPC message; it is sent through the same
//! routing as `/groups/{group}/mcp` (session stickiness included: the
//! session id minted at `initialize` is kept here, as an HTTP client would
//! keep it), and every message of the answer (progress, server requests,
//! the response) is written to stdout as one line, as it arrives. Requests
//! run concurrently, so a slow tool call does not hold up the next line;
//! `initialize` is finished before the next line is read.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method};
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::groups::{self, ClientRequest, SESSION};
use crate::route::table::Routes;
use crate::server::guard::Peek;

/// Messages waiting for stdout.
const OUT_BUFFER: usize = 64;
/// How long the first message waits for the first snapshot.
const FIRST_CONFIG_PATIENCE: Duration = Duration::from_secs(5);

/// What the adapter remembers between lines: the session, as a client would.
#[derive(Debug, Default)]
struct Session {
    id: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
}

/// Serves `group` over stdin/stdout until stdin closes or `shutdown`.
pub(crate) async fn serve(
    routes: Arc<Routes>,
    group: String,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (out, mut out_rx) = mpsc::channel::<String>(OUT_BUFFER);
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(mut line) = out_rx.recv().await {
            line.push('\n');
            stdout.write_all(line.as_bytes()).await?;
            stdout.flush().await?;
        }
        Ok::<(), std::io::Error>(())
    });
    routes.load_when_configured(FIRST_CONFIG_PATIENCE).await;
    let session = Arc::new(Mutex::new(Session::default()));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            () = shutdown.cancelled() => break,
        };
        let Some(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let exchange = exchange(
            routes.clone(),
            group.clone(),
            session.clone(),
            line,
            out.clone(),
        );
        if exchange.is_initialize {
            exchange.run().await;
        } else {
            tasks.spawn(exchange.run());
        }
    }
    // Let answers in flight finish before stdout closes.
    while tasks.join_next().await.is_some() {}
    drop(out);
    writer.await.map_err(std::io::Error::other)?
}

/// One line and where its answer goes.
struct Exchange {
    routes: Arc<Routes>,
    group: String,
    session: Arc<Mutex<Session>>,
    message: Result<Value, String>,
    line: String,
    out: mpsc::Sender<String>,
    is_initialize: bool,
}

fn exchange(
    routes: Arc<Routes>,
    group: String,
    session: Arc<Mutex<Session>>,
    line: String,
    out: mpsc::Sender<String>,
) -> Exchange {
    let message = serde_json::from_str::<Value>(&line).map_err(|e| e.to_string());
    let is_initialize = message
        .as_ref()
        .is_ok_and(|m| m.get("method").and_then(Value::as_str) == Some("initialize"));
    Exchange {
        routes,
        group,
        session,
        message,
        line,
        out,
        is_initialize,
    }
}

impl Exchange {
    async fn run(self) {
        let message = match self.message {
            Ok(message) => message,
            Err(e) => {
                let error = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("parse error: {e}")}});
                let _ = self.out.send(error.to_string()).await;
                return;
            }
        };
        let id = message.get("id").cloned();
        let request = ClientRequest {
            method: Method::POST,
            headers: headers_for(&message, &self.session.lock()),
            body: Bytes::from(self.line),
            peek: Peek::of(&message),
        };
        let response = groups::route(&self.routes, &self.group, request).await;
        if self.is_initialize {
            remember_session(&self.session, response.headers());
        }
        let status = response.status();
        let sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut body = response.into_body().into_data_stream();
        let mut events = Events::new(sse);
        let mut wrote = false;
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            for message in events.push(&chunk) {
                if self.is_initialize {
                    remember_version(&self.session, &message);
                }
                wrote = true;
                if self.out.send(message.to_string()).await.is_err() {
                    return;
                }
            }
        }
        if !wrote && !status.is_success() {
            // An HTTP-level refusal without a JSON-RPC body still answers the request.
            if let Some(id) = id {
                let error = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": format!("group answered HTTP {status}")}});
                let _ = self.out.send(error.to_string()).await;
            }
        }
    }
}

/// The headers an HTTP client would send with `message` in `session`.
fn headers_for(message: &Value, session: &Session) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "accept",
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let modern_version = message
        .pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")
        .and_then(Value::as_str)
        .and_then(|v| HeaderValue::from_str(v).ok());
    if let Some(version) = modern_version {
        // 2026-07-28: the mirror headers are derived from the body, so they match.
        headers.insert("mcp-protocol-version", version);
        let method = message.get("method").and_then(Value::as_str);
        if let Some(method) = method.and_then(|m| HeaderValue::from_str(m).ok()) {
            headers.insert("mcp-method", method);
        }
        let name = message
            .pointer("/params/name")
            .or_else(|| message.pointer("/params/uri"))
            .and_then(Value::as_str)
            .and_then(|n| HeaderValue::from_str(n).ok());
        if let Some(name) = name {
            headers.insert("mcp-name", name);
        }
        return headers;
    }
    if let Some(id) = &session.id {
        headers.insert(SESSION, id.clone());
    }
    if let Some(version) = &session.protocol_version {
        headers.insert("mcp-protocol-version", version.clone());
    }
    headers
}

fn remember_session(session: &Mutex<Session>, headers: &HeaderMap) {
    session.lock().id = headers.get(SESSION).cloned();
}

fn remember_version(session: &Mutex<Session>, message: &Value) {
    let version = message
        .pointer("/result/protocolVersion")
        .and_then(Value::as_str)
        .and_then(|v| HeaderValue::from_str(v).ok());
    if version.is_some() {
        session.lock().protocol_version = version;
    }
}

/// Splits an answer body into JSON-RPC messages: SSE events' data, or a
/// plain JSON body once it is complete.
#[derive(Debug)]
struct Events {
    buffer: String,
    sse: bool,
}

impl Events {
    fn new(sse: bool) -> Self {
        Self {
            buffer: String::new(),
            sse,
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Vec<Value> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        if !self.sse {
            // A JSON body: complete when it parses.
            return match serde_json::from_str::<Value>(self.buffer.trim()) {
                Ok(message) => {
                    self.buffer.clear();
                    vec![message]
                }
                Err(_) => Vec::new(),
            };
        }
        let mut messages = Vec::new();
        let normalized = self.buffer.replace("\r\n", "\n");
        let mut rest = normalized.as_str();
        while let Some(end) = rest.find("\n\n") {
            let (event, tail) = rest.split_at(end + 2);
            rest = tail;
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if let Ok(message) = serde_json::from_str::<Value>(&data.join("\n")) {
                messages.push(message);
            }
        }
        self.buffer = rest.to_owned();
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events split across chunks come out whole, in order; priming events
    /// and comments are dropped; a JSON body comes out once complete.
    #[test]
    fn events_across_chunks() {
        let mut events = Events::new(true);
        assert!(
            events
                .push(b"id: 0\ndata:\n\nevent: message\ndata: {\"a\"")
                .is_empty()
        );
        assert_eq!(
            events.push(b":1}\n\n: ping\n\ndata: {\"b\":2}\r\n\r\n"),
            [json!({"a": 1}), json!({"b": 2})]
        );
        let mut json_body = Events::new(false);
        assert!(json_body.push(b"{\"jsonrpc\":").is_empty());
        assert_eq!(json_body.push(b"\"2.0\"}"), [json!({"jsonrpc": "2.0"})]);
    }
}

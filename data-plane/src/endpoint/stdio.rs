//! `hangar-data-plane --stdio --group NAME`: one group as a stdio MCP server.
//!
//! Each line on stdin is one JSON-RPC message; it is sent through the same
//! routing as `/groups/{group}/mcp` (session stickiness included: the
//! session id minted at `initialize` is kept here, as an HTTP client would
//! keep it), and every message of the answer (progress, server requests,
//! the response) is written to stdout as one line, as it arrives. Requests
//! run concurrently, so a slow tool call does not hold up the next line;
//! `initialize` is finished before the next line is read. Once the client
//! has sent `notifications/initialized`, the session's event stream is
//! followed too (`listen`), so what the member sends outside requests
//! reaches the client as it would over HTTP.
//!
//! # Layout
//! - `session`: the session id and version kept, and the headers they give;
//! - `split`: an answer body into JSON-RPC messages;
//! - `listen`: the session's event stream.

mod listen;
mod session;
mod split;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::Method;
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::session::{Session, headers_for, remember_session, remember_version};
use self::split::Events;
use super::groups::{self, ClientRequest};
use crate::route::table::Routes;
use crate::server::guard::Peek;

/// Messages waiting for stdout.
const OUT_BUFFER: usize = 64;
/// How long the first message waits for the first snapshot.
const FIRST_CONFIG_PATIENCE: Duration = Duration::from_secs(5);

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
    // The session's event stream, once the client is initialized.
    let mut listening = false;
    let stop_listening = shutdown.child_token();
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
        let initialized = exchange.is_method("notifications/initialized");
        if exchange.is_initialize {
            exchange.run().await;
        } else {
            tasks.spawn(exchange.run());
        }
        if initialized && !listening {
            listening = true;
            let follow = listen::follow(
                routes.clone(),
                group.clone(),
                session.clone(),
                out.clone(),
                stop_listening.clone(),
            );
            tasks.spawn(follow);
        }
    }
    stop_listening.cancel();
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
    /// Whether the line is a message with `method`.
    fn is_method(&self, method: &str) -> bool {
        self.message
            .as_ref()
            .is_ok_and(|m| m.get("method").and_then(Value::as_str) == Some(method))
    }

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
            caller: crate::server::caller::stdio(),
            who: crate::route::access::Who::Local,
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

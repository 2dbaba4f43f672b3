//! What the handlers of the fake server share: the state that outlives
//! restarts, and one run of it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use http::HeaderValue;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::protocol::ServerInfo;
use super::tls;

/// What the handlers of one run share: the server state and the run's stop
/// token (long tool calls end when it fires).
#[derive(Debug)]
pub(super) struct Run {
    pub(super) shared: Arc<Shared>,
    pub(super) stop: CancellationToken,
}

/// State that outlives restarts: configuration, pre-rendered constant results,
/// sessions and counters.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) name: String,
    pub(super) stateless: bool,
    pub(super) json_response: bool,
    /// Added to every tool call but `whoami`, in nanoseconds; may change
    /// while serving.
    pub(super) latency_nanos: std::sync::atomic::AtomicU64,
    pub(super) addr: SocketAddr,
    pub(super) server_info: ServerInfo,
    /// `tools/list` result object.
    pub(super) tools_list: Vec<u8>,
    /// `server/discover` result object.
    pub(super) discover: Vec<u8>,
    /// Members appended to every modern result.
    pub(super) modern_members: Vec<u8>,
    /// Members appended to a modern `tools/list` result (cache hints too).
    pub(super) modern_list_members: Vec<u8>,
    pub(super) sessions: Mutex<HashSet<String>>,
    pub(super) calls: AtomicU64,
    pub(super) in_flight: AtomicU64,
    /// `Bearer <token>` that `/mcp` requires, if any.
    pub(super) bearer: Option<HeaderValue>,
    pub(super) unauthorized: AtomicU64,
    pub(super) tls: Option<tls::Acceptor>,
    /// Every `tools/call` is answered with HTTP 500 (after it was received).
    pub(super) fail_calls: bool,
    /// SSE answers stay open after their event until the server stops.
    pub(super) hold_streams_open: bool,
    /// The `traceparent` of the last requests that carried one, oldest
    /// first (at most [`TRACEPARENTS_KEPT`]).
    pub(super) traceparents: Mutex<std::collections::VecDeque<String>>,
    /// The same, of `params._meta.traceparent` (MCP's carrier).
    pub(super) meta_traceparents: Mutex<std::collections::VecDeque<String>>,
}

/// How many `traceparent` headers a fake server keeps.
pub(super) const TRACEPARENTS_KEPT: usize = 64;

impl Shared {
    /// Mints a session id (32 hex digits, like the Python SDK's `uuid4().hex`).
    pub(super) fn open_session(&self) -> HeaderValue {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let header = HeaderValue::from_str(&id).expect("hex digits are a valid header value");
        self.sessions.lock().insert(id);
        header
    }

    pub(super) fn has_session(&self, id: &HeaderValue) -> bool {
        id.to_str()
            .is_ok_and(|id| self.sessions.lock().contains(id))
    }

    /// Keeps the `traceparent` a request came with, in its header and in
    /// its `params._meta`.
    pub(super) fn note_traceparent(&self, headers: &http::HeaderMap, body: &[u8]) {
        let keep = |kept: &Mutex<std::collections::VecDeque<String>>, value: &str| {
            let mut kept = kept.lock();
            if kept.len() == TRACEPARENTS_KEPT {
                kept.pop_front();
            }
            kept.push_back(value.to_owned());
        };
        if let Some(value) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
            keep(&self.traceparents, value);
        }
        // A cheap look first: most messages carry none.
        if body.windows(11).any(|w| w == b"traceparent")
            && let Ok(message) = serde_json::from_slice::<serde_json::Value>(body)
            && let Some(value) = message["params"]["_meta"]["traceparent"].as_str()
        {
            keep(&self.meta_traceparents, value);
        }
    }

    /// Ends a session; false if it was unknown.
    pub(super) fn close_session(&self, id: &HeaderValue) -> bool {
        id.to_str().is_ok_and(|id| self.sessions.lock().remove(id))
    }
}

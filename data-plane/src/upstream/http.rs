//! An MCP client for one remote member, over Streamable HTTP.
//!
//! One `HttpUpstream` per member shares a warm keep-alive connection pool
//! (see `clients`) and holds one MCP session, shared by every call and
//! probe, so no call pays for a TCP connect or an `initialize` handshake.
//! The session is made lazily and remade when the member forgets it (HTTP
//! 404 on a session id, e.g. after the member restarted): such a request was
//! not processed, so it is resent once.
//!
//! Legacy members (2024-11-05 … 2025-11-25) get `initialize` +
//! `notifications/initialized` and are probed with `ping`; members that only
//! speak 2026-07-28 are detected from their answer to `initialize`, get
//! per-request `_meta` and mirror headers, and are probed with
//! `server/discover`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::{HeaderValue, StatusCode, Uri};
use serde_json::{Value, json};

use super::activity::Activity;
use super::answer::{
    find_response_in_sse, into_result, is_modern_refusal, rejects_session, status_error,
};
use super::clients::HttpClient;
use super::error::UpstreamError;
use super::tools::{ToolNames, ToolServer};

/// Newest protocol version with sessions, asked for at `initialize`.
pub(super) const LEGACY_VERSION: &str = "2025-11-25";
/// The stateless protocol version.
const MODERN_VERSION: &str = "2026-07-28";

/// The MCP session held with a member.
#[derive(Debug)]
pub(super) struct Session {
    /// `Mcp-Session-Id`, absent for stateless members.
    pub(super) id: Option<HeaderValue>,
    /// Negotiated protocol version, sent as `MCP-Protocol-Version`.
    pub(super) protocol_version: HeaderValue,
    /// True for members that speak only the stateless 2026-07-28 protocol.
    pub(super) modern: bool,
}

/// MCP client of one remote member.
#[derive(Debug)]
pub struct HttpUpstream {
    /// The member's endpoint, for logs.
    pub(super) endpoint: String,
    /// `endpoint` parsed once, not on every request.
    pub(super) uri: Uri,
    pub(super) client: HttpClient,
    /// Configured headers, resolved on this data plane; marked sensitive.
    pub(super) headers: http::HeaderMap,
    /// `read_timeout` of the member's answers, if any.
    pub(super) read_timeout: Option<Duration>,
    /// When the member last sent bytes.
    pub(super) activity: Arc<Activity>,
    session: ArcSwapOption<Session>,
    tools: ToolNames,
    /// Serializes handshakes so a burst of calls makes one session.
    handshake: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
}

// === impl HttpUpstream ===

impl HttpUpstream {
    /// A client of the member at `uri` (`endpoint` as text) over `client`,
    /// adding `headers` to every request.
    pub(super) fn new(
        endpoint: String,
        uri: Uri,
        client: HttpClient,
        headers: http::HeaderMap,
        read_timeout: Option<Duration>,
    ) -> Self {
        Self {
            endpoint,
            uri,
            client,
            headers,
            read_timeout,
            activity: Arc::default(),
            session: ArcSwapOption::empty(),
            tools: ToolNames::default(),
            handshake: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Whether the member keeps no sessions, as its answer to our own
    /// `initialize` showed; `None` before that handshake.
    pub(super) fn is_stateless(&self) -> Option<bool> {
        self.session
            .load()
            .as_ref()
            .map(|s| s.modern || s.id.is_none())
    }

    /// Whether the member marks `tool` read-only or idempotent.
    pub(super) fn retry_safe(&self, tool: &str) -> bool {
        self.tools.retry_safe(tool)
    }

    /// Checks that the member answers MCP: `ping` in the held session, or
    /// `server/discover` for 2026-07-28 members.
    /// A failed probe drops the held session, so the next probe (and call)
    /// starts with a fresh handshake: a member that restarted, or forgot
    /// our session in a way we cannot tell, is back as soon as it answers.
    pub(super) async fn probe(&self, timeout: Duration) -> Result<(), UpstreamError> {
        let result = async {
            let session = self.session(timeout).await?;
            let method = if session.modern {
                "server/discover"
            } else {
                "ping"
            };
            self.request(method, json!({}), timeout).await.map(drop)
        }
        .await;
        if result.is_err() {
            self.session.store(None);
        }
        result
    }

    /// Sends a request in the held session, remaking the session once if the
    /// member no longer knows it.
    async fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let session = self.session(timeout).await?;
        match self.send(&session, method, &params, timeout).await {
            Err(Sent::SessionGone) => {
                // Only drop the session we used; a concurrent call may
                // already have made a new one.
                self.session
                    .compare_and_swap(&Some(session.clone()), None::<Arc<Session>>);
                let session = self.session(timeout).await?;
                self.send(&session, method, &params, timeout)
                    .await
                    .map_err(Sent::into_error)
            }
            other => other.map_err(Sent::into_error),
        }
    }

    /// The held session, made now if there is none.
    async fn session(&self, timeout: Duration) -> Result<Arc<Session>, UpstreamError> {
        if let Some(session) = self.session.load_full() {
            return Ok(session);
        }
        let _guard = self.handshake.lock().await;
        if let Some(session) = self.session.load_full() {
            return Ok(session);
        }
        let session = Arc::new(self.handshake(timeout).await?);
        // A new session may be a restarted member with other tools.
        self.tools.forget();
        self.session.store(Some(session.clone()));
        Ok(session)
    }

    /// `initialize` + `notifications/initialized`, or detection of a
    /// 2026-07-28-only member.
    async fn handshake(&self, timeout: Duration) -> Result<Session, UpstreamError> {
        let bare = Session {
            id: None,
            protocol_version: HeaderValue::from_static(LEGACY_VERSION),
            modern: false,
        };
        let params = json!({
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "hangar-data-plane", "version": env!("CARGO_PKG_VERSION") },
        });
        let (result, session_id) = match self.exchange(&bare, "initialize", &params, timeout).await
        {
            Ok(answer) => answer,
            Err(Sent::Failed(err)) if is_modern_refusal(&err) => {
                return self.discover(timeout).await;
            }
            Err(sent) => return Err(sent.into_error()),
        };
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok())
            .ok_or_else(|| {
                UpstreamError::Protocol("initialize result without protocolVersion".into())
            })?;
        let session = Session {
            id: session_id,
            protocol_version: version,
            modern: false,
        };
        self.notify(&session, "notifications/initialized", timeout)
            .await?;
        tracing::debug!(endpoint = %self.endpoint, stateful = session.id.is_some(), "mcp session opened");
        Ok(session)
    }

    /// Opens a session on this member for a client, with the client's own
    /// `initialize` params (session recovery): `initialize`, then
    /// `notifications/initialized` in the new session. The member's session
    /// id; empty for a member that keeps no sessions.
    pub(super) async fn open_client_session(
        &self,
        params: &Value,
        timeout: Duration,
    ) -> Result<Vec<u8>, UpstreamError> {
        let asked = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok())
            .unwrap_or(HeaderValue::from_static(LEGACY_VERSION));
        let bare = Session {
            id: None,
            protocol_version: asked.clone(),
            modern: false,
        };
        let (result, session_id) = self
            .exchange(&bare, "initialize", params, timeout)
            .await
            .map_err(Sent::into_error)?;
        let negotiated = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok())
            .unwrap_or(asked);
        let session = Session {
            id: session_id,
            protocol_version: negotiated,
            modern: false,
        };
        self.notify(&session, "notifications/initialized", timeout)
            .await?;
        Ok(session
            .id
            .map(|id| id.as_bytes().to_vec())
            .unwrap_or_default())
    }

    /// Confirms a 2026-07-28 member with `server/discover`.
    async fn discover(&self, timeout: Duration) -> Result<Session, UpstreamError> {
        let session = Session {
            id: None,
            protocol_version: HeaderValue::from_static(MODERN_VERSION),
            modern: true,
        };
        self.send(&session, "server/discover", &json!({}), timeout)
            .await
            .map_err(Sent::into_error)?;
        Ok(session)
    }

    async fn notify(
        &self,
        session: &Session,
        method: &str,
        timeout: Duration,
    ) -> Result<(), UpstreamError> {
        let body = json!({ "jsonrpc": "2.0", "method": method });
        let answer = self.post(session, method, None, &body, timeout).await?;
        match answer.status {
            s if s.is_success() => Ok(()),
            status => Err(status_error(status, &answer.body)),
        }
    }

    async fn send(
        &self,
        session: &Session,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, Sent> {
        self.exchange(session, method, params, timeout)
            .await
            .map(|(result, _)| result)
    }

    /// One request/response; also returns the `Mcp-Session-Id` the member set.
    async fn exchange(
        &self,
        session: &Session,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<(Value, Option<HeaderValue>), Sent> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut params = params.clone();
        if session.modern {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                "io.modelcontextprotocol/clientCapabilities": {},
            });
        }
        crate::observe::propagate_in_meta(&mut params);
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let answer = self
            .post(session, method, name.as_deref(), &body, timeout)
            .await?;
        let status = answer.status;
        if session.id.is_some() && rejects_session(status, &answer.body) {
            return Err(Sent::SessionGone);
        }
        if !status.is_success() {
            return Err(Sent::Failed(status_error(status, &answer.body)));
        }
        let session_id = answer.headers.get("mcp-session-id").cloned();
        let is_sse = answer
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let text = String::from_utf8_lossy(&answer.body);
        let answer = if let Some(response) = answer.response {
            response
        } else if is_sse {
            find_response_in_sse(&text, id)?
        } else {
            serde_json::from_str(&text)
                .map_err(|e| UpstreamError::Protocol(format!("response is not json: {e}")))?
        };
        Ok((into_result(answer)?, session_id))
    }
}

/// Outcome of one attempt inside a session.
#[derive(Debug)]
enum Sent {
    /// The member does not know the session: the request was not processed.
    SessionGone,
    /// Any other error.
    Failed(UpstreamError),
}

impl Sent {
    fn into_error(self) -> UpstreamError {
        match self {
            Self::SessionGone => UpstreamError::Rejected {
                status: StatusCode::NOT_FOUND,
                body: "session not found".into(),
            },
            Self::Failed(err) => err,
        }
    }
}

impl From<UpstreamError> for Sent {
    fn from(err: UpstreamError) -> Self {
        Self::Failed(err)
    }
}

impl ToolServer for HttpUpstream {
    fn mcp_request<'a>(
        &'a self,
        method: &'a str,
        params: Value,
        timeout: Duration,
    ) -> impl Future<Output = Result<Value, UpstreamError>> + Send + 'a {
        self.request(method, params, timeout)
    }

    fn tool_names(&self) -> &ToolNames {
        &self.tools
    }
}

//! An MCP client for one member, over Streamable HTTP.
//!
//! One `Upstream` per member keeps a warm keep-alive connection pool and one
//! held MCP session, shared by every call and probe, so no call pays for a
//! TCP connect or an `initialize` handshake. The session is made lazily and
//! remade when the member forgets it (HTTP 404 on a session id, e.g. after the
//! member restarted): such a request was not processed, so it is resent once.
//!
//! Legacy members (2024-11-05 … 2025-11-25) get `initialize` +
//! `notifications/initialized` and are probed with `ping`; members that only
//! speak 2026-07-28 are detected from their answer to `initialize`, get
//! per-request `_meta` and mirror headers, and are probed with
//! `server/discover`.

mod answer;
pub mod clients;
pub mod error;
mod pass;
mod sse;
pub mod stdio;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::HeaderValue;
use reqwest::StatusCode;
use serde_json::{Value, json};

use self::answer::{find_response_in_sse, into_result, is_modern_refusal, status_error};
use self::clients::{ClientPool, Transport};
pub use self::error::UpstreamError;
pub use self::pass::PassedBody;
use self::pass::PlainRoute;
use self::stdio::{ProcessSpec, StdioUpstream};

/// Newest protocol version with sessions, asked for at `initialize`.
const LEGACY_VERSION: &str = "2025-11-25";
/// The stateless protocol version.
const MODERN_VERSION: &str = "2026-07-28";
/// Most `tools/list` pages read from one member.
const MAX_TOOL_PAGES: usize = 100;

/// The MCP session held with a member.
#[derive(Debug)]
struct Session {
    /// `Mcp-Session-Id`, absent for stateless members.
    id: Option<HeaderValue>,
    /// Negotiated protocol version, sent as `MCP-Protocol-Version`.
    protocol_version: HeaderValue,
    /// True for members that speak only the stateless 2026-07-28 protocol.
    modern: bool,
}

/// MCP client of one member.
#[derive(Debug)]
pub struct Upstream {
    endpoint: String,
    /// `endpoint` parsed once, not on every request.
    url: Option<reqwest::Url>,
    /// Client for requests that expect one answer (with the read timeout).
    http: reqwest::Client,
    /// Client for streams that may idle (no read timeout).
    streams: reqwest::Client,
    /// The route of passed-through requests to an `http://` member.
    plain: Option<PlainRoute>,
    /// Configured headers, resolved on this data plane; marked sensitive.
    headers: http::HeaderMap,
    /// `read_timeout` of the member's calls, if any.
    read_timeout: Option<Duration>,
    /// Why this member cannot be called from this data plane (a header's
    /// variable is unset, the CA file is missing), if so.
    unusable: Option<String>,
    /// For a `mode: subprocess` copy: the process that requests go to
    /// instead of `endpoint`.
    stdio: Option<Arc<StdioUpstream>>,
    session: ArcSwapOption<Session>,
    /// Tool names from the member's `tools/list`, fetched with each new
    /// session and again when a call names a tool not in the list.
    tools: ArcSwapOption<HashSet<String>>,
    /// Serializes handshakes so a burst of calls makes one session.
    handshake: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
}

// === impl Upstream ===

impl Upstream {
    /// A client of the member at `endpoint`, sharing `http`'s connection
    /// pools, with no extra headers.
    pub fn new(endpoint: String, http: reqwest::Client) -> Self {
        Self::with_settings(endpoint, http.clone(), http, http::HeaderMap::new(), None)
    }

    /// The client of a remote server of the snapshot: its headers resolved
    /// here, its TLS and timeouts from `pool`. Settings that cannot be used
    /// on this data plane leave a member whose every request fails with the
    /// reason, so it stays out of rotation and says why.
    pub fn remote(server: &hangar_proto::v1::Server, pool: &ClientPool) -> Self {
        let transport = Transport::of(server);
        let clients = pool.get(&transport);
        let headers = clients::resolve_headers(server);
        let unusable = match (&clients, &headers) {
            (Err(reason), _) | (_, Err(reason)) => Some(reason.clone()),
            _ => None,
        };
        let clients = clients.unwrap_or_else(|_| pool.fallback());
        let mut upstream = Self::with_settings(
            server.endpoint.clone(),
            clients.calls,
            clients.streams,
            headers.unwrap_or_default(),
            unusable,
        );
        upstream.plain = PlainRoute::of(&server.endpoint, clients.plain);
        upstream.read_timeout = transport.read_timeout;
        upstream
    }

    /// One copy of a subprocess server of the snapshot, `member_id`, run
    /// by this data plane until `stop` is cancelled. Its environment's
    /// references are resolved here; if one cannot be, no process starts
    /// and every request fails with the reason.
    pub fn subprocess(
        server: &hangar_proto::v1::Server,
        member_id: &str,
        stop: tokio_util::sync::CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
        pool: &ClientPool,
    ) -> Self {
        // Never used to send (requests go to the process); shared, not
        // built per copy.
        let unused = pool.fallback();
        let mut upstream = Self::with_settings(
            format!("subprocess:{member_id}"),
            unused.calls,
            unused.streams,
            http::HeaderMap::new(),
            None,
        );
        let sub = server.subprocess.clone().unwrap_or_default();
        match stdio::resolve_env(&sub.env) {
            Ok(env) => {
                let spec = ProcessSpec {
                    command: sub.command,
                    env,
                    cwd: Some(sub.cwd).filter(|c| !c.is_empty()).map(Into::into),
                };
                upstream.stdio = Some(StdioUpstream::start(
                    spec,
                    member_id.to_owned(),
                    stop,
                    tracker,
                ));
            }
            Err(reason) => upstream.unusable = Some(reason),
        }
        upstream
    }

    /// The process of a subprocess copy, if this is one.
    pub fn stdio(&self) -> Option<&Arc<StdioUpstream>> {
        self.stdio.as_ref()
    }

    fn with_settings(
        endpoint: String,
        http: reqwest::Client,
        streams: reqwest::Client,
        headers: http::HeaderMap,
        unusable: Option<String>,
    ) -> Self {
        Self {
            url: reqwest::Url::parse(&endpoint).ok(),
            endpoint,
            http,
            streams,
            plain: None,
            headers,
            read_timeout: None,
            unusable,
            stdio: None,
            session: ArcSwapOption::empty(),
            tools: ArcSwapOption::empty(),
            handshake: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
        }
    }

    /// The member's MCP endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the member keeps no sessions, as its answer to our own
    /// `initialize` showed; `None` before that handshake.
    pub fn is_stateless(&self) -> Option<bool> {
        if self.stdio.is_some() {
            // One session per process, held by this data plane.
            return Some(false);
        }
        self.session
            .load()
            .as_ref()
            .map(|s| s.modern || s.id.is_none())
    }

    /// Fails when the member's settings cannot be used on this data plane.
    fn check_usable(&self) -> Result<(), UpstreamError> {
        match &self.unusable {
            Some(reason) => Err(UpstreamError::Unusable(reason.clone())),
            None => Ok(()),
        }
    }

    /// Calls a tool; the result is the member's whole `CallToolResult`.
    /// A tool the member does not list is refused without sending the call.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: &Value,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        self.check_tool(name, timeout).await?;
        let params = json!({ "name": name, "arguments": arguments });
        self.request("tools/call", params, timeout).await
    }

    /// Confirms the member lists `name`, refreshing the cached list once
    /// when it does not (tools can be added at run time).
    async fn check_tool(&self, name: &str, timeout: Duration) -> Result<(), UpstreamError> {
        if self.tools.load().as_ref().is_some_and(|t| t.contains(name)) {
            return Ok(());
        }
        let tools = Arc::new(self.list_tool_names(timeout).await?);
        let listed = tools.contains(name);
        self.tools.store(Some(tools));
        if listed {
            Ok(())
        } else {
            Err(UpstreamError::ToolNotFound(name.to_owned()))
        }
    }

    /// Every tool name, following `nextCursor` for at most `MAX_TOOL_PAGES` pages.
    async fn list_tool_names(&self, timeout: Duration) -> Result<HashSet<String>, UpstreamError> {
        let mut names = HashSet::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_TOOL_PAGES {
            let params = match &cursor {
                Some(cursor) => json!({ "cursor": cursor }),
                None => json!({}),
            };
            let page = self.request("tools/list", params, timeout).await?;
            let tools = page.get("tools").and_then(Value::as_array).ok_or_else(|| {
                UpstreamError::Protocol("tools/list result without a tools array".into())
            })?;
            names.extend(
                tools
                    .iter()
                    .filter_map(|t| t.get("name").and_then(Value::as_str))
                    .map(str::to_owned),
            );
            cursor = page
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(names)
    }

    /// Checks that the member answers MCP: `ping` in the held session, or
    /// `server/discover` for 2026-07-28 members.
    pub async fn probe(&self, timeout: Duration) -> Result<(), UpstreamError> {
        self.check_usable()?;
        if let Some(stdio) = &self.stdio {
            return stdio.probe(timeout).await;
        }
        let session = self.session(timeout).await?;
        let method = if session.modern {
            "server/discover"
        } else {
            "ping"
        };
        self.request(method, json!({}), timeout).await.map(drop)
    }

    /// Sends a request in the held session, remaking the session once if the
    /// member no longer knows it.
    async fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        self.check_usable()?;
        if let Some(stdio) = &self.stdio {
            return stdio.request(method, params, timeout).await;
        }
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
        self.tools.store(None);
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
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let started = tokio::time::Instant::now();
        let answer = self
            .post(session, method, name.as_deref(), &body, timeout)
            .await
            .map_err(|e| self.which_timeout(e, started, timeout))?;
        let status = answer.status;
        if status == StatusCode::NOT_FOUND && session.id.is_some() {
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
        let answer = if is_sse {
            find_response_in_sse(&text, id)?
        } else {
            serde_json::from_str(&text)
                .map_err(|e| UpstreamError::Protocol(format!("response is not json: {e}")))?
        };
        Ok((into_result(answer)?, session_id))
    }

    /// A timeout that fired before the call's deadline was the read
    /// timeout: the member went quiet, which says more than "timed out".
    fn which_timeout(
        &self,
        err: UpstreamError,
        started: tokio::time::Instant,
        deadline: Duration,
    ) -> UpstreamError {
        match (err, self.read_timeout) {
            (UpstreamError::Timeout(_), Some(quiet)) if started.elapsed() < deadline => {
                UpstreamError::Quiet(quiet)
            }
            (err, _) => err,
        }
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

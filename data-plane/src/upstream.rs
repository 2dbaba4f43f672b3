//! MCP clients of the members: what this data plane sends a member and how.
//!
//! An [`Upstream`] is one of three things, fixed when the snapshot is
//! applied: a remote member over Streamable HTTP ([`HttpUpstream`], in
//! `http`, sent through the one client stack of `clients`), a copy of a
//! `mode: subprocess` server that this data plane runs ([`StdioUpstream`],
//! in `stdio`), or a member whose settings cannot be used here (a header
//! names an unset variable, the CA file is missing), which fails every
//! request with the reason and so stays out of rotation and says why.

pub mod activity;
pub(crate) mod answer;
pub mod clients;
pub mod error;
pub mod h1;
pub mod http;
mod pass;
mod sse;
pub mod stdio;
mod tls;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use ::http::{Request, Response, Uri};
use bytes::Bytes;
use serde_json::Value;

use self::clients::{ClientPool, Transport};
pub use self::error::UpstreamError;
pub use self::http::HttpUpstream;
pub use self::pass::PassedBody;
use self::stdio::{ProcessSpec, StdioUpstream};
pub use self::tools::ToolList;
use self::tools::ToolServer;

/// MCP client of one member.
#[derive(Debug)]
pub enum Upstream {
    /// A remote member, over Streamable HTTP.
    Http(Box<HttpUpstream>),
    /// A copy of a subprocess server, run by this data plane.
    Stdio(Arc<StdioUpstream>),
    /// A member that cannot be called from this data plane, and why.
    Unusable(String),
}

// === impl Upstream ===

impl Upstream {
    /// The client of a remote server of the snapshot: its headers resolved
    /// here, its TLS settings and connection pool from `pool`.
    pub fn remote(server: &hangar_proto::v1::Server, pool: &ClientPool) -> Self {
        let endpoint = server.endpoint().unwrap_or_default().to_owned();
        let uri = match endpoint.parse::<Uri>() {
            Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => uri,
            // The routing table admits only valid URLs; never reached.
            _ => return Self::Unusable(format!("endpoint '{endpoint}' is not an http(s) URL")),
        };
        let client = pool.get(&Transport::of(server));
        match (client, clients::resolve_headers(server)) {
            (Ok(client), Ok(headers)) => Self::Http(Box::new(HttpUpstream::new(
                endpoint,
                uri,
                client,
                headers,
                clients::read_timeout(server),
            ))),
            (Err(reason), _) | (_, Err(reason)) => Self::Unusable(reason),
        }
    }

    /// One copy of a subprocess server of the snapshot, `member_id`, run
    /// by this data plane (from `start` on) until `stop` is cancelled. Its environment's
    /// references are resolved here; if one cannot be, no process starts.
    pub fn subprocess(
        server: &hangar_proto::v1::Server,
        member_id: &str,
        start: stdio::Start,
        stop: tokio_util::sync::CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let sub = server.subprocess().cloned().unwrap_or_default();
        match stdio::resolve_env(&sub.env) {
            Ok(env) => {
                let spec = ProcessSpec {
                    command: sub.command,
                    env,
                    cwd: Some(sub.cwd).filter(|c| !c.is_empty()).map(Into::into),
                };
                Self::Stdio(StdioUpstream::start(
                    spec,
                    member_id.to_owned(),
                    clients::read_timeout(server),
                    start,
                    stop,
                    tracker,
                ))
            }
            Err(reason) => Self::Unusable(reason),
        }
    }

    /// When the member last sent anything; `None` for an unusable member,
    /// which is never sent a request.
    pub fn activity(&self) -> Option<&activity::Activity> {
        match self {
            Self::Http(http) => Some(&http.activity),
            Self::Stdio(stdio) => Some(stdio.activity()),
            Self::Unusable(_) => None,
        }
    }

    /// The process of a subprocess copy, if this is one.
    pub fn stdio(&self) -> Option<&Arc<StdioUpstream>> {
        match self {
            Self::Stdio(stdio) => Some(stdio),
            _ => None,
        }
    }

    /// Whether the member may take calls before its first probe: a remote
    /// member is assumed up until a probe says otherwise, and so is a copy
    /// that starts on first use (its first call starts it); a copy whose
    /// process is starting now is not, until it answers.
    pub fn ready_at_start(&self) -> bool {
        match self {
            Self::Stdio(stdio) => stdio.awaits_first_start(),
            Self::Http(_) | Self::Unusable(_) => true,
        }
    }

    /// Whether the member keeps no sessions, as its answer to our own
    /// `initialize` showed; `None` before that handshake.
    pub fn is_stateless(&self) -> Option<bool> {
        match self {
            Self::Http(http) => http.is_stateless(),
            // One session per process, held by this data plane.
            Self::Stdio(_) => Some(false),
            Self::Unusable(_) => None,
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
        match self {
            Self::Http(http) => http.call_tool(name, arguments, timeout).await,
            Self::Stdio(stdio) => stdio.call_tool(name, arguments, timeout).await,
            Self::Unusable(reason) => Err(UpstreamError::Unusable(reason.clone())),
        }
    }

    /// Whether the member marks `tool` (in its `tools/list`) `readOnlyHint`
    /// or `idempotentHint`: the only tools a delivered call may be resent for.
    pub fn retry_safe(&self, tool: &str) -> bool {
        match self {
            Self::Http(http) => http.retry_safe(tool),
            Self::Stdio(stdio) => stdio.retry_safe(tool),
            Self::Unusable(_) => false,
        }
    }

    /// The tools the member listed last, if it has been listed since its
    /// session began.
    pub fn tools(&self) -> Option<Arc<ToolList>> {
        match self {
            Self::Http(http) => http.tool_names().current(),
            Self::Stdio(stdio) => stdio.tool_names().current(),
            Self::Unusable(_) => None,
        }
    }

    /// Whether the member lists `tool`, as it last listed its tools; `None`
    /// before it has (cheap: no copy of the list).
    pub fn lists_tool(&self, tool: &str) -> Option<bool> {
        match self {
            Self::Http(http) => http.tool_names().lists(tool),
            Self::Stdio(stdio) => stdio.tool_names().lists(tool),
            Self::Unusable(_) => None,
        }
    }

    /// Lists the member's tools when it has no list yet or the list is
    /// old (see `tools`), for routing calls by tool.
    pub async fn keep_tools_listed(&self, timeout: Duration) -> Result<(), UpstreamError> {
        match self {
            Self::Http(http) => http.tool_names().keep_listed(&**http, timeout).await,
            // Listing would start a process that starts on first use.
            Self::Stdio(stdio) if stdio.awaits_first_start() => Ok(()),
            Self::Stdio(stdio) => stdio.tool_names().keep_listed(&**stdio, timeout).await,
            Self::Unusable(reason) => Err(UpstreamError::Unusable(reason.clone())),
        }
    }

    /// Checks that the member answers MCP (`ping`, or `server/discover` for
    /// 2026-07-28 members).
    pub async fn probe(&self, timeout: Duration) -> Result<(), UpstreamError> {
        match self {
            Self::Http(http) => http.probe(timeout).await,
            Self::Stdio(stdio) => stdio.probe(timeout).await,
            Self::Unusable(reason) => Err(UpstreamError::Unusable(reason.clone())),
        }
    }

    /// Opens a session on this member for a client with the client's own
    /// `initialize` params (session recovery); the member's session id. A
    /// subprocess copy has one session, the data plane's: the client gets
    /// a fresh id for it.
    pub async fn open_client_session(
        &self,
        params: &Value,
        timeout: Duration,
    ) -> Result<Vec<u8>, UpstreamError> {
        match self {
            Self::Http(http) => http.open_client_session(params, timeout).await,
            Self::Stdio(stdio) => match stdio.initialize_result() {
                Some(_) => Ok(uuid::Uuid::new_v4().simple().to_string().into_bytes()),
                None => Err(UpstreamError::Unavailable(
                    "the member process has not finished starting".into(),
                )),
            },
            Self::Unusable(reason) => Err(UpstreamError::Unusable(reason.clone())),
        }
    }

    /// Sends a client's request as it is to a remote member (see
    /// [`HttpUpstream`]); subprocess copies are answered by the caller.
    pub async fn pass(
        &self,
        request: Request<Bytes>,
    ) -> Result<Response<PassedBody>, UpstreamError> {
        match self {
            Self::Http(http) => http.pass(request).await,
            Self::Stdio(_) => Err(UpstreamError::Protocol(
                "a subprocess member is not reachable over HTTP".into(),
            )),
            Self::Unusable(reason) => Err(UpstreamError::Unusable(reason.clone())),
        }
    }
}

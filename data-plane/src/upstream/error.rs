//! Errors of one request to a member, classified the way balancing needs:
//! did the request reach the member (may it be retried elsewhere), and does
//! the error say the member is unhealthy.

use std::time::Duration;

use hangar_runtime::{Rounded, error_chain};

use http::StatusCode;
use serde_json::Value;

/// The HTTP clients' errors, whichever client sent the request.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request to a member did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made: the request was never sent, so another
    /// member may take it.
    #[error("connection failed: {}", root_cause(.0.as_ref()))]
    Connect(#[source] BoxError),
    /// No answer within the deadline; the member may have run the call.
    #[error("timed out after {}", Rounded(*.0))]
    Timeout(Duration),
    /// The member sent nothing for this long in the middle of an answer
    /// (its `read_timeout`); it may have run the call.
    #[error("the member sent nothing for {} (read_timeout)", Rounded(*.0))]
    Quiet(Duration),
    /// The connection broke after the request was sent.
    #[error("transport error: {}", error_chain(.0.as_ref()))]
    Transport(#[source] BoxError),
    /// The member answered with a server error status.
    #[error("member answered HTTP {status}: {body}")]
    ServerError {
        /// The HTTP status (5xx).
        status: StatusCode,
        /// The start of the body, for the operator.
        body: String,
    },
    /// The member refused the request (HTTP 4xx); says nothing about its health.
    #[error("member rejected the request with HTTP {status}: {body}")]
    Rejected {
        /// The HTTP status (4xx).
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// The member's answer is not valid MCP.
    #[error("invalid answer from member: {0}")]
    Protocol(String),
    /// The member's settings cannot be used on this data plane (a header
    /// names an unset variable, the CA file is missing): nothing was sent.
    #[error("member settings unusable on this data plane: {0}")]
    Unusable(String),
    /// The member's `max_concurrency` had no free slot in time: nothing
    /// was sent, and the member is not unwell, only busy.
    #[error("member busy: {0}")]
    Saturated(#[source] crate::route::limit::LimitError),
    /// A rate limit of the member's server refused the call; nothing was
    /// sent.
    #[error("{0}")]
    RateLimited(hangar_rate::Refusal),
    /// The member does not list the tool (checked before sending the call).
    #[error("tool '{0}' is not listed by the member")]
    ToolNotFound(String),
    /// The member's process is not running (starting, restarting, backing
    /// off after a crash): the request was never written, so another member
    /// may take it.
    #[error("member process is not running: {0}")]
    Unavailable(String),
    /// The member's process exited or closed its stdout while the request
    /// was in flight; it may have run the call.
    #[error("member process ended during the request: {0}")]
    Exited(String),
    /// The member had calls outstanding, sent nothing for its stall timeout
    /// and failed the probe that checked on it: why it left rotation.
    #[error("hung: sent nothing for {} with calls outstanding, and a probe failed: {probe}", Rounded(*.stall))]
    Hung {
        /// The member's `stall_timeout`.
        stall: Duration,
        /// How the probe failed.
        probe: Box<UpstreamError>,
    },
    /// The member answered with a JSON-RPC error: an answer, not a failure.
    #[error("json-rpc error {code}: {message}")]
    JsonRpc {
        /// JSON-RPC error code.
        code: i64,
        /// Error message.
        message: String,
        /// Optional error data.
        data: Option<Value>,
    },
}

// === impl UpstreamError ===

impl UpstreamError {
    /// True only when the request never left this data plane, because no
    /// connection could be made, the member's process is not running, its
    /// settings are unusable here, it had no free slot or it does not list
    /// the tool called, so another member may take it. A request that may
    /// have reached the member is never resent: `tools/call` is not
    /// idempotent.
    pub fn may_try_another_member(&self) -> bool {
        matches!(
            self,
            Self::Connect(_)
                | Self::Unusable(_)
                | Self::Saturated(_)
                | Self::RateLimited(_)
                | Self::Unavailable(_)
                | Self::ToolNotFound(_)
        )
    }

    /// True when the member went silent: no answer within the deadline, or
    /// nothing for its read timeout. Busy and hung look alike here; a probe
    /// tells them apart.
    pub fn is_silence(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Quiet(_))
    }

    /// True when the error counts as a failure of the member (transport
    /// errors, 5xx, timeouts, garbage, a process that is not running or
    /// ended mid-request); false for answers and refusals.
    pub fn counts_against_member(&self) -> bool {
        !matches!(
            self,
            Self::JsonRpc { .. }
                | Self::Rejected { .. }
                | Self::ToolNotFound(_)
                | Self::Saturated(_)
                | Self::RateLimited(_)
        )
    }

    /// Builds the error of a request the client could not send, keeping
    /// "never connected" (no TCP connection, no TLS handshake) apart from
    /// "broke after sending".
    pub(crate) fn from_send(err: hyper_util::client::legacy::Error) -> Self {
        if err.is_connect() {
            Self::Connect(err.into())
        } else {
            Self::Transport(err.into())
        }
    }

    /// The same for a request to an `http://` member.
    pub(crate) fn from_h1(err: super::h1::Error) -> Self {
        if err.is_connect() {
            Self::Connect(err.into())
        } else {
            Self::Transport(err.into())
        }
    }

    /// Builds the error of a failed read of an answer's body: the member's
    /// silence ([`UpstreamError::Quiet`]) as it is, anything else as a
    /// transport error.
    pub(crate) fn from_body(err: BoxError) -> Self {
        match err.downcast::<Self>() {
            Ok(ours) => *ours,
            Err(other) => Self::Transport(other),
        }
    }
}

/// An [`UpstreamError`] as an MCP client may see it; see
/// [`UpstreamError::for_client`].
#[derive(Debug, Clone, Copy)]
pub struct ForClient<'a>(&'a UpstreamError);

impl UpstreamError {
    /// The error for MCP clients: what went wrong, without the member's
    /// address or the HTTP client's internals, which name the URL. The full
    /// error ([`Display`](std::fmt::Display)) is for logs and `hangarctl
    /// status`. Answers from the member (JSON-RPC errors) pass unchanged.
    pub fn for_client(&self) -> ForClient<'_> {
        ForClient(self)
    }
}

impl std::fmt::Display for ForClient<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            UpstreamError::Connect(err) => {
                let why =
                    io_kind(err.as_ref()).unwrap_or_else(|| "the member cannot be reached".into());
                write!(f, "connection failed: {why}")
            }
            UpstreamError::Transport(err) => {
                let why = io_kind(err.as_ref())
                    .unwrap_or_else(|| "the connection to the member broke".into());
                write!(f, "transport error: {why}")
            }
            UpstreamError::ServerError { status, .. } => write!(f, "member answered HTTP {status}"),
            UpstreamError::Rejected { status, .. } => {
                write!(f, "member rejected the request with HTTP {status}")
            }
            // Names variables and files of this machine: for operators.
            UpstreamError::Unusable(_) => {
                f.write_str("the member's settings cannot be used on this data plane")
            }
            other => write!(f, "{other}"),
        }
    }
}

/// The kind of the I/O error behind `err`, for the kinds that say something
/// to a client ("connection refused") and carry no address.
fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    use std::io::ErrorKind::{
        BrokenPipe, ConnectionAborted, ConnectionRefused, ConnectionReset, TimedOut, UnexpectedEof,
    };
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            let kind = io.kind();
            let telling = [
                ConnectionRefused,
                ConnectionReset,
                ConnectionAborted,
                BrokenPipe,
                TimedOut,
                UnexpectedEof,
            ];
            return telling.contains(&kind).then(|| kind.to_string());
        }
        cause = err.source();
    }
    None
}

/// The innermost cause: for a failed connect that is the part that says
/// why ("Connection refused (os error 111)"), not the request it was for.
fn root_cause(err: &dyn std::error::Error) -> String {
    let mut cause = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

//! The access log (`--access-log LEVEL`): one structured line per MCP
//! request, written when its answer has been sent, through the process's
//! log output (stderr, text or JSON as `--log-format` says) under the
//! target `hangar::access`. It names who asked what of which group and
//! member, how many attempts it took, the status and the duration, and
//! never arguments or results.

use std::time::Duration;

use tracing::Level;

/// The target of access-log lines, for log filters (`HANGAR_LOG`).
pub(crate) const TARGET: &str = "hangar::access";

/// Where access-log lines go: the log output, at `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessLog {
    level: Level,
}

impl AccessLog {
    /// Lines at `level`.
    pub fn at(level: Level) -> Self {
        Self { level }
    }

    /// The log filter directive that lets the lines through whatever the
    /// rest of the filter says.
    pub fn directive(&self) -> String {
        format!("{TARGET}={}", self.level)
    }

    /// Writes `line`.
    pub(crate) fn write(&self, line: &Line<'_>) {
        macro_rules! line_at {
            ($level:expr) => {
                tracing::event!(
                    target: TARGET,
                    $level,
                    principal = line.principal,
                    client = line.client,
                    route = line.route,
                    http.method = line.http_method,
                    method = line.method,
                    tool = line.tool,
                    group = line.group,
                    member = line.member,
                    attempts = line.attempts,
                    calls = line.calls,
                    status = line.status,
                    outcome = line.outcome,
                    duration_ms = line.duration.as_secs_f64() * 1000.0,
                    session = line.session,
                    trace_id = line.trace_id.as_deref(),
                    "request"
                )
            };
        }
        match self.level {
            Level::ERROR => line_at!(Level::ERROR),
            Level::WARN => line_at!(Level::WARN),
            Level::INFO => line_at!(Level::INFO),
            Level::DEBUG => line_at!(Level::DEBUG),
            Level::TRACE => line_at!(Level::TRACE),
        }
    }
}

/// One line of the access log.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    /// The principal of the client's credential.
    pub(crate) principal: Option<&'a str>,
    /// The client's address.
    pub(crate) client: Option<&'a str>,
    /// `/mcp` or `/groups/{group}/mcp`.
    pub(crate) route: &'static str,
    /// GET, POST or DELETE.
    pub(crate) http_method: &'a str,
    /// The JSON-RPC method.
    pub(crate) method: Option<&'a str>,
    /// The tool of a `tools/call`.
    pub(crate) tool: Option<&'a str>,
    /// The group (of a batch: the groups and servers its calls named).
    pub(crate) group: Option<&'a str>,
    /// The member that served (of a batch: those that took its calls).
    pub(crate) member: Option<&'a str>,
    /// Requests sent to members.
    pub(crate) attempts: u32,
    /// Calls in a `hangar_call` batch.
    pub(crate) calls: Option<u32>,
    /// The HTTP status of the answer.
    pub(crate) status: u16,
    /// How it ended (`hangar.outcome` of its span).
    pub(crate) outcome: &'a str,
    /// From the request's arrival until its answer was sent.
    pub(crate) duration: Duration,
    /// The client's session, hashed.
    pub(crate) session: Option<&'a str>,
    /// The trace the request's span belongs to.
    pub(crate) trace_id: Option<String>,
}

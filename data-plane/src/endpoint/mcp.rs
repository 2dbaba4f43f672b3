//! The rmcp handler that lists and runs `hangar_call`; `refusals` makes
//! its HTTP refusals JSON-RPC errors; `direct` serves the common
//! `hangar_call` without the library's session machinery.

pub(crate) mod direct;
mod library_visits;
pub(crate) mod refusals;

use hangar_rate::CallerKey;

use crate::observe::{self, Scope};
use crate::route::access::{Principal, Who};
use crate::server::caller;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::hangar_call::{self, BatchRequest, Outcome, ValidationFailure};
use super::hangar_status;
use crate::route::table::Routes;

/// Name of the batch tool, as in MCP Hangar.
pub(crate) const HANGAR_CALL: &str = "hangar_call";
/// Name of the local status tool.
pub(crate) const HANGAR_STATUS: &str = "hangar_status";

/// How long a call made before the first snapshot arrived waits for it.
const FIRST_CONFIG_PATIENCE: Duration = Duration::from_secs(5);

/// MCP server of one data plane.
#[derive(Debug, Clone)]
pub struct HangarServer {
    routes: Arc<Routes>,
}

impl HangarServer {
    /// A server answering from `routes`.
    pub fn new(routes: Arc<Routes>) -> Self {
        Self { routes }
    }

    /// The tools, built once: rmcp looks a tool up on every `tools/call`,
    /// and building the JSON schemas each time would sit on the hot path.
    fn tools() -> &'static [Tool] {
        static TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(HangarServer::build_tools);
        &TOOLS
    }

    fn build_tools() -> Vec<Tool> {
        vec![
            Tool::new(
                HANGAR_CALL,
                "Call tools on MCP servers or groups of servers. A group name is balanced across \
                 its healthy members; each result says which member served it.",
                Arc::new(hangar_call::input_schema()),
            ),
            Tool::new(
                HANGAR_STATUS,
                "This data plane's view of its groups and servers: health, rotation and counters.",
                Arc::new(hangar_status::input_schema()),
            ),
        ]
    }
}

/// Runs `batch` (a `hangar_call`'s, or what is wrong with it) for `asker`.
pub(crate) async fn run_hangar_call(
    routes: &Routes,
    batch: Result<BatchRequest, ValidationFailure>,
    (caller, who): (CallerKey, Who),
) -> Outcome {
    let outcome = async {
        let batch = match batch {
            Ok(batch) => batch,
            Err(failure) => return Outcome::Refused(failure),
        };
        let table = routes.load_when_configured(FIRST_CONFIG_PATIENCE).await;
        if let Err(failure) = hangar_call::validate(&batch) {
            return Outcome::Refused(failure);
        }
        Outcome::Ran(hangar_call::run(batch, table, (caller, &who)).await)
    }
    .await;
    if let Some(scope) = Scope::current() {
        outcome.tell(&scope);
    }
    outcome
}

/// A result carrying `value` both as structured content and as JSON text,
/// so clients that ignore `structuredContent` still see it.
fn json_result<T: Serialize>(value: &T, is_error: bool) -> CallToolResult {
    let value = serde_json::to_value(value).expect("tool output always serializes");
    if is_error {
        CallToolResult::structured_error(value)
    } else {
        CallToolResult::structured(value)
    }
}

impl ServerHandler for HangarServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("hangar", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Use hangar_call to call tools on the configured MCP servers and groups.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(Self::tools().to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        Self::tools().iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        match request.name.as_ref() {
            HANGAR_CALL => {
                // Over HTTP the library hands over the request's parts;
                // over stdio there are none, and one client.
                let asker = context
                    .extensions
                    .get::<http::request::Parts>()
                    .map_or_else(
                        || (caller::stdio(), Who::Local),
                        |parts| {
                            let caller = caller::of_request(&parts.headers, &parts.extensions);
                            (caller, Who::of(parts.extensions.get::<Principal>()))
                        },
                    );
                // The request's trace and record, which the front put
                // beside its parts: this runs in the session's task.
                let observed = context
                    .extensions
                    .get::<http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<opentelemetry::Context>())
                    .cloned();
                let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
                let batch = BatchRequest::parse(arguments);
                let run = run_hangar_call(&self.routes, batch, asker);
                let outcome = observe::within(observed, run).await;
                Ok(json_result(&outcome, outcome.is_error()).into())
            }
            HANGAR_STATUS => {
                let status = hangar_status::local_status(&self.routes.load());
                Ok(json_result(&status, false).into())
            }
            other => Err(ErrorData::invalid_params(
                format!("unknown tool '{other}'"),
                None,
            )),
        }
    }
}

/// The Streamable HTTP service for `/mcp`. `allowed_hosts` guards against
/// DNS rebinding: requests whose `Host` is not listed are refused. Bodies
/// up to `max_body_bytes` are read (the guard in front enforces it first).
/// Sessions, their calls and their streams end when `halt` is cancelled.
pub(crate) fn http_service(
    server: HangarServer,
    allowed_hosts: Vec<String>,
    max_body_bytes: usize,
    halt: CancellationToken,
) -> (
    StreamableHttpService<HangarServer, LocalSessionManager>,
    Arc<LocalSessionManager>,
) {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts)
        .with_max_request_body_bytes(max_body_bytes)
        .with_cancellation_token(halt);
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.completed_cache_ttl = COMPLETED_CACHE_TTL;
    let sessions = Arc::new(sessions);
    let service = StreamableHttpService::new(move || Ok(server.clone()), sessions.clone(), config);
    (service, sessions)
}

/// How long the answer of a finished call stays cached for a client that
/// lost its stream and resumes with `Last-Event-ID`. rmcp keeps it 60 s,
/// which at thousands of calls per second holds hundreds of megabytes;
/// clients come back after the 3 s `retry` of the priming event, so 10 s
/// covers a resume and bounds the memory to 10 s of calls.
const COMPLETED_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

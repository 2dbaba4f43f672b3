//! The names of span attributes: OpenTelemetry's semantic conventions for
//! MCP, generative-AI tools, HTTP and networks where they have a name, and
//! `hangar.*` for what only a balancer knows. `docs/observability.md`
//! lists them with their meaning; keep the two together.

/// The JSON-RPC method (`tools/call`, `initialize`, ...).
pub(crate) const MCP_METHOD: &str = "mcp.method.name";
/// The client's MCP session, hashed: the id itself is a credential.
pub(crate) const MCP_SESSION: &str = "mcp.session.id";
/// The `MCP-Protocol-Version` the client sent.
pub(crate) const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
/// The JSON-RPC request id.
pub(crate) const JSONRPC_ID: &str = "jsonrpc.request.id";
/// The tool of a `tools/call`.
pub(crate) const TOOL: &str = "gen_ai.tool.name";
/// `execute_tool` for a `tools/call`.
pub(crate) const OPERATION: &str = "gen_ai.operation.name";
/// The HTTP method of the client's request.
pub(crate) const HTTP_METHOD: &str = "http.request.method";
/// The HTTP status of the answer.
pub(crate) const HTTP_STATUS: &str = "http.response.status_code";
/// The route, with its parameter (`/groups/{group}/mcp`).
pub(crate) const HTTP_ROUTE: &str = "http.route";
/// The client's address.
pub(crate) const CLIENT_ADDRESS: &str = "client.address";
/// What went wrong, when something did.
pub(crate) const ERROR_TYPE: &str = "error.type";

/// The group the request or call went to.
pub(crate) const GROUP: &str = "hangar.group";
/// The server a `hangar_call` named directly instead of a group.
pub(crate) const SERVER: &str = "hangar.server";
/// The member that served (or the last one tried).
pub(crate) const MEMBER: &str = "hangar.member";
/// How many requests went to members (more than one: a failover).
pub(crate) const ATTEMPTS: &str = "hangar.attempts";
/// Which attempt of its request or call this was, from 1.
pub(crate) const ATTEMPT: &str = "hangar.attempt";
/// How the request, call or attempt ended.
pub(crate) const OUTCOME: &str = "hangar.outcome";
/// The principal the client's credential names.
pub(crate) const PRINCIPAL: &str = "hangar.principal";
/// The position of a call in its `hangar_call` batch.
pub(crate) const CALL_INDEX: &str = "hangar.call.index";
/// Calls in a `hangar_call` batch.
pub(crate) const CALLS: &str = "hangar.calls";
/// Calls of a batch that did not succeed.
pub(crate) const CALLS_FAILED: &str = "hangar.calls.failed";

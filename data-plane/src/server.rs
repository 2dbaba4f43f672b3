//! The HTTP side facing MCP clients, before any routing: the listener and its
//! limits, admission and overload refusal, the front that splits the group
//! endpoint from the rest, the guard that checks every JSON-RPC message, and
//! the JSON-RPC errors every refusal is made of.
//!
//! # Layout
//! - [`anonymous`]: beyond loopback, no anonymous MCP clients unless allowed.
//! - [`listener`]: accepting on the bound socket, within [`listener::Limits`]; graceful drain.
//! - [`inbound`]: the HTTP/1.1 loop of a client connection; hyper for requests of any other shape.
//! - [`threads`]: one single-threaded runtime per serving thread, each accepting from the listener.
//! - [`connections`]: open connections: idle ones closed, the idlest shed at the fd limit.
//! - [`overload`]: the caps on calls and event streams in progress; refusals with the request's id.
//! - [`front`]: admission, then `/groups/{group}/mcp` or the axum router.
//! - [`guard`]: Host/Origin ([`host`]), body limits and JSON-RPC checks, reading messages with [`envelope`].
//! - [`host`]: the host and origin of a request, parsed strictly (DNS-rebinding protection).
//! - [`envelope`]: a message's routing facts (`method`, `id`, `params.name`) in one borrowed pass.
//! - [`request_body`]: request bodies read within their size, deadline and the budget of all bodies.
//! - [`body`]: answer bodies that hold a permit until sent.
//! - [`caller`]: who a request's caller is, for per-caller rate limits.
//! - [`client_auth`]: `auth:` API keys and bearer tokens on the MCP endpoints.
//! - [`resource_metadata`]: the OAuth protected resource metadata (RFC 9728) and 401 challenges.
//! - [`jsonrpc`]: error codes and the HTTP answer that carries one.
//! - [`bare_refusal`]: plain-text refusals (a member's, the MCP library's) as JSON-RPC errors.

pub(crate) mod anonymous;
pub(crate) mod bare_refusal;
pub(crate) mod body;
pub(crate) mod caller;
pub(crate) mod client_auth;
pub(crate) mod connections;
pub(crate) mod envelope;
pub(crate) mod front;
pub(crate) mod guard;
pub(crate) mod host;
pub(crate) mod inbound;
pub(crate) mod jsonrpc;
pub(crate) mod listener;
pub(crate) mod overload;
pub(crate) mod request_body;
pub(crate) mod resource_metadata;
pub(crate) mod threads;

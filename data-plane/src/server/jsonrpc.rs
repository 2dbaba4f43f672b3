//! JSON-RPC error codes the data plane sends or reads, and the HTTP answer
//! that carries one. Every refusal on an MCP endpoint is such an answer,
//! with the request's id when it could be read.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The request body is not JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON, but not a request this endpoint serves.
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// No such method, or (from a member) no such tool.
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// A member rejected the arguments.
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// Implementation-defined server error: no member can take the request,
/// the data plane is overloaded, or the member failed.
pub(crate) const SERVER_ERROR: i64 = -32000;
/// 2026-07-28: the `Mcp-Method`/`Mcp-Name` headers do not match the body.
pub(crate) const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: the client lacks a capability the server requires.
pub(crate) const MISSING_CLIENT_CAPABILITY: i64 = -32021;
/// 2026-07-28: the server does not speak the requested protocol version.
pub(crate) const UNSUPPORTED_VERSION: i64 = -32022;

/// A whole JSON-RPC message (a result or an error) as a 200
/// `application/json` answer.
pub(crate) fn json_message(message: &Value) -> Response {
    let content_type = [(header::CONTENT_TYPE, "application/json")];
    (StatusCode::OK, content_type, message.to_string()).into_response()
}

/// An HTTP answer carrying a JSON-RPC error for the request `id`.
pub(crate) fn jsonrpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    });
    let content_type = [(header::CONTENT_TYPE, "application/json")];
    (status, content_type, body.to_string()).into_response()
}

//! `POST /mcp` for the stateless 2026-07-28 revision: no session and no
//! `initialize`; every request carries its version in `params._meta`, mirrored
//! by the `MCP-Protocol-Version`, `Mcp-Method` and (for `tools/call`) `Mcp-Name`
//! headers, which must agree with the body (400 `-32020` otherwise). Answers
//! are always JSON, since the fake server never emits progress.

use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::super::protocol::{Body, MCP_METHOD, MCP_NAME, MODERN_VERSION, Message, code};
use super::super::state::Run;
use super::super::tools;
use super::reply::{accepted, answer, http_error};

pub(super) async fn post(
    run: &Run,
    headers: &HeaderMap,
    version: &HeaderValue,
    body: &[u8],
) -> Response {
    let shared = &*run.shared;
    let mut msg = match Message::parse(body) {
        Ok(msg) => msg,
        Err((code, message)) => {
            return http_error(StatusCode::BAD_REQUEST, None, code, &message, None);
        }
    };
    let id = msg.id.take();
    let Some(method) = msg.method.take() else {
        let message = "Bad Request: clients must not post responses";
        return http_error(
            StatusCode::BAD_REQUEST,
            id.as_ref(),
            code::INVALID_REQUEST,
            message,
            None,
        );
    };
    if let Err((code, message, data)) = check_headers(&msg, &method, headers, version) {
        let status = StatusCode::BAD_REQUEST;
        return http_error(status, id.as_ref(), code, message, data.as_ref());
    }
    let Some(id) = id else {
        return accepted();
    };

    let out = Body::new(false, 256);
    let body = match &*method {
        "server/discover" => out.result(&id, &shared.discover, b""),
        "tools/list" => out.result(&id, &shared.tools_list, &shared.modern_list_members),
        "tools/call" => {
            let args = msg.take_arguments();
            match msg.tool_name() {
                Some(name) => {
                    let result = tools::call(shared, &run.stop, name, args).await;
                    out.result(&id, &result, &shared.modern_members)
                }
                None => out.error(
                    Some(&id),
                    code::INVALID_PARAMS,
                    "Invalid params: missing tool name",
                    None,
                ),
            }
        }
        // `ping`, `initialize` and everything else: removed or unknown in this era.
        _ => {
            let data = Value::String(method.into_owned());
            let (status, code) = (StatusCode::NOT_FOUND, code::METHOD_NOT_FOUND);
            return http_error(status, Some(&id), code, "Method not found", Some(&data));
        }
    };
    answer(body, false, None, None)
}

/// A 400 answer: JSON-RPC code, message and optional data.
type Rejection = (i64, &'static str, Option<Value>);

/// Validates `_meta` and the mirror headers against the body, in the order the
/// Python SDK reports them: missing `_meta` version (`-32602`), unsupported
/// version (`-32022`), then header mismatches (`-32020`).
fn check_headers(
    msg: &Message<'_>,
    method: &str,
    headers: &HeaderMap,
    version: &HeaderValue,
) -> Result<(), Rejection> {
    let Some(requested) = msg.meta_version() else {
        let message =
            "params._meta must be an object carrying 'io.modelcontextprotocol/protocolVersion'";
        return Err((code::INVALID_PARAMS, message, None));
    };
    if requested != MODERN_VERSION {
        let data = json!({"supported": [MODERN_VERSION], "requested": requested});
        let message = "Unsupported protocol version";
        return Err((code::UNSUPPORTED_VERSION, message, Some(data)));
    }
    let mismatch = |what| Err((code::HEADER_MISMATCH, what, None));
    if version.as_bytes() != requested.as_bytes() {
        return mismatch(
            "mcp-protocol-version header does not match the request body's protocol version",
        );
    }
    if header(headers, MCP_METHOD) != Some(method.as_bytes()) {
        return mismatch("mcp-method header does not match the request body's method");
    }
    if method == "tools/call" && header(headers, MCP_NAME) != msg.tool_name().map(str::as_bytes) {
        return mismatch("mcp-name header does not match the request body's 'name' parameter");
    }
    Ok(())
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers.get(name).map(HeaderValue::as_bytes)
}

//! `POST /mcp` for the legacy eras (2024-11-05 … 2025-11-25), checked in the
//! Python SDK's order: unknown session (404), `Accept` (406), `Content-Type`
//! (415), the body (400), then a missing session (400) on a stateful server.

use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::super::protocol::{Body, MCP_SESSION_ID, Message, code, initialize_result};
use super::super::state::Run;
use super::super::tools;
use super::reply::{
    accepted, accepts, answer, http_error, is_json, missing_session, session_not_found,
};

pub(super) async fn post(run: &Run, headers: &HeaderMap, body: &[u8]) -> Response {
    let shared = &*run.shared;
    let session = if shared.stateless {
        None
    } else {
        headers.get(MCP_SESSION_ID)
    };
    if let Some(id) = session
        && !shared.has_session(id)
    {
        return session_not_found();
    }
    if !accepts(headers, shared.json_response) {
        return not_acceptable(shared.json_response);
    }
    if !is_json(headers) {
        let message = "Unsupported Media Type: Content-Type must be application/json";
        return http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            code::INVALID_REQUEST,
            message,
            None,
        );
    }
    let mut msg = match Message::parse(body) {
        Ok(msg) => msg,
        Err((code, message)) => {
            return http_error(StatusCode::BAD_REQUEST, None, code, &message, None);
        }
    };
    let initialize = msg.method.as_deref() == Some("initialize");
    if !shared.stateless && !initialize && session.is_none() {
        return missing_session();
    }
    let (Some(method), Some(id)) = (msg.method.take(), msg.id.take()) else {
        // A notification or a client's response: nothing to answer.
        return accepted();
    };

    let mut session = session.cloned();
    let out = Body::new(!shared.json_response, 256);
    let sse = out.is_sse();
    let body = match &*method {
        "initialize" => {
            if session.is_none() && !shared.stateless {
                session = Some(shared.open_session());
            }
            let requested = msg
                .params
                .as_ref()
                .and_then(|p| p.protocol_version.as_deref());
            out.result(&id, &initialize_result(requested, &shared.server_info), b"")
        }
        "ping" => out.result(&id, b"{}", b""),
        "tools/list" => out.result(&id, &shared.tools_list, b""),
        "tools/call" => {
            let args = msg.take_arguments();
            match msg.tool_name() {
                Some(name) => {
                    out.result(&id, &tools::call(shared, &run.stop, name, args).await, b"")
                }
                None => out.error(
                    Some(&id),
                    code::INVALID_PARAMS,
                    "Invalid params: missing tool name",
                    None,
                ),
            }
        }
        _ => out.error(Some(&id), code::METHOD_NOT_FOUND, "Method not found", None),
    };
    let held = (sse && shared.hold_streams_open).then(|| run.stop.clone());
    answer(body, sse, session, held)
}

fn not_acceptable(json_only: bool) -> Response {
    let message = if json_only {
        "Not Acceptable: Client must accept application/json"
    } else {
        "Not Acceptable: Client must accept both application/json and text/event-stream"
    };
    http_error(
        StatusCode::NOT_ACCEPTABLE,
        None,
        code::INVALID_REQUEST,
        message,
        None,
    )
}

//! The transparent endpoint for subprocess members: a stdio server has one
//! MCP session (ours), so the data plane answers the client's session
//! itself and relays each request to the copy's process.
//!
//! `initialize` is answered from the copy's own answer to ours (its
//! capabilities and server info), with a session id naming the copy, so the
//! session sticks to it like any other. Requests go to the process and
//! their answers come back as one JSON body; notifications from the client
//! are accepted and not relayed (our session already did its handshake),
//! and there is no server-initiated stream (GET is 405).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::forward::{ClientRequest, QUEUE_PATIENCE, SESSION};
use super::session::{LEGACY_VERSIONS, Naming};
use crate::route::member::{Ledger, Member};
use crate::server::jsonrpc::json_message;
use crate::upstream::UpstreamError;
use crate::upstream::stdio::StdioUpstream;

/// The longest a relayed request may take: the transparent endpoint has no
/// per-call deadline, and a process that never answers must not hold the
/// client (or the member's slot) forever.
pub(super) const REQUEST_DEADLINE: Duration = Duration::from_secs(300);

/// Answers `request` of a client session on the copy `member` (whose
/// process is `stdio`).
pub(super) async fn answer(
    member: &Arc<Member>,
    stdio: &StdioUpstream,
    ledger: Ledger<'_>,
    request: &ClientRequest,
    naming: &Naming<'_>,
) -> Result<Response, UpstreamError> {
    match request.method {
        Method::POST => {}
        Method::DELETE => return Ok(StatusCode::OK.into_response()),
        _ => {
            let allow = [(header::ALLOW, "POST, DELETE")];
            return Ok(
                (StatusCode::METHOD_NOT_ALLOWED, allow, "Method Not Allowed").into_response(),
            );
        }
    }
    let id = request.peek.id.clone();
    let Some(method) = request.peek.method.as_deref() else {
        // A response to a server request: a stdio member sends none through us.
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    if id.is_null() {
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    if method == "initialize" {
        return initialize(member, stdio, request, id, naming);
    }
    let params = serde_json::from_slice::<Value>(&request.body)
        .ok()
        .and_then(|mut message| message.get_mut("params").map(Value::take))
        .unwrap_or_else(|| json!({}));
    let call = member.admit(ledger, QUEUE_PATIENCE).await?;
    match stdio.request(method, params, REQUEST_DEADLINE).await {
        Ok(result) => {
            call.answered();
            Ok(json_message(
                &json!({"jsonrpc": "2.0", "id": id, "result": result}),
            ))
        }
        Err(UpstreamError::JsonRpc {
            code,
            message,
            data,
        }) => {
            call.answered();
            let mut error = json!({"code": code, "message": message});
            if let Some(data) = data {
                error["data"] = data;
            }
            Ok(json_message(
                &json!({"jsonrpc": "2.0", "id": id, "error": error}),
            ))
        }
        Err(err) => {
            call.failed(&err);
            Err(err)
        }
    }
}

/// The copy's own `initialize` result, in the version the client asked for
/// when it is one the copy's era speaks, and a session naming the copy.
fn initialize(
    member: &Member,
    stdio: &StdioUpstream,
    request: &ClientRequest,
    id: Value,
    naming: &Naming<'_>,
) -> Result<Response, UpstreamError> {
    let Some(result) = stdio.initialize_result() else {
        return Err(UpstreamError::Unavailable(
            "the member process has not finished starting".into(),
        ));
    };
    let mut result = (*result).clone();
    let asked = serde_json::from_slice::<Value>(&request.body)
        .ok()
        .and_then(|m| m["params"]["protocolVersion"].as_str().map(str::to_owned));
    if let Some(asked) = asked.filter(|v| LEGACY_VERSIONS.contains(&v.as_str())) {
        result["protocolVersion"] = Value::String(asked);
    }
    let copy_session = uuid::Uuid::new_v4().simple().to_string();
    let session_id = naming.name(member.id(), copy_session.as_bytes());
    let mut response = json_message(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
    if let Ok(value) = HeaderValue::from_str(&session_id) {
        response.headers_mut().insert(SESSION, value);
    }
    Ok(response)
}

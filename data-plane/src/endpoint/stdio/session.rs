//! What the stdio adapter keeps of its client's session, as an HTTP
//! client would: the session id minted at `initialize` and the negotiated
//! protocol version, and the headers a request in that session carries.

use axum::http::{HeaderMap, HeaderValue};
use parking_lot::Mutex;
use serde_json::Value;

use crate::endpoint::groups::SESSION;

/// What the adapter remembers between lines: the session, as a client would.
#[derive(Debug, Default)]
pub(super) struct Session {
    pub(super) id: Option<HeaderValue>,
    pub(super) protocol_version: Option<HeaderValue>,
}

/// The headers an HTTP client would send with `message` in `session`.
pub(super) fn headers_for(message: &Value, session: &Session) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "accept",
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let modern_version = message
        .pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")
        .and_then(Value::as_str)
        .and_then(|v| HeaderValue::from_str(v).ok());
    if let Some(version) = modern_version {
        // 2026-07-28: the mirror headers are derived from the body, so they match.
        headers.insert("mcp-protocol-version", version);
        let method = message.get("method").and_then(Value::as_str);
        if let Some(method) = method.and_then(|m| HeaderValue::from_str(m).ok()) {
            headers.insert("mcp-method", method);
        }
        let name = message
            .pointer("/params/name")
            .or_else(|| message.pointer("/params/uri"))
            .and_then(Value::as_str)
            .and_then(|n| HeaderValue::from_str(n).ok());
        if let Some(name) = name {
            headers.insert("mcp-name", name);
        }
        return headers;
    }
    if let Some(id) = &session.id {
        headers.insert(SESSION, id.clone());
    }
    if let Some(version) = &session.protocol_version {
        headers.insert("mcp-protocol-version", version.clone());
    }
    headers
}

pub(super) fn remember_session(session: &Mutex<Session>, headers: &HeaderMap) {
    session.lock().id = headers.get(SESSION).cloned();
}

pub(super) fn remember_version(session: &Mutex<Session>, message: &Value) {
    let version = message
        .pointer("/result/protocolVersion")
        .and_then(Value::as_str)
        .and_then(|v| HeaderValue::from_str(v).ok());
    if version.is_some() {
        session.lock().protocol_version = version;
    }
}

/// The headers of the GET that opens the session's event stream, while
/// there is a legacy session to open it in.
pub(super) fn stream_headers(session: &Session) -> Option<HeaderMap> {
    let id = session.id.clone()?;
    let mut headers = HeaderMap::new();
    headers.insert("accept", HeaderValue::from_static("text/event-stream"));
    headers.insert(SESSION, id);
    if let Some(version) = &session.protocol_version {
        headers.insert("mcp-protocol-version", version.clone());
    }
    Some(headers)
}

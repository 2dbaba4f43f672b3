//! Checks every request to the MCP endpoints before they are served:
//! a browser `Origin` must be loopback or the data plane's own host (DNS
//! rebinding protection; the client's Origin is never passed to members),
//! malformed input gets a JSON-RPC error (the SDK would answer some of it
//! with a plain-text 415), and a body that is too large, too slow or over
//! the budget of all bodies is refused before any handler sees it
//! (`request_body`).

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::envelope::{Envelope, Params};
use super::request_body::{self, BodyError, BodyLimits, Charged};

use crate::server::jsonrpc::{INVALID_REQUEST, PARSE_ERROR, jsonrpc_error};
use crate::upstream::error::BoxError;

/// What the guard checks requests against.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// Host names a data plane answers to; anything else is refused.
    pub allowed_hosts: Arc<[String]>,
    /// How bodies are read: size, deadline, the budget of all bodies.
    pub body: BodyLimits,
}

/// A request that passed the guard: its head, its whole body, and for a
/// POST what routing reads from the body.
#[derive(Debug)]
pub(crate) struct Checked {
    /// Method, URI, headers and extensions of the request.
    pub parts: http::request::Parts,
    /// The whole body, read within the limits.
    pub body: Bytes,
    /// The routing facts of a POST's JSON-RPC message.
    pub peek: Option<Peek>,
    /// The body's share of the budget of all bodies; hold it as long as
    /// the body.
    pub charged: Charged,
}

/// Lets well-formed JSON-RPC messages addressed to an allowed host from an
/// allowed origin through, with their body read; answers the rest.
pub(crate) async fn check_request<B>(
    guard: &Guard,
    request: http::Request<B>,
) -> Result<Checked, Response>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if let Err(message) = check_host_and_origin(request.headers(), &guard.allowed_hosts) {
        let rejection = Rejection::new(Value::Null, INVALID_REQUEST, message);
        return Err(rejection.into_response(StatusCode::FORBIDDEN));
    }
    // Every body is read within the limits, even where it is ignored: a
    // GET with a body must not stream unbounded into a handler.
    let (parts, body) = request.into_parts();
    let (body, charged) = request_body::read(body, &guard.body)
        .await
        .map_err(BodyError::into_response)?;
    let peek = if parts.method == Method::POST {
        match check(&body) {
            Ok(peek) => Some(peek),
            Err(rejection) => return Err(rejection.into_response(StatusCode::BAD_REQUEST)),
        }
    } else {
        None
    };
    Ok(Checked {
        parts,
        body,
        peek,
        charged,
    })
}

/// Axum middleware: [`check_request`] in front of a handler, which finds
/// the [`Peek`] of a POST in the request's extensions.
pub(crate) async fn guard_layer(
    State(guard): State<Guard>,
    request: Request,
    next: Next,
) -> Response {
    match check_request(&guard, request).await {
        Ok(Checked {
            parts,
            body,
            peek,
            charged,
        }) => {
            let mut request = Request::from_parts(parts, Body::from(body));
            if let Some(peek) = peek {
                request.extensions_mut().insert(peek);
            }
            let response = next.run(request).await;
            drop(charged);
            response
        }
        Err(refused) => refused,
    }
}

/// Why a body is not a JSON-RPC message.
#[derive(Debug)]
struct Rejection {
    id: Value,
    code: i64,
    message: String,
}

impl Rejection {
    fn new(id: Value, code: i64, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
        }
    }

    fn into_response(self, status: StatusCode) -> Response {
        jsonrpc_error(status, self.id, self.code, &self.message)
    }
}

/// DNS-rebinding protection: the `Host` the client used must be one of the
/// data plane's names, and a browser's `Origin` (when sent) must be too. A
/// page on another site that resolves its name to this machine sends its
/// own name in both.
fn check_host_and_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), &'static str> {
    let allowed_name = |name: Option<&str>| {
        name.is_some_and(|n| allowed.iter().any(|a| a.eq_ignore_ascii_case(n)))
    };
    if let Some(host) = headers.get(header::HOST)
        && !allowed_name(host.to_str().ok().map(host_name))
    {
        return Err("Forbidden: Host not allowed");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        // scheme://host[:port]; "null" and other opaque origins have no host.
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, authority)| host_name(authority));
        if !allowed_name(origin_host) {
            return Err("Forbidden: Origin not allowed");
        }
    }
    Ok(())
}

/// The host of an authority (`host`, `host:port`, `[v6]:port`), without
/// brackets. Cheap: this runs on every request.
fn host_name(authority: &str) -> &str {
    let authority = authority.split(['/', '?', '#']).next().unwrap_or(authority);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// What routing needs from a checked message, read once by the guard.
#[derive(Debug, Clone, Default)]
pub(crate) struct Peek {
    /// `method`, absent for responses.
    pub method: Option<String>,
    /// `id`, `Null` for notifications.
    pub id: Value,
    /// `params.name` or, failing that, `params.uri`.
    pub name: Option<String>,
}

fn check(bytes: &Bytes) -> Result<Peek, Rejection> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(not_one_object(bytes));
    }
    let message: Envelope<'_> = serde_json::from_slice(bytes)
        .map_err(|e| Rejection::new(Value::Null, PARSE_ERROR, format!("parse error: {e}")))?;
    let id = message.id.clone().unwrap_or(Value::Null);
    if message.jsonrpc.as_str() != Some("2.0") {
        let text = "invalid request: \"jsonrpc\" must be \"2.0\"";
        return Err(Rejection::new(id, INVALID_REQUEST, text));
    }
    let is_request = message.method.as_str().is_some();
    let is_response = message.id.is_some() && (message.result.is_some() || message.error.is_some());
    if !is_request && !is_response {
        let text = "invalid request: a message needs a string \"method\", or an \"id\" with \"result\" or \"error\"";
        return Err(Rejection::new(id, INVALID_REQUEST, text));
    }
    let Params { name, uri } = message.params;
    Ok(Peek {
        method: message.method.0.map(Cow::into_owned),
        id,
        name: name.0.or(uri.0).map(Cow::into_owned),
    })
}

/// Why a body that is not a JSON object is refused.
fn not_one_object(bytes: &[u8]) -> Rejection {
    match serde_json::from_slice::<IgnoredAny>(bytes) {
        // Batches were only part of 2025-03-26; no current client sends them.
        Ok(_) => Rejection::new(
            Value::Null,
            INVALID_REQUEST,
            "invalid request: expected one JSON-RPC message object (batches are not supported)",
        ),
        Err(e) => Rejection::new(Value::Null, PARSE_ERROR, format!("parse error: {e}")),
    }
}

impl Peek {
    /// The routing facts of a message (anything but an object has none).
    pub(crate) fn of(message: &Value) -> Self {
        message.as_object().map(Self::of_object).unwrap_or_default()
    }

    fn of_object(message: &serde_json::Map<String, Value>) -> Self {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let params = message.get("params");
        Self {
            method: text(message.get("method")),
            id: message.get("id").cloned().unwrap_or(Value::Null),
            name: text(params.and_then(|p| p.get("name")))
                .or_else(|| text(params.and_then(|p| p.get("uri")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(body: &str) -> Option<i64> {
        check(&Bytes::from(body.to_owned())).err().map(|r| r.code)
    }

    fn allowed(host: &str, origin: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        let names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        check_host_and_origin(&headers, &names).is_ok()
    }

    /// Loopback hosts and origins pass; another name in either is refused,
    /// including the rebinding case where both name the attacker's site.
    #[test]
    fn only_own_hosts_and_origins() {
        assert!(allowed("127.0.0.1:9000", None));
        assert!(allowed("localhost:9000", Some("http://localhost:3000")));
        assert!(allowed("[::1]:9000", Some("http://[::1]:5173")));
        assert!(!allowed(
            "evil.example.com",
            Some("http://evil.example.com")
        ));
        assert!(!allowed("evil.example.com", None));
        assert!(!allowed("127.0.0.1:9000", Some("http://evil.example.com")));
        assert!(!allowed("127.0.0.1:9000", Some("null")));
    }

    /// Only well-formed single JSON-RPC messages pass.
    #[test]
    fn classifies_messages() {
        assert_eq!(
            rejected(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            None
        );
        assert_eq!(
            rejected(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            None
        );
        assert_eq!(rejected(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), None);
        assert_eq!(rejected("{bad json"), Some(PARSE_ERROR));
        for bad in [
            "[1,2]",
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            "\"x\"",
        ] {
            assert_eq!(rejected(bad), Some(INVALID_REQUEST), "{bad}");
        }
    }
}

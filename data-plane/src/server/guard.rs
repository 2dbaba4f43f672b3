//! Checks every request to the MCP endpoints before they are served: its
//! host and a browser's `Origin` must be the data plane's own (DNS
//! rebinding protection, `host`; the client's Origin is never passed to
//! members), malformed input gets a JSON-RPC error (the SDK would answer some of it
//! with a plain-text 415), and a body that is too large, too slow or over
//! the budget of all bodies is refused before any handler sees it
//! (`request_body`).

use std::borrow::Cow;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::envelope::{Envelope, Params};
use super::host;
use super::inbound;
use super::request_body::{self, BodyError, BodyLimits, Charged};

use crate::server::jsonrpc::{INVALID_REQUEST, PARSE_ERROR, jsonrpc_error};
use crate::upstream::error::BoxError;

/// What the guard checks requests against.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// Host names and origins a data plane answers to; anything else is
    /// refused.
    pub allowed: host::Allowed,
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
    // Every body is read within the limits, even where it is ignored: a
    // GET with a body must not stream unbounded into a handler. It is read
    // before the host is judged too: a refusal that left the body unread
    // would end the connection under a client about to reuse it.
    let (parts, body) = request.into_parts();
    let lingers = parts.extensions.get::<inbound::Lingers>().is_some();
    let (body, charged) = request_body::read(body, &guard.body, lingers)
        .await
        .map_err(BodyError::into_response)?;
    if let Err((status, message)) = host::check(&parts.uri, &parts.headers, &guard.allowed) {
        let rejection = Rejection::new(id_of(&body), INVALID_REQUEST, message);
        return Err(rejection.into_response(status));
    }
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

/// Marks a request the front already checked, so [`guard_layer`] lets it
/// through as it is.
#[derive(Debug, Clone, Copy)]
struct Guarded;

impl Checked {
    /// The request again, its body whole and its [`Peek`] in its
    /// extensions, marked as checked; and the body's share of the budget,
    /// to hold while it is served.
    pub(crate) fn into_request(self) -> (Request, Charged) {
        let mut request = Request::from_parts(self.parts, Body::from(self.body));
        if let Some(peek) = self.peek {
            request.extensions_mut().insert(peek);
        }
        request.extensions_mut().insert(Guarded);
        (request, self.charged)
    }
}

/// Axum middleware: [`check_request`] in front of a handler, which finds
/// the [`Peek`] of a POST in the request's extensions. A request that
/// passed [`check_request`] already goes through untouched.
pub(crate) async fn guard_layer(
    State(guard): State<Guard>,
    request: Request,
    next: Next,
) -> Response {
    if request.extensions().get::<Guarded>().is_some() {
        return next.run(request).await;
    }
    match check_request(&guard, request).await {
        Ok(checked) => {
            let (request, charged) = checked.into_request();
            let response = next.run(request).await;
            drop(charged);
            response
        }
        Err(refused) => refused,
    }
}

/// The `id` of a body that is a JSON-RPC message, for a refusal that is
/// not about the body; `null` otherwise.
fn id_of(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body)
        .map(|message| Peek::of(&message).id)
        .unwrap_or(Value::Null)
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

/// What routing needs from a checked message, read once by the guard.
#[derive(Debug, Clone, Default)]
pub(crate) struct Peek {
    /// `method`, absent for responses.
    pub method: Option<String>,
    /// `id`, `Null` for notifications.
    pub id: Value,
    /// `params.name` or, failing that, `params.uri`.
    pub name: Option<String>,
    /// `params._meta.traceparent` and `tracestate`: the trace context the
    /// message carries (SEP-414).
    pub trace: (Option<String>, Option<String>),
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
    let Params { name, uri, trace } = message.params;
    Ok(Peek {
        method: message.method.0.map(Cow::into_owned),
        id,
        name: name.0.or(uri.0).map(Cow::into_owned),
        trace: (
            trace.traceparent.0.map(Cow::into_owned),
            trace.tracestate.0.map(Cow::into_owned),
        ),
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
            trace: {
                let meta = params.and_then(|p| p.get("_meta"));
                (
                    text(meta.and_then(|m| m.get("traceparent"))),
                    text(meta.and_then(|m| m.get("tracestate"))),
                )
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(body: &str) -> Option<i64> {
        check(&Bytes::from(body.to_owned())).err().map(|r| r.code)
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

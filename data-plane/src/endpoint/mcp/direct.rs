//! `tools/call hangar_call` on `/mcp`, served directly.
//!
//! The MCP library serves a call by handing the parsed message to the
//! session's worker task, which spawns a task for the handler, whose answer
//! travels back over two channels into an SSE stream, each step building
//! and cloning JSON trees. For `hangar_call`, the batch tool every client
//! of the recipe calls, that machinery cost several times the balancing
//! itself. Here the call is read from the bytes the guard already checked
//! and run in the request's own task; its answer is the same JSON-RPC
//! message, written in one pass, in the same SSE framing.
//!
//! Only a call the library would serve exactly so is taken: a known
//! session, a protocol version from before 2026-07-28 (sessions, no
//! per-request metadata), the media types the library requires, and
//! params it would read the same way. Anything else, and one call a
//! minute per session (see [`super::library_visits`]), is left to the
//! library.
//!
//! What differs: an answer served here starts no resumable stream (no
//! priming event or event ids, which SHOULD-level resumption needs; a
//! client whose connection breaks gets an error, never a second run), and
//! a call whose client went away is dropped with the connection.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode, header};
use rmcp::model::RequestId;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::library_visits::LibraryVisits;
use super::{HANGAR_CALL, run_hangar_call};
use crate::endpoint::groups::session::LEGACY_VERSIONS;
use crate::endpoint::hangar_call::{BatchRequest, Outcome};
use crate::route::access::{Principal, Who};
use crate::route::table::Routes;
use crate::server::caller;
use crate::server::guard::Checked;

/// How long an answer may take before the stream opens with keep-alive
/// comments, as the library sends them (every 15 s), so proxies between
/// client and data plane do not time out a long batch.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The prefix of the `_meta` keys of the 2026-07-28 revision, which the
/// library reads.
const REVISION_META_PREFIX: &str = "io.modelcontextprotocol/";

/// Serves `hangar_call` on `/mcp` where the library would serve it the
/// same way.
#[derive(Debug)]
pub(crate) struct DirectCalls {
    routes: Arc<Routes>,
    sessions: Arc<LocalSessionManager>,
    visits: LibraryVisits,
}

/// The parts of a `tools/call` message this path reads.
#[derive(Deserialize)]
struct CallMessage<'a> {
    #[serde(borrow)]
    params: CallParams<'a>,
}

/// Any field beyond these (a task request, say) leaves the call to the
/// library.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallParams<'a> {
    #[allow(dead_code)]
    name: IgnoredAny,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
    #[serde(rename = "_meta", borrow, default)]
    meta: Option<HashMap<Cow<'a, str>, IgnoredAny>>,
}

impl DirectCalls {
    /// Calls over `routes` for the sessions of `sessions`.
    pub(crate) fn new(routes: Arc<Routes>, sessions: Arc<LocalSessionManager>) -> Self {
        Self {
            routes,
            sessions,
            visits: LibraryVisits::default(),
        }
    }

    /// Answers `checked` if it is a `hangar_call` this path takes; hands
    /// it back otherwise.
    pub(crate) async fn serve(&self, checked: Checked) -> Result<Response, Checked> {
        let Some((id, arguments)) = self.takes(&checked).await else {
            return Err(checked);
        };
        let Checked { parts, charged, .. } = checked;
        drop(charged);
        let caller = caller::of_request(&parts.headers, &parts.extensions);
        let who = Who::of(parts.extensions.get::<Principal>());
        let routes = self.routes.clone();
        let answer = async move {
            let batch = BatchRequest::parse_text(arguments.get());
            let outcome = run_hangar_call(&routes, batch, (caller, who)).await;
            event(&id, &outcome)
        };
        // The answer may finish after this function returned (streamed
        // after keep-alive comments): it carries the request's trace.
        let mut answer = Box::pin(crate::observe::carry(answer));
        let body = tokio::select! {
            event = &mut answer => Body::from(event),
            () = tokio::time::sleep(KEEP_ALIVE) => Body::from_stream(kept_alive(answer)),
        };
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .header("x-accel-buffering", "no")
            .body(body)
            .expect("static head"))
    }

    /// The call's id and arguments when this path takes it.
    async fn takes(&self, checked: &Checked) -> Option<(RequestId, Box<RawValue>)> {
        let peek = checked.peek.as_ref()?;
        if checked.parts.method != Method::POST
            || peek.method.as_deref() != Some("tools/call")
            || peek.name.as_deref() != Some(HANGAR_CALL)
        {
            return None;
        }
        let headers = &checked.parts.headers;
        if !accepts_json_and_sse(headers) || !sends_json(headers) || !session_era(headers) {
            return None;
        }
        let session = headers.get("mcp-session-id")?.to_str().ok()?;
        let id: RequestId = serde_json::from_value(peek.id.clone()).ok()?;
        let message: CallMessage<'_> = serde_json::from_slice(&checked.body).ok()?;
        let params = message.params;
        if params
            .meta
            .as_ref()
            .is_some_and(|meta| meta.keys().any(|key| key.starts_with(REVISION_META_PREFIX)))
        {
            return None;
        }
        let arguments = match params.arguments {
            None => RawValue::from_string("{}".to_owned()).ok()?,
            Some(raw) if raw.get().starts_with('{') => raw.to_owned(),
            Some(_) => return None,
        };
        let known = self.sessions.sessions.read().await.contains_key(session);
        (known && self.visits.may_skip(session)).then_some((id, arguments))
    }
}

/// `Accept` names both `application/json` and `text/event-stream`.
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for media in value.split(',') {
            json |= is_media(media, "application/json");
            sse |= is_media(media, "text/event-stream");
        }
    }
    json && sse
}

/// `Content-Type` is `application/json`.
fn sends_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| is_media(v, "application/json"))
}

/// Whether the media type `media` (parameters aside) is `essence`.
fn is_media(media: &str, essence: &str) -> bool {
    let (found, _) = media.split_once(';').unwrap_or((media, ""));
    found.trim().eq_ignore_ascii_case(essence)
}

/// No `MCP-Protocol-Version`, or one of the revisions with sessions, which
/// carry no per-request metadata the library would check.
fn session_era(headers: &HeaderMap) -> bool {
    match headers.get("mcp-protocol-version") {
        None => true,
        Some(version) => version.to_str().is_ok_and(|v| LEGACY_VERSIONS.contains(&v)),
    }
}

/// The answer to call `id` as one SSE event: the JSON-RPC message the
/// library sends for a tool result of `outcome` (structured content, the
/// same JSON as a text block, `isError`), written in one pass.
fn event(id: &RequestId, outcome: &Outcome) -> Bytes {
    #[derive(Serialize)]
    struct Message<'a> {
        jsonrpc: &'static str,
        id: &'a RequestId,
        result: ToolResult<'a>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ToolResult<'a> {
        content: [TextBlock<'a>; 1],
        structured_content: &'a RawValue,
        is_error: bool,
    }
    #[derive(Serialize)]
    struct TextBlock<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        text: &'a str,
    }
    let structured = serde_json::value::to_raw_value(outcome).expect("tool output serializes");
    let message = Message {
        jsonrpc: "2.0",
        id,
        result: ToolResult {
            content: [TextBlock {
                kind: "text",
                text: structured.get(),
            }],
            structured_content: &structured,
            is_error: outcome.is_error(),
        },
    };
    let mut bytes = b"data: ".to_vec();
    serde_json::to_writer(&mut bytes, &message).expect("tool output serializes");
    bytes.extend_from_slice(b"\n\n");
    bytes.into()
}

/// The answer's stream once it has taken [`KEEP_ALIVE`]: a comment every
/// [`KEEP_ALIVE`] until the event.
fn kept_alive(
    answer: impl Future<Output = Bytes> + Send + Unpin + 'static,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    const COMMENT: &[u8] = b":\n\n";
    futures::stream::unfold(Some(answer), |answer| async move {
        let mut answer = answer?;
        tokio::select! {
            event = &mut answer => Some((Ok(event), None)),
            () = tokio::time::sleep(KEEP_ALIVE) => Some((Ok(Bytes::from_static(COMMENT)), Some(answer))),
        }
    })
}

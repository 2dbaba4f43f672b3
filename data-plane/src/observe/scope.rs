//! The record of one request, or of one call of a `hangar_call` batch
//! ([`Scope`]), with its span, and the member attempts made within it
//! ([`Attempt`]).
//!
//! A scope travels in the OpenTelemetry context as a value beside its
//! span's context; it holds its span itself (not a `Context`, which would
//! hold the scope back in a cycle) and ends it with what it learned.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, StatusCode};
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, Span};
use parking_lot::Mutex;
use tokio::time::Instant;

use super::access::AccessLog;
use super::access::Line;
use super::attributes as attr;
use super::propagation;
use crate::server::guard::Peek;

/// Most distinct groups and members a request's record names: a batch
/// holds at most 100 calls, and a line stays readable.
const MAX_NAMED: usize = 16;

/// The sinks of an `Observer` that tells anything.
#[derive(Debug)]
pub(crate) struct Sinks {
    /// Where spans go, when traces are on.
    pub(crate) tracer: Option<SdkTracer>,
    /// The access log, when on.
    pub(crate) access: Option<AccessLog>,
}

/// What the front knows of a request before reading its body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestHead<'a> {
    /// The HTTP method.
    pub(crate) method: &'a http::Method,
    /// The route, with the group as a parameter.
    pub(crate) route: &'static str,
    /// The group of a `/groups/{group}/mcp` request.
    pub(crate) group: Option<&'a str>,
    /// The request's headers.
    pub(crate) headers: &'a HeaderMap,
    /// The address it comes from.
    pub(crate) client: Option<IpAddr>,
}

/// What a request (or a call of a batch) did, and its span.
#[derive(Debug)]
pub(crate) struct Scope {
    sinks: Arc<Sinks>,
    /// The request a call of a batch belongs to.
    parent: Option<Arc<Scope>>,
    /// Ended with the scope; `None` without traces.
    span: Mutex<Option<Span>>,
    /// A request's span until it starts: once its message is read (the
    /// message's trace context may name its parent), or at its end.
    pending: Mutex<Option<Pending>>,
    /// The span's context (the client's without traces), for children.
    span_context: Mutex<SpanContext>,
    facts: Mutex<Facts>,
    started: Instant,
}

/// A request span not started yet: how to build it, and its parent unless
/// the message names another.
#[derive(Debug)]
struct Pending {
    builder: SpanBuilder,
    parent: Context,
}

/// What a scope learned.
#[derive(Debug, Default)]
struct Facts {
    route: &'static str,
    http_method: String,
    method: Option<String>,
    tool: Option<String>,
    group: Option<String>,
    /// A server named directly by a call of a batch.
    server: Option<String>,
    principal: Option<String>,
    session: Option<String>,
    client: Option<String>,
    /// The member of the last attempt.
    member: Option<String>,
    /// Of a batch: the groups or servers called, and the members that
    /// served its calls.
    targets: Vec<String>,
    members: Vec<String>,
    attempts: u32,
    /// The outcome of the last attempt (`metrics::CallOutcome`'s names).
    last_outcome: Option<&'static str>,
    /// Set by whoever knows better than the attempts (a batch, a call).
    outcome: Option<Cow<'static, str>>,
    error: Option<String>,
    calls: u32,
    calls_failed: u32,
}

impl Scope {
    /// The scope of a request, a child of `parent` (the client's trace
    /// context, or none), and the context to serve it in.
    pub(super) fn request(
        sinks: Arc<Sinks>,
        parent: Context,
        head: RequestHead<'_>,
    ) -> (Arc<Self>, Context) {
        let facts = Facts {
            route: head.route,
            http_method: head.method.as_str().to_owned(),
            group: head.group.map(str::to_owned),
            client: head.client.map(|ip| ip.to_string()),
            ..Facts::default()
        };
        let span = sinks.tracer.as_ref().map(|tracer| {
            let mut attributes = vec![
                KeyValue::new(attr::HTTP_METHOD, facts.http_method.clone()),
                KeyValue::new(attr::HTTP_ROUTE, head.route),
            ];
            if let Some(client) = &facts.client {
                attributes.push(KeyValue::new(attr::CLIENT_ADDRESS, client.clone()));
            }
            if let Some(group) = head.group {
                attributes.push(KeyValue::new(attr::GROUP, group.to_owned()));
            }
            tracer
                .span_builder(format!("{} {}", facts.http_method, head.route))
                .with_kind(SpanKind::Server)
                .with_attributes(attributes)
                .with_start_time(SystemTime::now())
        });
        let (scope, context) = Self::open(sinks, None, None, &parent, facts);
        *scope.pending.lock() = span.map(|builder| Pending { builder, parent });
        (scope, context)
    }

    /// Starts a request's span if it has not started: a child of
    /// `message_parent` (the trace context in the message's `_meta`, which
    /// MCP prefers) if valid, else of the client's `traceparent` header.
    fn start_pending(&self, message_parent: Option<Context>) {
        let Some(pending) = self.pending.lock().take() else {
            return;
        };
        let Some(tracer) = &self.sinks.tracer else {
            return;
        };
        let parent = message_parent.unwrap_or(pending.parent);
        let span = pending.builder.start_with_context(tracer, &parent);
        *self.span_context.lock() = span.span_context().clone();
        *self.span.lock() = Some(span);
    }

    /// The context of this scope's span, for its children.
    fn span_context(&self) -> SpanContext {
        self.span_context.lock().clone()
    }

    /// The scope of the request or call being served, if it is followed.
    pub(crate) fn current() -> Option<Arc<Self>> {
        Context::map_current(|cx| cx.get::<Arc<Self>>().cloned())
    }

    /// A scope holding `span` (a child of `parent`), and its context.
    fn open(
        sinks: Arc<Sinks>,
        up: Option<Arc<Scope>>,
        span: Option<Span>,
        parent: &Context,
        facts: Facts,
    ) -> (Arc<Self>, Context) {
        let span_context = match &span {
            Some(span) => span.span_context().clone(),
            None => parent.span().span_context().clone(),
        };
        let scope = Arc::new(Self {
            sinks,
            parent: up,
            span: Mutex::new(span),
            pending: Mutex::new(None),
            span_context: Mutex::new(span_context.clone()),
            facts: Mutex::new(facts),
            started: Instant::now(),
        });
        let mut context = Context::new();
        if span_context.is_valid() {
            context = context.with_remote_span_context(span_context);
        }
        (scope.clone(), context.with_value(scope))
    }

    /// Notes the JSON-RPC message of the request.
    pub(super) fn read(&self, peek: Option<&Peek>, headers: &HeaderMap) {
        self.start_pending(peek.and_then(|p| propagation::extract_message(&p.trace)));
        let mut facts = self.facts.lock();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        facts.session = header("mcp-session-id").map(hash_session);
        let Some(peek) = peek else { return };
        let method = peek.method.clone();
        let tool = method
            .as_deref()
            .filter(|m| *m == "tools/call")
            .and(peek.name.clone());
        let mut span = self.span.lock();
        if let Some(span) = span.as_mut() {
            if let Some(method) = &method {
                span.update_name(match &tool {
                    Some(tool) => format!("{method} {tool}"),
                    None => method.clone(),
                });
                span.set_attribute(KeyValue::new(attr::MCP_METHOD, method.clone()));
            }
            if let Some(tool) = &tool {
                span.set_attribute(KeyValue::new(attr::TOOL, tool.clone()));
                span.set_attribute(KeyValue::new(attr::OPERATION, "execute_tool"));
            }
            if !peek.id.is_null() {
                let id = match &peek.id {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                span.set_attribute(KeyValue::new(attr::JSONRPC_ID, id));
            }
            if let Some(session) = &facts.session {
                span.set_attribute(KeyValue::new(attr::MCP_SESSION, session.clone()));
            }
            if let Some(version) = header("mcp-protocol-version") {
                span.set_attribute(KeyValue::new(
                    attr::MCP_PROTOCOL_VERSION,
                    version.to_owned(),
                ));
            }
        }
        facts.method = method;
        facts.tool = tool;
    }

    /// Notes the principal the request speaks for.
    pub(super) fn set_principal(&self, name: &str) {
        self.facts.lock().principal = Some(name.to_owned());
    }

    /// Notes how a batch ended: `failed` of `calls` did not succeed, or
    /// it was refused whole (`refusal`).
    pub(crate) fn batch_ended(&self, calls: usize, failed: usize, refusal: Option<&str>) {
        let mut facts = self.facts.lock();
        facts.calls = u32::try_from(calls).unwrap_or(u32::MAX);
        facts.calls_failed = u32::try_from(failed).unwrap_or(u32::MAX);
        facts.outcome = Some(Cow::Borrowed(match (refusal, failed) {
            (Some(_), _) => "refused",
            (None, 0) => "ok",
            (None, _) => "failed",
        }));
        facts.error = refusal.map(str::to_owned);
    }

    /// A member attempt begins: the number it has in this scope.
    fn attempt_begins(&self, member: &str) -> u32 {
        if let Some(parent) = &self.parent {
            parent.attempt_begins(member);
        }
        let mut facts = self.facts.lock();
        facts.attempts += 1;
        facts.member = Some(member.to_owned());
        facts.attempts
    }

    fn attempt_settled(&self, outcome: &'static str) {
        self.facts.lock().last_outcome = Some(outcome);
    }

    /// How the scope ended: what its owner said, else its last attempt's
    /// outcome, else whether the data plane answered (`local`) or refused
    /// (`refused`) without asking a member.
    fn outcome(facts: &Facts, status: StatusCode) -> Cow<'static, str> {
        if let Some(outcome) = &facts.outcome {
            return outcome.clone();
        }
        match facts.last_outcome {
            Some(outcome) => Cow::Borrowed(outcome),
            None if status.is_success() => Cow::Borrowed("local"),
            None => Cow::Borrowed("refused"),
        }
    }

    /// Ends a request answered with `status`: its span and its line.
    pub(super) fn end_request(&self, status: StatusCode) {
        self.start_pending(None);
        let facts = self.facts.lock();
        let outcome = Self::outcome(&facts, status);
        let ok = matches!(&*outcome, "ok" | "local");
        // A batch names the members that served its calls; a request, the
        // member of its last attempt.
        let member = match facts.calls {
            0 => facts.member.clone(),
            _ => (!facts.members.is_empty()).then(|| facts.members.join(",")),
        };
        if let Some(mut span) = self.span.lock().take() {
            let mut attributes = vec![
                KeyValue::new(attr::HTTP_STATUS, i64::from(status.as_u16())),
                KeyValue::new(attr::ATTEMPTS, i64::from(facts.attempts)),
                KeyValue::new(attr::OUTCOME, outcome.clone().into_owned()),
            ];
            if let Some(member) = &member {
                attributes.push(KeyValue::new(attr::MEMBER, member.clone()));
            }
            if let Some(principal) = &facts.principal {
                attributes.push(KeyValue::new(attr::PRINCIPAL, principal.clone()));
            }
            if facts.calls > 0 {
                attributes.push(KeyValue::new(attr::CALLS, i64::from(facts.calls)));
                attributes.push(KeyValue::new(
                    attr::CALLS_FAILED,
                    i64::from(facts.calls_failed),
                ));
            }
            if !ok {
                attributes.push(KeyValue::new(
                    attr::ERROR_TYPE,
                    outcome.clone().into_owned(),
                ));
            }
            span.set_attributes(attributes);
            if !ok || status.is_server_error() {
                let message = facts.error.clone().unwrap_or_else(|| outcome.to_string());
                span.set_status(Status::error(message));
            }
            span.end();
        }
        if let Some(access) = &self.sinks.access {
            let joined = |names: &[String]| (!names.is_empty()).then(|| names.join(","));
            let group = facts.group.clone().or_else(|| joined(&facts.targets));
            access.write(&Line {
                principal: facts.principal.as_deref(),
                client: facts.client.as_deref(),
                route: facts.route,
                http_method: &facts.http_method,
                method: facts.method.as_deref(),
                tool: facts.tool.as_deref(),
                group: group.as_deref(),
                member: member.as_deref(),
                attempts: facts.attempts,
                calls: (facts.calls > 0).then_some(facts.calls),
                status: status.as_u16(),
                outcome: &outcome,
                duration: self.started.elapsed(),
                session: facts.session.as_deref(),
                trace_id: {
                    let context = self.span_context();
                    context.is_valid().then(|| context.trace_id().to_string())
                },
            });
        }
    }
}

/// One call of a `hangar_call` batch: its scope and the context to run it
/// in (see [`CallScope::begin`]).
#[derive(Debug)]
pub(crate) struct CallScope {
    scope: Arc<Scope>,
    context: Context,
}

impl CallScope {
    /// Call `index` of the batch being served, of `tool` on `target` (a
    /// group when `is_group` says so, else a server); `None` when the
    /// request is not followed, without asking `is_group`.
    pub(crate) fn begin(
        index: usize,
        target: &str,
        tool: &str,
        is_group: impl FnOnce() -> bool,
    ) -> Option<Self> {
        let request = Scope::current()?;
        let is_group = is_group();
        {
            let mut facts = request.facts.lock();
            if facts.targets.len() < MAX_NAMED && !facts.targets.iter().any(|t| t == target) {
                facts.targets.push(target.to_owned());
            }
        }
        let (group, server) = match is_group {
            true => (Some(target.to_owned()), None),
            false => (None, Some(target.to_owned())),
        };
        let parent = Context::new().with_remote_span_context(request.span_context());
        let span = request.sinks.tracer.as_ref().map(|tracer| {
            let target_key = if is_group { attr::GROUP } else { attr::SERVER };
            tracer
                .span_builder(format!("execute_tool {tool}"))
                .with_kind(SpanKind::Internal)
                .with_attributes([
                    KeyValue::new(attr::OPERATION, "execute_tool"),
                    KeyValue::new(attr::TOOL, tool.to_owned()),
                    KeyValue::new(target_key, target.to_owned()),
                    KeyValue::new(attr::CALL_INDEX, i64::try_from(index).unwrap_or(i64::MAX)),
                ])
                .start_with_context(tracer, &parent)
        });
        let facts = Facts {
            method: Some("tools/call".to_owned()),
            tool: Some(tool.to_owned()),
            group,
            server,
            ..Facts::default()
        };
        let (scope, context) = Scope::open(
            request.sinks.clone(),
            Some(request.clone()),
            span,
            &parent,
            facts,
        );
        Some(Self { scope, context })
    }

    /// The context to run the call in.
    pub(crate) fn context(&self) -> Context {
        self.context.clone()
    }

    /// Ends the call: `ok`, `tool_error` (an answer with `isError`), or
    /// failed with `error` (`error_type` names the kind).
    pub(crate) fn end(self, outcome: &'static str, error: Option<(&str, &str)>) {
        let facts = self.scope.facts.lock();
        if let (Some(member), Some(request), "ok" | "tool_error") =
            (&facts.member, &self.scope.parent, outcome)
        {
            let mut served = request.facts.lock();
            if served.members.len() < MAX_NAMED && !served.members.contains(member) {
                served.members.push(member.clone());
            }
        }
        let mut span = self.scope.span.lock();
        let Some(span) = span.as_mut() else { return };
        let mut attributes = vec![
            KeyValue::new(attr::ATTEMPTS, i64::from(facts.attempts)),
            KeyValue::new(attr::OUTCOME, outcome),
        ];
        if let Some(member) = &facts.member {
            attributes.push(KeyValue::new(attr::MEMBER, member.clone()));
        }
        if let Some((error_type, message)) = error {
            attributes.push(KeyValue::new(attr::ERROR_TYPE, error_type.to_owned()));
            span.set_status(Status::error(message.to_owned()));
        }
        span.set_attributes(attributes);
        span.end();
    }
}

/// One request to a member within a scope, with its span.
#[derive(Debug)]
pub(crate) struct Attempt {
    scope: Arc<Scope>,
    span: Mutex<Option<Span>>,
    /// The span's context, which the member gets as its parent.
    context: Option<Context>,
}

impl Attempt {
    /// An attempt on `member` of the request or call being served, if it
    /// is followed.
    pub(crate) fn begin(member: &str) -> Option<Self> {
        let scope = Scope::current()?;
        let number = scope.attempt_begins(member);
        let span = scope.sinks.tracer.as_ref().map(|tracer| {
            let facts = scope.facts.lock();
            let name = match (&facts.method, &facts.tool) {
                (Some(method), Some(tool)) => format!("{method} {tool}"),
                (Some(method), None) => method.clone(),
                (None, _) => facts.http_method.clone(),
            };
            let mut attributes = vec![
                KeyValue::new(attr::MEMBER, member.to_owned()),
                KeyValue::new(attr::ATTEMPT, i64::from(number)),
            ];
            if let Some(method) = &facts.method {
                attributes.push(KeyValue::new(attr::MCP_METHOD, method.clone()));
            }
            if let Some(tool) = &facts.tool {
                attributes.push(KeyValue::new(attr::TOOL, tool.clone()));
            }
            if let Some(group) = &facts.group {
                attributes.push(KeyValue::new(attr::GROUP, group.clone()));
            } else if let Some(server) = &facts.server {
                attributes.push(KeyValue::new(attr::SERVER, server.clone()));
            }
            drop(facts);
            let parent = Context::new().with_remote_span_context(scope.span_context());
            tracer
                .span_builder(name)
                .with_kind(SpanKind::Client)
                .with_attributes(attributes)
                .start_with_context(tracer, &parent)
        });
        let context = span
            .as_ref()
            .map(|span| Context::new().with_remote_span_context(span.span_context().clone()));
        Some(Self {
            scope,
            span: Mutex::new(span),
            context,
        })
    }

    /// The context to send the attempt's request in, so the member gets
    /// this attempt as its parent; `None` without traces.
    pub(crate) fn context(&self) -> Option<Context> {
        self.context.clone()
    }

    /// The attempt ended with `outcome` (the `outcome` label of the call
    /// metrics; `ok` for an answer); `error` says why it failed.
    pub(crate) fn settle(&self, outcome: &'static str, error: Option<&str>) {
        self.scope.attempt_settled(outcome);
        if let Some(mut span) = self.span.lock().take() {
            span.set_attribute(KeyValue::new(attr::OUTCOME, outcome));
            if outcome != "ok" {
                span.set_attribute(KeyValue::new(attr::ERROR_TYPE, outcome));
                span.set_status(Status::error(error.unwrap_or(outcome).to_owned()));
            }
            span.end();
        }
    }
}

/// A session id as spans and lines name it: the first 16 hex digits of its
/// SHA-256, enough to tell sessions apart and useless to hijack one.
fn hash_session(session: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, session.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::hash_session;

    #[test]
    fn sessions_hash_apart_and_stably() {
        assert_eq!(hash_session("a"), hash_session("a"));
        assert_ne!(hash_session("a"), hash_session("b"));
        assert_eq!(hash_session("a").len(), 16);
        assert!(!hash_session("secret-session").contains("secret"));
    }
}

//! What the data plane tells of each MCP request besides its metrics: a
//! trace (OpenTelemetry spans, sent over OTLP by `hangar_runtime::otlp`)
//! and a line of the access log. Both are written from one record per
//! request, its `Scope`.
//!
//! How a request is followed:
//! - the front begins an `Observed` for every request to an MCP endpoint
//!   (`server/front.rs`): the request's span, a child of the client's
//!   `traceparent` if it sent one, and its scope, both in an OpenTelemetry
//!   `Context` that is current while the request is served;
//! - each `hangar_call` of a batch opens a child scope with its own span
//!   (`CallScope`, `endpoint/hangar_call.rs`);
//! - every request to a member, counted where calls are counted
//!   (`route::member::InFlightCall`), is an `Attempt` of the current
//!   scope, with its own span: failovers show as several attempts;
//! - the HTTP client writes the current span into the `traceparent` and
//!   `tracestate` a member gets (`upstream/pass.rs`, `propagate`), and the
//!   requests the data plane makes itself carry it in `params._meta` too,
//!   as MCP has it (`propagate_in_meta`), so a trace goes on through Hangar
//!   into the member;
//! - when the answer has been sent (its body dropped), the request's span
//!   ends and its access-log line is written (`Finish`).
//!
//! With neither traces nor the access log on, nothing is recorded and no
//! future is wrapped; a client's `traceparent` is still passed on to the
//! member as it came.

pub(crate) mod access;
mod attributes;
mod propagation;
mod scope;

use std::future::Future;
use std::sync::Arc;

use futures::future::Either;
use http::{HeaderMap, StatusCode};
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::trace::SdkTracer;

pub use self::access::AccessLog;
pub(crate) use self::propagation::{propagate, propagate_in_meta};
use self::scope::Sinks;
pub(crate) use self::scope::{Attempt, CallScope, RequestHead, Scope};
use crate::server::guard::Peek;

/// Where requests are told: traces, the access log, both or neither.
#[derive(Debug, Clone, Default)]
pub struct Observer {
    sinks: Option<Arc<Sinks>>,
}

impl Observer {
    /// Tells requests as spans of `tracer` and lines of `access`; either may
    /// be off.
    pub fn new(tracer: Option<SdkTracer>, access: Option<AccessLog>) -> Self {
        let sinks =
            (tracer.is_some() || access.is_some()).then(|| Arc::new(Sinks { tracer, access }));
        Self { sinks }
    }

    /// Begins following a request to `route` (`/mcp`, `/groups/{group}/mcp`)
    /// of `group`, if any, with `headers`, from `client`.
    pub(crate) fn begin(&self, request: RequestHead<'_>) -> Observed {
        let parent = propagation::extract(request.headers);
        let Some(sinks) = &self.sinks else {
            return Observed {
                scope: None,
                context: parent,
            };
        };
        let (scope, context) = Scope::request(sinks.clone(), parent.unwrap_or_default(), request);
        Observed {
            scope: Some(scope),
            context: Some(context),
        }
    }
}

/// A request being followed (see [`Observer::begin`]).
#[derive(Debug, Default)]
pub(crate) struct Observed {
    scope: Option<Arc<Scope>>,
    /// Current while the request is served: its span (or the client's,
    /// to pass on) and its scope.
    context: Option<Context>,
}

impl Observed {
    /// Notes what the request's JSON-RPC message says.
    pub(crate) fn read(&self, peek: Option<&Peek>, headers: &HeaderMap) {
        if let Some(scope) = &self.scope {
            scope.read(peek, headers);
        }
    }

    /// Notes the principal the request speaks for.
    pub(crate) fn principal(&self, name: &str) {
        if let Some(scope) = &self.scope {
            scope.set_principal(name);
        }
    }

    /// The context to put in a request's extensions, for a handler that
    /// runs elsewhere (the MCP library's session task).
    pub(crate) fn context(&self) -> Option<&Context> {
        self.context.as_ref()
    }

    /// `serve` with the request's context current while it runs.
    pub(crate) fn serve<F: Future>(&self, serve: F) -> impl Future<Output = F::Output> {
        within(self.context.clone(), serve)
    }

    /// The guard to hold until the answer, of `status`, has been sent.
    pub(crate) fn answered(self, status: StatusCode) -> Option<Finish> {
        self.scope.map(|scope| Finish { scope, status })
    }
}

/// Ends a request's span and writes its access-log line when dropped,
/// once the answer's body has been sent or dropped.
#[derive(Debug)]
pub(crate) struct Finish {
    scope: Arc<Scope>,
    status: StatusCode,
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.scope.end_request(self.status);
    }
}

/// `future` with `context` current while it runs; as it is without one.
pub(crate) fn within<F: Future>(
    context: Option<Context>,
    future: F,
) -> impl Future<Output = F::Output> {
    match context {
        Some(context) => Either::Left(future.with_context(context)),
        None => Either::Right(future),
    }
}

/// `future` carrying the context current now, if it holds anything to
/// carry: for work that goes on after the request's own future returned
/// (an answer streamed after keep-alive comments).
pub(crate) fn carry<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let current = Context::map_current(|cx| {
        (cx.has_active_span() || cx.get::<Arc<Scope>>().is_some()).then(|| cx.clone())
    });
    within(current, future)
}

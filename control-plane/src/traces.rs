//! The control plane's spans (sent over OTLP by `hangar_runtime::otlp`
//! when `--otlp-endpoint` or the `OTEL_*` variables name a collector):
//!
//! - one per `Apply` (`hangar.v1.AdminService/Apply`, a server span): the
//!   version it made, how it ended, how many errors a refused config had;
//! - one per snapshot sent to a data plane (`hangar.snapshot.push`, a
//!   producer span, a child of the apply that made the version when this
//!   control plane made it), open until the data plane ACKs or NACKs that
//!   version: a trace of an apply shows when each data plane took it, and
//!   which one refused it and why.
//!
//! The apply's span context reaches the pushes through the config state:
//! `ConfigState` notes the context current when it installs a version
//! ([`ApplyTrace`]), since the apply runs in its span's context.

use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, Span};
use parking_lot::Mutex;

/// Where the control plane's spans go; `None` without traces.
pub(crate) type Tracer = Option<SdkTracer>;

/// The span of one apply, ended by [`ApplySpan::end`].
#[derive(Debug)]
pub(crate) struct ApplySpan {
    span: Span,
}

impl ApplySpan {
    /// Starts the span of an apply of `source_name`.
    pub(crate) fn start(tracer: &Tracer, source_name: &str) -> Option<Self> {
        let tracer = tracer.as_ref()?;
        let span = tracer
            .span_builder("hangar.v1.AdminService/Apply")
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", "hangar.v1.AdminService"),
                KeyValue::new("rpc.method", "Apply"),
                KeyValue::new("hangar.config.source", source_name.to_owned()),
            ])
            .start(tracer);
        Some(Self { span })
    }

    /// The context to apply in, so the pushes of the version it makes
    /// become its children.
    pub(crate) fn context(&self) -> Context {
        Context::new().with_remote_span_context(self.span.span_context().clone())
    }

    /// Ends the span: `outcome` (`applied`, `unchanged`, `invalid`, ...),
    /// the version in force, and for a refused config its error count.
    pub(crate) fn end(mut self, outcome: &'static str, version: Option<u64>, errors: usize) {
        self.span
            .set_attribute(KeyValue::new("hangar.outcome", outcome));
        if let Some(version) = version {
            self.span.set_attribute(KeyValue::new(
                "hangar.config.version",
                i64::try_from(version).unwrap_or(i64::MAX),
            ));
        }
        if !matches!(outcome, "applied" | "unchanged") {
            self.span.set_attribute(KeyValue::new(
                "hangar.config.errors",
                i64::try_from(errors).unwrap_or(i64::MAX),
            ));
            self.span.set_status(Status::error(outcome));
        }
        self.span.end();
    }
}

/// The span context of the apply that made the version in force, for the
/// pushes of that version.
#[derive(Debug, Default)]
pub(crate) struct ApplyTrace {
    made: Mutex<Option<(u64, SpanContext)>>,
}

impl ApplyTrace {
    /// Notes that `version` was made in the context current now.
    pub(crate) fn note(&self, version: u64) {
        let context = Context::map_current(|cx| cx.span().span_context().clone());
        *self.made.lock() = context.is_valid().then_some((version, context));
    }

    /// The context of the apply that made `version`, if it was traced here.
    pub(crate) fn of(&self, version: u64) -> Option<SpanContext> {
        match &*self.made.lock() {
            Some((made, context)) if *made == version => Some(context.clone()),
            _ => None,
        }
    }
}

/// The span of one snapshot sent to a data plane, open until its answer.
#[derive(Debug)]
pub(crate) struct PushSpan {
    span: Span,
}

impl PushSpan {
    /// Starts the span of sending `version` to `node`, a child of the
    /// apply that made it when known.
    pub(crate) fn start(
        tracer: &Tracer,
        node: &str,
        version: u64,
        apply: Option<SpanContext>,
    ) -> Option<Self> {
        let tracer = tracer.as_ref()?;
        let parent = apply.map_or_else(Context::new, |apply| {
            Context::new().with_remote_span_context(apply)
        });
        let span = tracer
            .span_builder("hangar.snapshot.push")
            .with_kind(SpanKind::Producer)
            .with_attributes([
                KeyValue::new("hangar.node.id", node.to_owned()),
                KeyValue::new(
                    "hangar.config.version",
                    i64::try_from(version).unwrap_or(i64::MAX),
                ),
            ])
            .start_with_context(tracer, &parent);
        Some(Self { span })
    }

    /// Ends it: `ack`, `nack` (with the data plane's `reason`),
    /// `superseded` by a later version, or `disconnected`.
    pub(crate) fn end(mut self, outcome: &'static str, reason: Option<&str>) {
        self.span
            .set_attribute(KeyValue::new("hangar.outcome", outcome));
        if matches!(outcome, "nack" | "disconnected") {
            self.span
                .set_status(Status::error(reason.unwrap_or(outcome).to_owned()));
        }
        self.span.end();
    }
}

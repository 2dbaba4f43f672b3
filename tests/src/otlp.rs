//! An OTLP collector of a test: it takes traces over gRPC
//! (`TraceService/Export`) and over HTTP (`POST /v1/traces`, protobuf) on
//! one loopback port, as a real collector's receivers do, and keeps every
//! span it gets for the test to look at.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use parking_lot::Mutex;
use prost::Message as _;
use tokio::task::JoinHandle;

use crate::eventually::eventually;

/// A span as the collector got it, with ids in hex.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectedSpan {
    /// The `service.name` of the process that sent it.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// Server, client or internal.
    pub kind: SpanKind,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits; empty for a root span.
    pub parent_span_id: String,
    /// Attribute values as text (numbers and booleans printed).
    pub attributes: HashMap<String, String>,
    /// True when the span's status is an error.
    pub error: bool,
}

impl CollectedSpan {
    /// The attribute `key`, if the span has it.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// A running collector; stopped when dropped.
#[derive(Debug)]
pub struct Collector {
    addr: SocketAddr,
    spans: Arc<Spans>,
    task: JoinHandle<()>,
}

/// What the collector got: every span, or (for a bench) only their count.
#[derive(Debug, Default)]
struct Spans {
    keep: bool,
    kept: Mutex<Vec<CollectedSpan>>,
    received: AtomicU64,
}

impl Spans {
    fn take(&self, request: ExportTraceServiceRequest) {
        let spans = collect(request);
        self.received
            .fetch_add(spans.len() as u64, Ordering::Relaxed);
        if self.keep {
            self.kept.lock().extend(spans);
        }
    }
}

impl Collector {
    /// Starts a collector on a free loopback port.
    pub async fn start() -> Self {
        Self::start_keeping(true).await
    }

    /// A collector that only counts what it gets, for loads that would
    /// fill memory with spans.
    pub async fn start_counting() -> Self {
        Self::start_keeping(false).await
    }

    async fn start_keeping(keep: bool) -> Self {
        let spans = Arc::new(Spans {
            keep,
            ..Spans::default()
        });
        let grpc = TraceServiceServer::new(Receiver {
            spans: spans.clone(),
        });
        let http_spans = spans.clone();
        let router = tonic::service::Routes::new(grpc).into_axum_router().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return (http::StatusCode::BAD_REQUEST, Vec::new());
                };
                http_spans.take(request);
                let answer = ExportTraceServiceResponse::default().encode_to_vec();
                (http::StatusCode::OK, answer)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, spans, task }
    }

    /// The collector's address as an OTLP endpoint URL (either protocol).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far (none when only counting).
    pub fn spans(&self) -> Vec<CollectedSpan> {
        self.spans.kept.lock().clone()
    }

    /// How many spans it received.
    pub fn received(&self) -> u64 {
        self.spans.received.load(Ordering::Relaxed)
    }

    /// Waits (bounded) until the spans received satisfy `done`, and
    /// returns them.
    pub async fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&[CollectedSpan]) -> bool,
    ) -> Vec<CollectedSpan> {
        eventually(what, || {
            let spans = self.spans();
            std::future::ready(done(&spans).then_some(spans))
        })
        .await
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The gRPC receiver.
#[derive(Debug)]
struct Receiver {
    spans: Arc<Spans>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.spans.take(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// The spans of an export request.
fn collect(request: ExportTraceServiceRequest) -> Vec<CollectedSpan> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
            .map(text)
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                let attributes = span
                    .attributes
                    .iter()
                    .filter_map(|kv| {
                        let value = kv.value.as_ref()?.value.as_ref()?;
                        Some((kv.key.clone(), text(value)))
                    })
                    .collect();
                out.push(CollectedSpan {
                    service: service.clone(),
                    kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes,
                    // STATUS_CODE_ERROR
                    error: span.status.is_some_and(|s| s.code == 2),
                });
            }
        }
    }
    out
}

fn text(value: &AnyValue) -> String {
    match value {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! W3C trace context (`traceparent`, `tracestate`): read from a client's
//! request, written into every request to a member.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// The client's trace context, if its headers carry a valid one.
pub(super) fn extract(headers: &HeaderMap) -> Option<Context> {
    if !headers.contains_key(TRACEPARENT) {
        return None;
    }
    let context = TraceContextPropagator::new().extract(&Headers(headers));
    context.span().span_context().is_valid().then_some(context)
}

/// The trace context a message carries in `params._meta` (`traceparent`,
/// `tracestate`), if valid.
pub(super) fn extract_message(trace: &(Option<String>, Option<String>)) -> Option<Context> {
    let (Some(traceparent), tracestate) = trace else {
        return None;
    };
    let carrier = Meta {
        traceparent,
        tracestate: tracestate.as_deref(),
    };
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// The trace context keys of a message's `_meta`.
struct Meta<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Meta<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, "tracestate"]
    }
}

/// Writes the current span's trace context into `headers` (replacing any),
/// when there is one.
pub(crate) fn propagate(headers: &mut HeaderMap) {
    Context::map_current(|cx| {
        if cx.span().span_context().is_valid() {
            TraceContextPropagator::new().inject_context(cx, &mut HeadersMut(headers));
        }
    });
}

/// Writes the current span's trace context into the `_meta` of a request's
/// `params` (an object), where MCP carries it (SEP-414, and the
/// OpenTelemetry conventions for MCP): for the requests this data plane
/// makes itself, so a member that reads the message's context (a stdio
/// member has no other) continues the trace.
pub(crate) fn propagate_in_meta(params: &mut serde_json::Value) {
    Context::map_current(|cx| {
        if !cx.span().span_context().is_valid() {
            return;
        }
        let Some(params) = params.as_object_mut() else {
            return;
        };
        let meta = params
            .entry("_meta")
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            TraceContextPropagator::new().inject_context(cx, &mut MetaMut(meta));
        }
    });
}

const TRACEPARENT: &str = "traceparent";

struct MetaMut<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Injector for MetaMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0
            .insert(key.to_owned(), serde_json::Value::String(value));
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::context::FutureExt as _;

    #[tokio::test]
    async fn a_clients_trace_context_is_passed_on() {
        let mut client = HeaderMap::new();
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        client.insert(TRACEPARENT, HeaderValue::from_static(parent));
        client.insert("tracestate", HeaderValue::from_static("vendor=x"));
        let context = extract(&client).expect("valid");
        let mut member = HeaderMap::new();
        async { propagate(&mut member) }.with_context(context).await;
        assert_eq!(member.get(TRACEPARENT).unwrap(), parent);
        assert_eq!(member.get("tracestate").unwrap(), "vendor=x");
    }

    #[tokio::test]
    async fn our_own_requests_carry_the_trace_in_their_meta() {
        let mut client = HeaderMap::new();
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        client.insert(TRACEPARENT, HeaderValue::from_static(parent));
        let context = extract(&client).expect("valid");
        let mut params = serde_json::json!({"name": "add", "_meta": {"progressToken": 1}});
        async { propagate_in_meta(&mut params) }
            .with_context(context)
            .await;
        assert_eq!(params["_meta"]["traceparent"], parent);
        assert_eq!(params["_meta"]["progressToken"], 1, "other keys stay");
        let mut untraced = serde_json::json!({"name": "add"});
        propagate_in_meta(&mut untraced);
        assert!(untraced.get("_meta").is_none(), "no context, no _meta");
    }

    #[test]
    fn malformed_or_absent_trace_context_is_ignored() {
        let mut headers = HeaderMap::new();
        assert!(extract(&headers).is_none());
        headers.insert(TRACEPARENT, HeaderValue::from_static("00-zz-yy-01"));
        assert!(extract(&headers).is_none());
        let mut member = HeaderMap::new();
        propagate(&mut member);
        assert!(member.is_empty(), "no context, no header");
    }
}

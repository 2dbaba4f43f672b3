//! Traces: what a collector gets from a data plane, over both OTLP
//! transports, for a call through a group endpoint (continuing the
//! client's trace into the member) and for a `hangar_call` batch with a
//! failover.

use hangar_data_plane::observe::Observer;
use hangar_runtime::otlp::{OtlpProtocol, OtlpSettings, Traces};
use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::{DataPlane, McpClient};
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::otlp::{CollectedSpan, Collector};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;

/// A control plane and a data plane that sends its traces to `collector`
/// over `protocol`, with `yaml` applied.
async fn traced_stack(
    collector: &Collector,
    protocol: OtlpProtocol,
    yaml: &str,
) -> (ControlPlane, DataPlane, Traces) {
    let traces = Traces::start(&OtlpSettings {
        endpoint: Some(collector.url()),
        protocol,
        service_name: "hangar-data-plane".to_owned(),
    })
    .expect("traces start");
    let observer = Observer::new(Some(traces.tracer("hangar-data-plane")), None);
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start_observed(
        hangar_data_plane::Settings::new(cp.url(), "dp-1"),
        hangar_data_plane::Limits::default(),
        observer,
    )
    .await;
    cp.apply_and_wait(yaml, 1).await;
    (cp, dp, traces)
}

fn endpoints(servers: &[FakeMcpHandle]) -> Vec<String> {
    servers.iter().map(FakeMcpHandle::url).collect()
}

/// POSTs `message` to the group endpoint of `dp` with the HTTP
/// `traceparent` header, in `session` if given.
async fn post_traced(
    dp: &DataPlane,
    message: &serde_json::Value,
    traceparent: &str,
    session: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/groups/{RECIPE_GROUP}/mcp", dp.addr()))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("traceparent", traceparent)
        .body(message.to_string());
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.send().await.expect("answer")
}

fn children<'a>(spans: &'a [CollectedSpan], parent: &CollectedSpan) -> Vec<&'a CollectedSpan> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id && s.trace_id == parent.trace_id)
        .collect()
}

/// A client that sends a `traceparent` sees its trace go on through the
/// data plane: a server span for its request (the client's span as parent)
/// with the MCP attributes and the member that served, a client span for
/// the request to that member, and the member gets that client span as its
/// parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_call_continues_the_clients_trace_into_the_member() {
    let servers = vec![
        FakeMcp::new("a").start().await,
        FakeMcp::new("b").start().await,
    ];
    let collector = Collector::start().await;
    let yaml = GroupConfig::recipe(&endpoints(&servers)).yaml();
    let (cp, dp, traces) = traced_stack(&collector, OtlpProtocol::Grpc, &yaml).await;
    let url = format!("http://{}/groups/{RECIPE_GROUP}/mcp", dp.addr());
    let raw = hangar_tests::raw::Raw {
        http: reqwest::Client::new(),
        url,
    };
    let session = raw.initialize().await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 2, "b": 3}}});
    let traceparent = format!("00-{trace_id}-{client_span}-01");
    let answer = post_traced(&dp, &call, &traceparent, Some(&session)).await;
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.expect("body").contains("\"result\""));

    let spans = collector
        .wait_for("the call's server and client spans", |spans| {
            spans.iter().filter(|s| s.trace_id == trace_id).count() >= 2
        })
        .await;
    let server = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.kind == SpanKind::Server)
        .expect("a server span in the client's trace");
    assert_eq!(server.parent_span_id, client_span, "{server:?}");
    assert_eq!(server.service, "hangar-data-plane");
    assert_eq!(server.name, "tools/call add");
    assert_eq!(server.attr("mcp.method.name"), Some("tools/call"));
    assert_eq!(server.attr("gen_ai.tool.name"), Some("add"));
    assert_eq!(server.attr("gen_ai.operation.name"), Some("execute_tool"));
    assert_eq!(server.attr("jsonrpc.request.id"), Some("7"));
    assert_eq!(server.attr("hangar.group"), Some(RECIPE_GROUP));
    assert_eq!(server.attr("hangar.attempts"), Some("1"));
    assert_eq!(server.attr("hangar.outcome"), Some("ok"));
    assert_eq!(server.attr("http.response.status_code"), Some("200"));
    assert_eq!(server.attr("http.route"), Some("/groups/{group}/mcp"));
    let hashed = server.attr("mcp.session.id").expect("session attribute");
    assert_eq!(hashed.len(), 16);
    assert!(!session.contains(hashed) && hashed != session);
    assert!(!server.error);
    let member = server
        .attr("hangar.member")
        .expect("the member that served");

    let attempts = children(&spans, server);
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    let attempt = attempts[0];
    assert_eq!(attempt.kind, SpanKind::Client);
    assert_eq!(attempt.attr("hangar.member"), Some(member));
    assert_eq!(attempt.attr("hangar.outcome"), Some("ok"));
    assert_eq!(attempt.attr("hangar.attempt"), Some("1"));

    // The member got the attempt as its parent, in the client's trace.
    let expected = format!("00-{trace_id}-{}-01", attempt.span_id);
    let served_by = servers
        .iter()
        .find(|s| s.traceparents().contains(&expected))
        .expect("a member got the attempt's traceparent");
    let member_ids = ["my-mcp", "my-mcp-backup"];
    let index = servers
        .iter()
        .position(|s| s.name() == served_by.name())
        .unwrap();
    assert_eq!(member, member_ids[index]);

    dp.stop().await;
    cp.stop().await;
    traces.shutdown().await;
}

/// A batch whose call meets a member that went away shows the failover:
/// the call's span has two attempts, the first unreachable (an error
/// span), the second answered, and the request's span counts every
/// attempt of its calls. Sent over OTLP/HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_failover_shows_each_attempt() {
    let mut servers = vec![
        FakeMcp::new("a").start().await,
        FakeMcp::new("b").start().await,
    ];
    let collector = Collector::start().await;
    // Probes far apart and a high threshold keep the stopped member in
    // rotation, so a call meets it.
    let yaml = GroupConfig {
        health_check_interval_s: 60.0,
        max_consecutive_failures: 10,
        ..GroupConfig::recipe(&endpoints(&servers))
    }
    .yaml();
    let (cp, dp, traces) = traced_stack(&collector, OtlpProtocol::HttpProtobuf, &yaml).await;
    let client = McpClient::connect(&dp.mcp_url()).await;
    servers[1].stop().await;
    let calls: Vec<_> = (0..2)
        .map(|i| json!({"mcp_server": RECIPE_GROUP, "tool": "add", "arguments": {"a": i, "b": 1}}))
        .collect();
    let out = client
        .hangar_call(json!({"calls": calls, "max_concurrency": 1}))
        .await;
    assert_eq!(out["succeeded"], 2, "{out}");

    let spans = collector
        .wait_for("the batch's spans", |spans| {
            spans
                .iter()
                .any(|s| s.kind == SpanKind::Server && s.attr("hangar.calls") == Some("2"))
        })
        .await;
    let request = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server && s.attr("hangar.calls") == Some("2"))
        .expect("the batch's server span");
    assert_eq!(request.name, "tools/call hangar_call");
    assert_eq!(request.attr("gen_ai.tool.name"), Some("hangar_call"));
    assert_eq!(request.attr("hangar.outcome"), Some("ok"));
    assert_eq!(request.attr("hangar.calls.failed"), Some("0"));
    let calls = children(&spans, request);
    assert_eq!(calls.len(), 2, "{calls:?}");
    // Each call that met the stopped member first took two attempts (one
    // or both, as the rotation goes on after a failover).
    let attempts_of = |s: &CollectedSpan| -> u32 {
        s.attr("hangar.attempts")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0)
    };
    let total: u32 = calls.iter().map(|c| attempts_of(c)).sum();
    assert_eq!(attempts_of(request), total, "{request:?}");
    for call in &calls {
        assert_eq!(call.kind, SpanKind::Internal);
        assert_eq!(call.name, "execute_tool add");
        assert_eq!(call.attr("hangar.group"), Some(RECIPE_GROUP));
        assert_eq!(call.attr("hangar.outcome"), Some("ok"));
        assert_eq!(call.attr("hangar.member"), Some("my-mcp"));
    }
    let failed_over = calls
        .iter()
        .find(|c| c.attr("hangar.attempts") == Some("2"))
        .expect("one call failed over");
    let mut attempts = children(&spans, failed_over);
    attempts.sort_by_key(|a| a.attr("hangar.attempt").map(str::to_owned));
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].attr("hangar.member"), Some("my-mcp-backup"));
    assert_eq!(attempts[0].attr("hangar.outcome"), Some("unreachable"));
    assert!(attempts[0].error);
    assert_eq!(attempts[1].attr("hangar.member"), Some("my-mcp"));
    assert_eq!(attempts[1].attr("hangar.outcome"), Some("ok"));
    assert!(!attempts[1].error);
    assert!(attempts.iter().all(|a| a.kind == SpanKind::Client));
    // The member got the attempt as its parent in the message's `_meta`,
    // where MCP carries trace context, as well as in the header.
    let expected = format!("00-{}-{}-01", attempts[1].trace_id, attempts[1].span_id);
    assert!(
        servers[0].meta_traceparents().contains(&expected),
        "{expected}"
    );
    assert!(servers[0].traceparents().contains(&expected), "{expected}");

    dp.stop().await;
    cp.stop().await;
    traces.shutdown().await;
}

/// Without traces, a client's trace context still reaches the member as
/// it came, so a trace through Hangar is never broken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_traces_the_clients_trace_context_is_passed_on() {
    let servers = vec![FakeMcp::new("a").stateless().start().await];
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    cp.apply_and_wait(&GroupConfig::recipe(&endpoints(&servers)).yaml(), 1)
        .await;
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 1}}});
    let answer = post_traced(&dp, &call, parent, None).await;
    assert_eq!(answer.status(), 200);
    let _ = answer.bytes().await;
    eventually("the member to get the client's traceparent", || {
        std::future::ready(
            servers[0]
                .traceparents()
                .contains(&parent.to_owned())
                .then_some(()),
        )
    })
    .await;
    dp.stop().await;
    cp.stop().await;
}

/// The control plane traces an apply and the push of the version it made
/// to each data plane, open until that data plane's ACK: the push is a
/// child of the apply. A refused config's apply says how many errors it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_and_its_pushes_are_one_trace() {
    let servers = vec![FakeMcp::new("a").start().await];
    let collector = Collector::start().await;
    let traces = Traces::start(&OtlpSettings {
        endpoint: Some(collector.url()),
        protocol: OtlpProtocol::Grpc,
        service_name: "hangar-control-plane".to_owned(),
    })
    .expect("traces start");
    let temp = tempfile::tempdir().expect("temp dir");
    let mut settings = hangar_control_plane::Settings::new(temp.path());
    settings.tracer = Some(traces.tracer("hangar-control-plane"));
    let cp = ControlPlane::start_with(settings).await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    cp.apply_and_wait(&GroupConfig::recipe(&endpoints(&servers)).yaml(), 1)
        .await;
    let refused = cp.apply("mcp_servers:\n  x:\n    mode: nonsense\n").await;
    assert!(refused.is_err());

    let spans = collector
        .wait_for("the apply, its push and the refused apply", |spans| {
            let done = |name: &str, outcome: &str| {
                spans
                    .iter()
                    .any(|s| s.name == name && s.attr("hangar.outcome") == Some(outcome))
            };
            done("hangar.snapshot.push", "ack") && done("hangar.v1.AdminService/Apply", "invalid")
        })
        .await;
    let apply = spans
        .iter()
        .find(|s| {
            s.name == "hangar.v1.AdminService/Apply" && s.attr("hangar.outcome") == Some("applied")
        })
        .expect("the apply's span");
    assert_eq!(apply.service, "hangar-control-plane");
    assert_eq!(apply.kind, SpanKind::Server);
    assert_eq!(apply.attr("hangar.config.version"), Some("1"));
    let push = spans
        .iter()
        .find(|s| s.name == "hangar.snapshot.push")
        .expect("the push's span");
    assert_eq!(push.kind, SpanKind::Producer);
    assert_eq!(push.trace_id, apply.trace_id, "{push:?}");
    assert_eq!(push.parent_span_id, apply.span_id);
    assert_eq!(push.attr("hangar.node.id"), Some("dp-1"));
    assert_eq!(push.attr("hangar.config.version"), Some("1"));
    assert!(!push.error);
    let invalid = spans
        .iter()
        .find(|s| s.attr("hangar.outcome") == Some("invalid"))
        .expect("the refused apply's span");
    assert!(invalid.error);
    assert!(
        invalid
            .attr("hangar.config.errors")
            .is_some_and(|n| n != "0")
    );

    dp.stop().await;
    cp.stop().await;
    traces.shutdown().await;
}

/// A client that carries its trace context in the message's
/// `params._meta` (as MCP has it) gets the request's span as a child of
/// that span, even when an HTTP `traceparent` names another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messages_own_trace_context_names_the_parent() {
    let servers = vec![FakeMcp::new("a").stateless().start().await];
    let collector = Collector::start().await;
    let yaml = GroupConfig::recipe(&endpoints(&servers)).yaml();
    let (cp, dp, traces) = traced_stack(&collector, OtlpProtocol::Grpc, &yaml).await;
    let trace_id = "5bf92f3577b34da6a3ce929d0e0e4736";
    let message_span = "10f067aa0ba902b7";
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 1},
            "_meta": {"traceparent": format!("00-{trace_id}-{message_span}-01")}}});
    let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let answer = post_traced(&dp, &call, header, None).await;
    assert_eq!(answer.status(), 200);
    let _ = answer.bytes().await;
    let spans = collector
        .wait_for("the call's server span", |spans| {
            spans
                .iter()
                .any(|s| s.trace_id == trace_id && s.kind == SpanKind::Server)
        })
        .await;
    let server = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.kind == SpanKind::Server)
        .unwrap();
    assert_eq!(server.parent_span_id, message_span);
    assert_eq!(server.name, "tools/call add");
    dp.stop().await;
    cp.stop().await;
    traces.shutdown().await;
}

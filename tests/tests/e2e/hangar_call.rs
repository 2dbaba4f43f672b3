//! `hangar_call` input checks, limits and shapes.

use hangar_tests::configs;
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::{DataPlane, served_counts};
use hangar_tests::fake_mcp::FakeMcp;
use serde_json::json;

/// Unknown servers fail the whole batch up front with MCP Hangar's shape,
/// and a single server (not a group) can be called by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_validation_and_direct_server_calls() {
    let a = FakeMcp::new("a").start().await;
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    cp.apply_and_wait(&configs::recipe(&[a.url()], 0.1, 1), 1)
        .await;
    let client = dp.client().await;
    assert_eq!(client.tool_names().await, ["hangar_call"]);
    let out = client.batch("nope", "add", json!({}), 1).await;
    assert_eq!(
        out,
        json!({"success": false, "error": "Validation failed", "validation_errors": [
            {"index": 0, "field": "mcp_server", "message": "McpServer 'nope' not found"}]})
    );
    let out = client
        .batch("my-mcp", "echo", json!({"text": "hi"}), 2)
        .await;
    assert_eq!(served_counts(&out).get("my-mcp"), Some(&2));
    assert_eq!(
        out["results"][1]["result"]["structuredContent"]["text"],
        "hi"
    );
    let empty = client.hangar_call(json!({"calls": []})).await;
    assert_eq!(
        (empty["success"].clone(), empty["total"].clone()),
        (json!(true), json!(0))
    );
    dp.stop().await;
    cp.stop().await;
}

/// Limits are enforced before any call is made, and `fail_fast` skips the
/// calls that had not started when one failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_limits_and_fail_fast() {
    let a = FakeMcp::new("a").start().await;
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    cp.apply_and_wait(&configs::recipe(&[a.url()], 0.1, 1), 1)
        .await;
    let client = dp.client().await;

    let out = client
        .batch("my-mcp", "add", json!({"a": 1, "b": 1}), 101)
        .await;
    assert_eq!(out["validation_errors"][0]["field"], "calls", "{out}");
    assert_eq!(a.calls(), 0, "a refused batch makes no call");

    let huge = json!({"calls": [{"mcp_server": "my-mcp", "tool": "add", "arguments": {"a": 1, "b": 1}, "timeout": 1e300}]});
    assert_eq!(client.hangar_call(huge).await["succeeded"], 1);
    let negative =
        json!({"calls": [{"mcp_server": "my-mcp", "tool": "add", "arguments": {}, "timeout": -1}]});
    assert_eq!(
        client.hangar_call(negative).await["validation_errors"][0]["field"],
        "timeout"
    );

    let calls: Vec<_> = ["fail", "add", "add"]
        .iter()
        .map(|tool| json!({"mcp_server": "my-mcp-group", "tool": tool, "arguments": {"a": 1, "b": 1}}))
        .collect();
    let out = client
        .hangar_call(json!({"calls": calls, "fail_fast": true, "max_concurrency": 1}))
        .await;
    let types: Vec<&str> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["ToolInvocationError", "FailFastSkipped", "FailFastSkipped"]
    );
    dp.stop().await;
    cp.stop().await;
}

/// Malformed requests get a JSON-RPC error with HTTP 400, and the data plane
/// keeps serving the clients that follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_jsonrpc_errors() {
    let a = FakeMcp::new("a").start().await;
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    cp.apply_and_wait(&configs::recipe(&[a.url()], 0.1, 1), 1)
        .await;
    let http = reqwest::Client::new();
    let cases = [
        ("{bad json", -32700),
        (
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
            -32600,
        ),
        ("{\"id\":7,\"method\":\"ping\"}", -32600),
        ("{\"jsonrpc\":\"2.0\",\"id\":7}", -32600),
    ];
    for (body, code) in cases {
        let response = http
            .post(dp.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
    }
    let oversized = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(5 << 20)
    );
    let response = http
        .post(dp.mcp_url())
        .header("content-type", "application/json")
        .body(oversized)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    let out = dp
        .client()
        .await
        .batch("my-mcp", "add", json!({"a": 1, "b": 1}), 1)
        .await;
    assert_eq!(out["succeeded"], 1, "{out}");
    dp.stop().await;
    cp.stop().await;
}

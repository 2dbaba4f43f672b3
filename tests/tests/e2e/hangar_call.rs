//! `hangar_call` input checks, limits and shapes.

use hangar_tests::configs;
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::stack::Stack;
use serde_json::json;

/// Every error type of a call, each reported in its own result while the
/// other calls of the batch still run; results keep input order; a single
/// server (not a group) can be called by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_reports_its_own_error_type() {
    let a = FakeMcp::new("a").start().await;
    let stack = Stack::start(&configs::recipe(&[a.url()], 0.1, 3)).await;
    let (cp, dp) = (&stack.cp, &stack.dp);
    let client = dp.client().await;
    assert_eq!(client.tool_names().await, ["hangar_call", "hangar_status"]);
    let calls = json!([
        {"mcp_server": "nope", "tool": "add", "arguments": {}},
        {"mcp_server": "my-mcp", "tool": "no_such_tool", "arguments": {}},
        {"mcp_server": "my-mcp-group", "tool": "sleep", "arguments": {"ms": 5000}, "timeout": 0.2},
        {"mcp_server": "my-mcp-group", "tool": "fail", "arguments": {}},
        {"mcp_server": "my-mcp", "tool": "echo", "arguments": {"text": "hi"}},
    ]);
    let out = client
        .hangar_call(json!({"calls": calls, "max_concurrency": 5}))
        .await;
    let results = out["results"].as_array().unwrap();
    let types: Vec<&str> = results
        .iter()
        .map(|r| r["error_type"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        types,
        [
            "ServerNotFoundError",
            "ToolNotFoundError",
            "TimeoutError",
            "ToolInvocationError",
            "-"
        ],
        "{out}"
    );
    let indexes: Vec<u64> = results
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4]);
    assert_eq!(results[0]["error"], "McpServer 'nope' not found");
    assert_eq!(results[4]["result"]["structuredContent"]["text"], "hi");
    assert_eq!(results[4]["served_by"], "my-mcp");
    assert_eq!(
        (out["succeeded"].clone(), out["failed"].clone()),
        (json!(1), json!(4))
    );
    // None of these answers is a member failure.
    let status = cp.status().await;
    assert_eq!(status.servers[0].state, "ready");
    let empty = client.hangar_call(json!({"calls": []})).await;
    assert_eq!(
        (empty["success"].clone(), empty["total"].clone()),
        (json!(true), json!(0))
    );
    stack.stop().await;
}

/// Limits are enforced before any call is made, and `fail_fast` skips the
/// calls that had not started when one failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_limits_and_fail_fast() {
    let a = FakeMcp::new("a").start().await;
    let stack = Stack::start(&configs::recipe(&[a.url()], 0.1, 1)).await;
    let dp = &stack.dp;
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

    // A call without its arguments is named by its index and field.
    let missing = json!({"calls": [
        {"mcp_server": "my-mcp", "tool": "add", "arguments": {}},
        {"mcp_server": "my-mcp", "tool": "add"},
    ]});
    let before = a.calls();
    let out = client.hangar_call(missing).await;
    let error = &out["validation_errors"][0];
    assert_eq!(
        (&error["index"], &error["field"]),
        (&json!(1), &json!("arguments")),
        "{out}"
    );
    assert_eq!(a.calls(), before, "a refused batch makes no call");

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
    stack.stop().await;
}

/// Malformed requests get a JSON-RPC error with HTTP 400, and the data plane
/// keeps serving the clients that follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_jsonrpc_errors() {
    let a = FakeMcp::new("a").start().await;
    let stack = Stack::start(&configs::recipe(&[a.url()], 0.1, 1)).await;
    let dp = &stack.dp;
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
    stack.stop().await;
}

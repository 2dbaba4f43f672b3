//! `hangar_call` input checks, limits and shapes.

use hangar_tests::configs;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::raw::Raw;
use hangar_tests::stack::Stack;
use serde_json::{Value, json};

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

/// The data plane serves most `hangar_call`s itself, not through the MCP
/// library: the first call of a session still goes through the library
/// (which keeps the session alive), the ones after it do not. Both answer
/// the same message, so a client cannot tell them apart but by the
/// library's resumable-stream priming event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_served_directly_answer_as_the_library_does() {
    let (_a, stack) = one_member().await;
    let raw = raw_mcp(&stack);
    let session = raw.initialize().await;
    let call = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "hangar_call", "_meta": {"progressToken": id},
            "arguments": {"calls": [
                {"mcp_server": "my-mcp-group", "tool": "echo", "arguments": {"text": "hi"}},
                {"mcp_server": "nope", "tool": "echo", "arguments": {}}]}}})
    };
    let mut answers = Vec::new();
    for id in [7, 8] {
        let response = raw.post(Some(&session), call(id)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let text = response.text().await.unwrap();
        let data = sse_messages(&text);
        assert_eq!(data.len(), 1, "{text}");
        let primed = text.lines().any(|line| line.starts_with("retry:"));
        answers.push((data[0].clone(), primed));
    }
    assert!(answers[0].1, "the first call goes through the library");
    assert!(!answers[1].1, "the second is served directly");
    // Equal but for what differs per call: ids, timings.
    let normalize = |mut message: Value| {
        let result = &mut message["result"];
        let batch = result["structuredContent"].take();
        let mut batch = batch;
        for key in ["batch_id", "elapsed_ms"] {
            batch[key] = json!("-");
        }
        for call in batch["results"].as_array_mut().unwrap() {
            call["call_id"] = json!("-");
            call["elapsed_ms"] = json!("-");
        }
        let text: Value =
            serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(
            text["success"], batch["success"],
            "the text block is the same batch"
        );
        result["content"][0]["text"] = json!("-");
        result["structuredContent"] = batch;
        message["id"] = json!("-");
        message
    };
    let (library, direct) = (
        normalize(answers[0].0.clone()),
        normalize(answers[1].0.clone()),
    );
    assert_eq!(library, direct);
    assert_eq!(answers[1].0["id"], 8);
    assert_eq!(direct["result"]["isError"], false);
    assert_eq!(
        direct["result"]["structuredContent"]["results"][1]["error_type"],
        "ServerNotFoundError"
    );
}

/// Calls the library would read differently stay with it: a call with an
/// unknown session is refused as the library refuses it, with the call's
/// id, and a malformed batch gets the same validation answer either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_outside_the_direct_path_keep_the_library_answers() {
    let (_a, stack) = one_member().await;
    let raw = raw_mcp(&stack);
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "hangar_call", "arguments": {"calls": "not a list"}}});
    let unknown = raw.post(Some("no-such-session"), call.clone()).await;
    assert_eq!(unknown.status(), 404);
    let refusal: Value = unknown.json().await.unwrap();
    assert_eq!(refusal["id"], 3, "{refusal}");
    let session = raw.initialize().await;
    let mut texts = Vec::new();
    for _ in 0..2 {
        let text = raw
            .post(Some(&session), call.clone())
            .await
            .text()
            .await
            .unwrap();
        let mut result = sse_messages(&text)[0]["result"].clone();
        // The text block is the same JSON, its keys in any order.
        let text = result["content"][0]["text"].as_str().unwrap();
        result["content"][0]["text"] = serde_json::from_str(text).unwrap();
        texts.push(result);
    }
    assert_eq!(texts[0], texts[1]);
    assert_eq!(texts[1]["isError"], true);
    assert_eq!(
        texts[1]["structuredContent"]["validation_errors"][0]["field"],
        "calls"
    );
}

/// DELETE ends a `/mcp` session with 200, as the SDK servers answer (the
/// Python SDK client warns on anything but 200 or 204); the session is then
/// unknown, and a call in it is refused with 404 and the call's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_ends_the_session_with_200() {
    let (_a, stack) = one_member().await;
    let raw = raw_mcp(&stack);
    let session = raw.initialize().await;
    assert_eq!(raw.delete(&session).await.status(), 200);
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "hangar_call", "arguments": {"calls": []}}});
    let after = raw.post(Some(&session), call).await;
    assert_eq!(after.status(), 404);
    assert_eq!(after.json::<Value>().await.unwrap()["id"], 9);
}

/// A stack over one fake member.
async fn one_member() -> (FakeMcpHandle, Stack) {
    let a = FakeMcp::new("a").start().await;
    let stack = Stack::start(&configs::recipe(&[a.url()], 0.1, 3)).await;
    (a, stack)
}

/// A raw client of the data plane's `/mcp`.
fn raw_mcp(stack: &Stack) -> Raw {
    Raw {
        http: reqwest::Client::new(),
        url: stack.dp.mcp_url(),
    }
}

/// The JSON-RPC messages of an SSE answer (priming events left out).
fn sse_messages(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| !data.is_empty())
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

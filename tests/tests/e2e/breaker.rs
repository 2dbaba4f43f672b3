//! MCP Hangar's recipe 03, the group circuit breaker, as a user meets it:
//! failed calls in a row open it, an open circuit refuses calls at once on
//! both endpoints and says so in status and metrics, and it closes when the
//! members answer again.

use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::metrics::Scrape;
use hangar_tests::stack::Stack;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_open_the_circuit_until_the_member_answers_again() {
    let mut a = FakeMcp::new("a").start().await;
    // Probes keep the member's own health out of the way: a high
    // max_consecutive_failures keeps it in rotation, so the breaker is
    // what refuses.
    let yaml = format!(
        "mcp_servers:\n  a:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 0.2\n    max_consecutive_failures: 100\n  g:\n    mode: group\n    min_healthy: 1\n    circuit_breaker:\n      failure_threshold: 3\n      reset_timeout_s: 30\n    members:\n      - id: a\n",
        a.url()
    );
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    let add = json!({"mcp_server": "g", "tool": "add", "arguments": {"a": 1, "b": 2}});
    let out = client.hangar_call(json!({"calls": [add.clone()]})).await;
    assert_eq!(out["results"][0]["success"], true, "{out}");

    a.stop().await;
    for _ in 0..3 {
        let out = client.hangar_call(json!({"calls": [add.clone()]})).await;
        assert_eq!(
            out["results"][0]["error_type"], "ToolInvocationError",
            "{out}"
        );
    }
    let out = client.hangar_call(json!({"calls": [add.clone()]})).await;
    let result = &out["results"][0];
    assert_eq!(result["error_type"], "CircuitBreakerOpen", "{out}");
    let error = result["error"].as_str().unwrap();
    assert!(error.starts_with("Circuit breaker open"), "{error}");
    assert!(error.contains("group 'g'"), "{error}");

    // The group endpoint refuses too, with 503 and the request's id.
    let call = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}}});
    let answer = reqwest::Client::new()
        .post(stack.group_url("g"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(call.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["id"], 41, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Circuit breaker open"),
        "{body}"
    );

    eventually("status to show the open circuit", || async {
        let status = stack.cp.status().await;
        let group = status.groups.iter().find(|g| g.id == "g")?;
        (group.state == "circuit_open" && group.circuit_open_on == ["dp-1"]).then_some(())
    })
    .await;
    let scrape = Scrape::fetch(&stack.dp.metrics_url()).await;
    assert_eq!(
        scrape.value("hangar_group_circuit_open", &[("group", "g")]),
        Some(1.0)
    );

    a.restart().await.unwrap();
    eventually("the circuit to close once the member answers", || async {
        let out = client.hangar_call(json!({"calls": [add.clone()]})).await;
        (out["results"][0]["success"] == true).then_some(())
    })
    .await;
    eventually("status to show the group ready", || async {
        let status = stack.cp.status().await;
        let group = status.groups.iter().find(|g| g.id == "g")?;
        (group.state == "ready" && group.circuit_open_on.is_empty()).then_some(())
    })
    .await;
}

//! MCP Hangar's `retry:` keys, as Hangar gives them meaning: a call that
//! reached a member and failed is sent to another member only when the
//! config opts in and that member marks the tool `readOnlyHint` or
//! `idempotentHint`; results then carry `retry_metadata`.

use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::stack::Stack;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_calls_are_retried_only_for_tools_marked_safe() {
    // `bad` gets every call first (priority) and answers it with HTTP 500.
    let bad = FakeMcp::new("bad").fail_calls().start().await;
    let good = FakeMcp::new("good").start().await;
    let yaml = format!(
        "mcp_servers:\n  bad:\n    mode: remote\n    endpoint: \"{}\"\n    max_consecutive_failures: 100\n  good:\n    mode: remote\n    endpoint: \"{}\"\n  g:\n    mode: group\n    strategy: priority\n    circuit_breaker: {{failure_threshold: 100}}\n    members: [{{id: bad, priority: 1}}, {{id: good, priority: 2}}]\nretry:\n  default_policy:\n    max_attempts: 2\n    backoff: constant\n    initial_delay: 0.01\n    retry_on: [server_error]\n",
        bad.url(),
        good.url()
    );
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    let add = json!({"mcp_server": "g", "tool": "add", "arguments": {"a": 1, "b": 2}});
    let out = eventually("both members in rotation", || async {
        let out = client.hangar_call(json!({"calls": [add.clone()]})).await;
        (out["results"][0]["success"] == true).then_some(out)
    })
    .await;
    let result = &out["results"][0];
    assert_eq!(result["served_by"], "good", "{out}");
    let meta = &result["retry_metadata"];
    assert_eq!(meta["attempts"], 2, "{out}");
    assert_eq!(meta["retries"][0]["member"], "bad", "{out}");
    assert!(
        meta["retries"][0]["error"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{out}"
    );

    // `echo` carries no hint: the member that got it answers for it.
    let echo = json!({"mcp_server": "g", "tool": "echo", "arguments": {"text": "x"}});
    let out = client.hangar_call(json!({"calls": [echo]})).await;
    let result = &out["results"][0];
    assert_eq!(result["success"], false, "{out}");
    assert_eq!(result["served_by"], "bad", "{out}");
    assert_eq!(result["retry_metadata"]["attempts"], 1, "{out}");
    assert!(bad.calls() >= 2);
}

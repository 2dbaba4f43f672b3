//! A group whose members list different tools: `server-everything`
//! (`get-sum`, its own `echo`, …) beside the example server (`add`, another
//! `echo`, …). Each call goes to a member that lists its tool, the group
//! lists the union, and status says where the members disagree.

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP, RECIPE_MEMBERS};
use hangar_tests::data_plane::served_counts;
use hangar_tests::eventually::eventually;
use hangar_tests::everything::Everything;
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::stack::Stack;
use serde_json::{Value, json};

/// The group over the two servers, once both have listed their tools and
/// the control plane reports the disagreement.
async fn mixed_group(
    everything: &Everything,
    fake: &hangar_tests::fake_mcp::FakeMcpHandle,
) -> Stack {
    let yaml = GroupConfig::recipe(&[everything.url(), fake.url()]).yaml();
    let stack = Stack::start(&yaml).await;
    eventually("the members' tool lists to be reported", || async {
        let status = stack.cp.status().await;
        let group = status.groups.first()?;
        (group.state == "ready" && !group.tool_warnings.is_empty()).then_some(())
    })
    .await;
    stack
}

/// `hangar_call` sends each tool only to the member that lists it: no
/// `ToolNotFoundError` for a tool the group has, one naming the group for
/// a tool it has not; `hangarctl status` names the disagreement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_goes_to_a_member_that_lists_its_tool() {
    let everything = Everything::start().await;
    let fake = FakeMcp::new("b").start().await;
    let stack = mixed_group(&everything, &fake).await;
    let [a, b] = [RECIPE_MEMBERS[0], RECIPE_MEMBERS[1]];
    let client = stack.client().await;

    let sums = client
        .batch(RECIPE_GROUP, "get-sum", json!({"a": 2, "b": 3}), 10)
        .await;
    assert_eq!(served_counts(&sums), [(a.to_owned(), 10)].into(), "{sums}");
    let adds = client
        .batch(RECIPE_GROUP, "add", json!({"a": 2, "b": 3}), 10)
        .await;
    assert_eq!(served_counts(&adds), [(b.to_owned(), 10)].into(), "{adds}");
    // A tool both list is balanced over both.
    let echoes = client
        .batch(
            RECIPE_GROUP,
            "echo",
            json!({"message": "hi", "text": "hi"}),
            10,
        )
        .await;
    assert_eq!(served_counts(&echoes).len(), 2, "{echoes}");

    let nope = client.batch(RECIPE_GROUP, "nope", json!({}), 1).await;
    let result = &nope["results"][0];
    assert_eq!(result["error_type"], "ToolNotFoundError", "{nope}");
    assert_eq!(
        result["error"],
        format!("Tool 'nope' not found in group '{RECIPE_GROUP}': no member lists it")
    );

    let status = stack.cp.status().await;
    let warnings = &status.groups[0].tool_warnings;
    let line = |prefix: String| warnings.iter().find(|w| w.starts_with(&prefix)).cloned();
    let lacking_a = line(format!("{a} does not list 4 of the group's")).unwrap_or_default();
    assert!(
        lacking_a.ends_with("tools: add, sleep, fail, whoami"),
        "{warnings:?}"
    );
    assert!(line(format!("{b} does not list")).is_some(), "{warnings:?}");
    assert!(
        warnings.contains(&format!(
            "tool 'echo' is defined differently by {a} and {b}"
        )),
        "{warnings:?}"
    );
}

/// The official TypeScript SDK client through `/groups/{g}/mcp`: its
/// `tools/list` shows every tool of the group, and in one session it calls
/// a tool of each member, whichever member holds the session (two sessions,
/// which round robin puts on different members); a tool no member lists is
/// refused by the member, as the one server would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_calls_the_tools_of_every_member() {
    let everything = Everything::start().await;
    let fake = FakeMcp::new("b").start().await;
    let stack = mixed_group(&everything, &fake).await;
    let calls = json!([
        {"name": "get-sum", "arguments": {"a": 2, "b": 3}},
        {"name": "add", "arguments": {"a": 2, "b": 3}},
        {"name": "nope", "arguments": {}},
    ])
    .to_string();
    let url = stack.group_url(RECIPE_GROUP);
    for session in 0..2 {
        let (status, lines, stderr) =
            hangar_tests::ts_sdk::run("mixed_tools_client.mjs", &[&url, &calls]).await;
        assert!(status.success(), "session {session}: {stderr}");
        let tools: Vec<&str> = lines[0]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for tool in ["get-sum", "add", "echo", "whoami"] {
            assert!(tools.contains(&tool), "session {session}: {tools:?}");
        }
        assert_eq!(
            tools.iter().filter(|t| **t == "echo").count(),
            1,
            "each name once: {tools:?}"
        );
        let sum = &lines[1];
        assert_eq!(sum["ok"], true, "session {session}: {sum}");
        let text = sum["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains('5'), "session {session}: {sum}");
        let add = &lines[2];
        assert_eq!(add["ok"], true, "session {session}: {add}");
        assert_eq!(add["result"]["structuredContent"]["sum"], 5, "{add}");
        // A tool no member lists is the member's to refuse, its own way:
        // server-everything with JSON-RPC -32602, the example server with
        // an `isError` result; never an answer of ours.
        let nope = &lines[3];
        let refused =
            nope["ok"] == false && nope["error"].as_str().is_some_and(|e| e.contains("nope"));
        let is_error = nope["ok"] == true && nope["result"]["isError"] == true;
        assert!(refused || is_error, "session {session}: {nope}");
    }
}

/// The official Python SDK client in its default `mode="auto"` and in
/// 2026-07-28 mode: its stateless calls of a tool only the legacy member
/// lists (`server-everything`'s `get-sum`) are served through the data
/// plane's own session with that member, once the member's refusal showed
/// it speaks only the legacy protocol; calls of the other member's tools
/// are served as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_mode_client_calls_the_tools_of_every_era() {
    let everything = Everything::start().await;
    let fake = FakeMcp::new("b").start().await;
    let stack = mixed_group(&everything, &fake).await;
    let url = stack.group_url(RECIPE_GROUP);
    // Auto mode lands on either era, depending on which member the era
    // probe meets first; 2026-07-28 mode always speaks the new one.
    for mode in ["auto", "2026-07-28"] {
        for (tool, args) in [("get-sum", r#"{"a":2,"b":3}"#), ("add", r#"{"a":2,"b":3}"#)] {
            let (status, lines, stderr) = hangar_tests::python_sdk::run_client(&[
                "--mode", mode, &url, "call", tool, args, "--n", "4",
            ])
            .await;
            assert!(status.success(), "{mode} {tool}: {stderr}");
            assert_eq!(lines.len(), 4, "{mode} {tool}: {lines:?}");
            for line in &lines {
                assert_eq!(line["ok"], true, "{mode} {tool}: {line}");
                assert_eq!(line["is_error"], false, "{mode} {tool}: {line}");
                if mode != "auto" {
                    assert_eq!(line["protocol_version"], mode, "{tool}: {line}");
                }
            }
        }
    }
}

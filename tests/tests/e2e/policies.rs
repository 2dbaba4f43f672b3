//! `tools:` access policies as clients meet them: a denied tool is absent
//! from the group's `tools/list`, refused on call with a JSON-RPC error or
//! a `hangar_call` error naming the policy, and never reaches a member; a
//! member whose entry allows less serves only what it allows.

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::data_plane::served_counts;
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::raw::Raw;
use hangar_tests::stack::Stack;
use serde_json::{Value, json};

async fn two_members() -> (Vec<FakeMcpHandle>, Vec<String>) {
    let mut servers = Vec::new();
    for name in ["a", "b"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    let urls = servers.iter().map(FakeMcpHandle::url).collect();
    (servers, urls)
}

/// The group denies `sleep` and `fail*`; the group's entry for `my-mcp`
/// allows only `add`.
fn config(urls: &[String]) -> String {
    GroupConfig::recipe(urls).yaml().replacen(
        "      - id: my-mcp\n",
        "      - id: my-mcp\n        tools: {allow_list: [add]}\n",
        1,
    ) + "    tools: {deny_list: [sleep, 'fail*']}\n"
}

fn tool_names(answer: &Value) -> Vec<String> {
    let mut names: Vec<String> = answer["result"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Reads a JSON or SSE answer as its one JSON-RPC message.
async fn message(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or(&text);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_tools_are_hidden_refused_and_never_sent() {
    let (servers, urls) = two_members().await;
    let stack = Stack::start(&config(&urls)).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: stack.group_url(RECIPE_GROUP),
    };
    let session = raw.initialize().await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let names = eventually("the members' tools are listed", || async {
        let names = tool_names(&message(raw.post(Some(&session), list.clone()).await).await);
        names.contains(&"add".to_owned()).then_some(names)
    })
    .await;
    assert_eq!(names, ["add", "echo", "whoami"]);

    let before: u64 = servers.iter().map(FakeMcpHandle::calls).sum();
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 1}}});
    let refused = raw.post(Some(&session), call).await;
    assert_eq!(refused.status(), 200);
    let refused = message(refused).await;
    assert_eq!(refused["id"], 3);
    assert_eq!(refused["error"]["code"], -32602);
    assert_eq!(
        refused["error"]["message"],
        "Tool not available for this mcp_server: 'sleep' is denied by tools.deny_list of group 'my-mcp-group' ('sleep')"
    );

    let client = stack.client().await;
    let out = client.batch(RECIPE_GROUP, "fail", json!({}), 1).await;
    let result = &out["results"][0];
    assert_eq!(result["error_type"], "ToolAccessDeniedError", "{out}");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .ends_with("is denied by tools.deny_list of group 'my-mcp-group' ('fail*')")
    );
    let after: u64 = servers.iter().map(FakeMcpHandle::calls).sum();
    assert_eq!(after, before, "no member saw a denied call");

    // `my-mcp` may serve `add` only: `echo` goes to the backup every time,
    // `add` to both.
    let echoes = client
        .batch(RECIPE_GROUP, "echo", json!({"text": "hi"}), 6)
        .await;
    assert_eq!(
        served_counts(&echoes).into_iter().collect::<Vec<_>>(),
        [("my-mcp-backup".to_owned(), 6)]
    );
    let adds = client
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 6)
        .await;
    assert_eq!(served_counts(&adds).len(), 2, "{adds}");
    stack.stop().await;
}

/// A server's own policy holds when it is named directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_policy_holds_when_it_is_named_directly() {
    let (_servers, urls) = two_members().await;
    let yaml = GroupConfig::recipe(&urls).yaml().replacen(
        "  my-mcp-backup:\n    mode: remote\n",
        "  my-mcp-backup:\n    mode: remote\n    tools: {deny_list: [whoami]}\n",
        1,
    );
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    let out = client.batch("my-mcp-backup", "whoami", json!({}), 1).await;
    assert_eq!(
        out["results"][0]["error_type"], "ToolAccessDeniedError",
        "{out}"
    );
    assert_eq!(
        out["results"][0]["error"],
        "Tool not available for this mcp_server: 'whoami' is denied by tools.deny_list of server 'my-mcp-backup' ('whoami')"
    );
    // Through the group, the other member serves it.
    let through = client.batch(RECIPE_GROUP, "whoami", json!({}), 4).await;
    assert_eq!(
        served_counts(&through).into_iter().collect::<Vec<_>>(),
        [("my-mcp".to_owned(), 4)]
    );
    stack.stop().await;
}

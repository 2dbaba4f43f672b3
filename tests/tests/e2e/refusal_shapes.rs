//! Every refusal on an MCP endpoint is a JSON-RPC error, with the request's
//! id when it could be read: the data plane's own, the MCP library's on
//! `/mcp`, and a member's plain-text ones relayed through `/groups`
//! (`server-everything`, a member we did not write).

use hangar_tests::everything::Everything;
use hangar_tests::stack::Stack;
use serde_json::{Value, json};

/// One request of the table, and whether its id must come back.
struct Case {
    what: &'static str,
    method: reqwest::Method,
    path: String,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
    id: Value,
}

fn post(
    what: &'static str,
    path: &str,
    headers: &[(&'static str, &'static str)],
    body: String,
    id: Value,
) -> Case {
    Case {
        what,
        method: reqwest::Method::POST,
        path: path.to_owned(),
        headers: headers.to_vec(),
        body,
        id,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_a_jsonrpc_error_with_the_request_id() {
    let everything = Everything::start().await;
    let yaml = format!(
        "mcp_servers:\n  e:\n    mode: remote\n    endpoint: \"{}\"\n  g:\n    mode: group\n    members: [{{id: e}}]\n",
        everything.url()
    );
    let stack = Stack::start(&yaml).await;
    let both = ("accept", "application/json, text/event-stream");
    let json_type = ("content-type", "application/json");
    let ping = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string();
    let init = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}})
        .to_string()
    };
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let modern = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"message": "x"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}}}})
        .to_string()
    };
    let group = "/groups/g/mcp";
    let cases = vec![
        post(
            "text/plain on /mcp",
            "/mcp",
            &[both, ("content-type", "text/plain")],
            init(1),
            json!(1),
        ),
        post(
            "no content type on /mcp",
            "/mcp",
            &[both],
            init(2),
            json!(2),
        ),
        post(
            "accept json only on /mcp",
            "/mcp",
            &[("accept", "application/json"), json_type],
            init(3),
            json!(3),
        ),
        post(
            "100k-deep body on /mcp",
            "/mcp",
            &[both, json_type],
            deep.clone(),
            Value::Null,
        ),
        post(
            "text/plain on /groups",
            group,
            &[both, ("content-type", "text/plain")],
            init(4),
            json!(4),
        ),
        post(
            "no content type on /groups",
            group,
            &[both],
            init(5),
            json!(5),
        ),
        post(
            "accept json only on /groups",
            group,
            &[("accept", "application/json"), json_type],
            init(6),
            json!(6),
        ),
        post(
            "100k-deep body on /groups",
            group,
            &[both, json_type],
            deep,
            Value::Null,
        ),
        post(
            "2026-07-28, accept json only, on /groups",
            group,
            &[
                ("accept", "application/json"),
                json_type,
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
            modern(7),
            json!(7),
        ),
        post(
            "unknown session on /groups",
            group,
            &[both, json_type, ("mcp-session-id", "nope")],
            ping(8),
            json!(8),
        ),
        Case {
            what: "DELETE of an unknown session on /mcp",
            method: reqwest::Method::DELETE,
            path: "/mcp".into(),
            headers: vec![("mcp-session-id", "0123456789abcdef")],
            body: String::new(),
            id: Value::Null,
        },
        Case {
            what: "GET /mcp without a session",
            method: reqwest::Method::GET,
            path: "/mcp".into(),
            headers: vec![("accept", "text/event-stream")],
            body: String::new(),
            id: Value::Null,
        },
    ];
    let http = reqwest::Client::new();
    let mut wrong = Vec::new();
    for case in cases {
        let url = format!("http://{}{}", stack.dp.addr(), case.path);
        let mut request = http.request(case.method, &url).body(case.body);
        for (name, value) in case.headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("an answer");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let shaped = (status.is_client_error() || status.is_server_error())
            && message["jsonrpc"] == "2.0"
            && message["error"]["code"].is_i64()
            && message["error"]["message"].is_string()
            && message["id"] == case.id;
        if !shaped {
            wrong.push(format!("{}: HTTP {status}: {text:.200}", case.what));
        }
    }
    assert!(
        wrong.is_empty(),
        "refusals that are not JSON-RPC errors with the id:\n{}",
        wrong.join("\n")
    );
    stack.stop().await;
}

//! What MCP clients see of member failures: the member's id and what went
//! wrong, never its address. Operators still see the address and the full
//! cause in `hangarctl status`.

use std::net::SocketAddr;

use hangar_tests::raw::Raw;
use hangar_tests::stack::Stack;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// A member that accepts connections and closes them once the request
/// arrives, so the data plane's send fails after connecting.
async fn hang_up_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0; 1024];
            let _ = stream.read(&mut buf).await;
        }
    });
    addr
}

/// A member that answers every request with 500 and internal detail.
async fn failing_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async {
        (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "database at 10.9.8.7:5432 is down",
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Servers that stay in rotation however often they fail, so every call
/// reaches them, and a group over each.
fn config(members: &[(&str, SocketAddr)]) -> String {
    let mut yaml = String::from("mcp_servers:\n");
    for (id, addr) in members {
        yaml.push_str(&format!(
            "  {id}:\n    mode: remote\n    endpoint: \"http://{addr}/mcp\"\n    health_check_interval_s: 3600\n    max_consecutive_failures: 1000000\n  g-{id}:\n    mode: group\n    members:\n      - id: {id}\n"
        ));
    }
    yaml
}

/// Fails the test if `text` shows any of the members' addresses.
fn assert_no_address(text: &str, members: &[(&str, SocketAddr)]) {
    assert!(!text.contains("127.0.0.1"), "address leaked: {text}");
    assert!(!text.contains("10.9.8.7"), "member detail leaked: {text}");
    for (_, addr) in members {
        let port = format!(":{}", addr.port());
        assert!(!text.contains(&port), "port leaked: {text}");
    }
}

/// Connection refused, a member that hangs up, and a member answering 500:
/// `hangar_call` results, `hangar_status` and the group endpoint's errors
/// name the member and the kind of failure but no address; `hangarctl
/// status` keeps the endpoint and the cause for the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_addresses_never_reach_clients() {
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let members = [
        ("refused", refused),
        ("hangs-up", hang_up_server().await),
        ("failing", failing_server().await),
    ];
    let stack = Stack::start(&config(&members)).await;
    let client = stack.client().await;
    let calls: Vec<Value> = members
        .iter()
        .flat_map(|(id, _)| {
            [id.to_string(), format!("g-{id}")]
                .map(|target| json!({"mcp_server": target, "tool": "add", "arguments": {}}))
        })
        .collect();
    let out = client.hangar_call(json!({"calls": calls})).await;
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    let errors: Vec<&str> = results
        .iter()
        .map(|r| r["error"].as_str().expect("every call fails"))
        .collect();
    assert!(
        errors[0].starts_with(
            "connection_failed: connection failed: connection refused (member 'refused')"
        ),
        "{errors:?}"
    );
    assert!(errors[2].starts_with("transport_error: "), "{errors:?}");
    assert!(errors[4].contains("HTTP 500"), "{errors:?}");
    assert_no_address(&out.to_string(), &members);
    let status = client.call("hangar_status", json!({})).await;
    assert_no_address(&status.to_string(), &members);

    for (id, _) in &members[..2] {
        let raw = Raw {
            http: reqwest::Client::new(),
            url: stack.group_url(&format!("g-{id}")),
        };
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
        let response = raw.post(None, body).await;
        assert_eq!(response.status(), 502, "{id}");
        let text = response.text().await.unwrap();
        assert!(text.contains(&format!("member '{id}' failed")), "{text}");
        assert_no_address(&text, &members);
    }

    let operator = stack.cp.status().await;
    let refused_view = operator
        .servers
        .iter()
        .find(|s| s.id == "refused")
        .expect("refused in status");
    assert_eq!(refused_view.endpoint, format!("http://{refused}/mcp"));
    stack.stop().await;
}

/// Arguments that fail a tool's input schema are the caller's mistake:
/// `server-everything` (the TypeScript SDK) answers them with an `isError`
/// result carrying -32602, which `hangar_call` classes
/// `InvalidArgumentsError`, not `ToolInvocationError`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_arguments_are_named_as_such() {
    let everything = hangar_tests::everything::Everything::start().await;
    let yaml = format!(
        "mcp_servers:\n  e:\n    mode: remote\n    endpoint: \"{}\"\n",
        everything.url()
    );
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    let call = json!({"mcp_server": "e", "tool": "get-sum", "arguments": {"a": "one", "b": 2}});
    let out = client.hangar_call(json!({"calls": [call]})).await;
    let result = &out["results"][0];
    assert_eq!(result["error_type"], "InvalidArgumentsError", "{out}");
    assert_eq!(result["result"]["isError"], true, "{out}");
}

//! `hangar-data-plane --access-log LEVEL`: one structured line per MCP
//! request, as an operator reads it from the binary's log output.

use std::process::Stdio;
use std::sync::Arc;

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::McpClient;
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::raw::Raw;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

#[path = "support/binary.rs"]
mod binary;

/// An argument value no log line may carry.
const SECRET_ARGUMENT: i64 = 987_654_321;

/// A call through a group endpoint and a `hangar_call` batch each give one
/// JSON line under `hangar::access`, at the level asked for (debug, below
/// the default filter), naming group, method, tool, member, attempts,
/// status and duration, and never the arguments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_gets_one_line_without_its_arguments() {
    let member = FakeMcp::new("a").start().await;
    let cp = ControlPlane::start().await;
    let port = hangar_tests::free_port();
    let mut child = binary::data_plane(&cp.url(), "dp-access", port)
        .args(["--access-log", "debug", "--log-format", "json"])
        .env_remove("HANGAR_LOG")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn data plane");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut reader = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let kept = lines.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = reader.next_line().await {
            kept.lock().push(line);
        }
    });
    cp.apply_and_wait(&GroupConfig::recipe(&[member.url()]).yaml(), 1)
        .await;
    let base = format!("http://127.0.0.1:{port}");

    let raw = Raw {
        http: reqwest::Client::new(),
        url: format!("{base}/groups/{RECIPE_GROUP}/mcp"),
    };
    let session = raw.initialize().await;
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": SECRET_ARGUMENT, "b": 1}}});
    let answer = raw.post(Some(&session), call).await;
    assert_eq!(answer.status(), 200);
    let _ = answer.bytes().await;
    let client = McpClient::connect(&format!("{base}/mcp")).await;
    let calls: Vec<_> = (0..3)
        .map(|_| json!({"mcp_server": RECIPE_GROUP, "tool": "add", "arguments": {"a": SECRET_ARGUMENT, "b": 2}}))
        .collect();
    let out = client.hangar_call(json!({ "calls": calls })).await;
    assert_eq!(out["succeeded"], 3, "{out}");

    let access = |lines: &[String]| -> Vec<Value> {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["target"] == "hangar::access")
            .collect()
    };
    let entries = eventually("the access-log lines of both calls", || {
        let entries = access(&lines.lock());
        let batch = entries.iter().any(|e| e["tool"] == "hangar_call");
        let group_call = entries.iter().any(|e| e["tool"] == "add");
        std::future::ready((batch && group_call).then_some(entries))
    })
    .await;
    child.kill().await.expect("stop the data plane");

    let group_call = entries.iter().find(|e| e["tool"] == "add").unwrap();
    assert_eq!(group_call["level"], "DEBUG", "{group_call}");
    assert_eq!(group_call["route"], "/groups/{group}/mcp");
    assert_eq!(group_call["method"], "tools/call");
    assert_eq!(group_call["group"], RECIPE_GROUP);
    assert_eq!(group_call["member"], "my-mcp");
    assert_eq!(group_call["attempts"], 1);
    assert_eq!(group_call["status"], 200);
    assert_eq!(group_call["outcome"], "ok");
    assert!(group_call["duration_ms"].as_f64().is_some_and(|d| d > 0.0));
    assert!(group_call["timestamp"].is_string());
    assert_eq!(group_call["session"].as_str().map(str::len), Some(16));
    assert_eq!(
        group_call["principal"],
        Value::Null,
        "anonymous: no principal"
    );

    let batch = entries.iter().find(|e| e["tool"] == "hangar_call").unwrap();
    assert_eq!(batch["route"], "/mcp");
    assert_eq!(batch["calls"], 3);
    assert_eq!(batch["attempts"], 3);
    assert_eq!(batch["group"], RECIPE_GROUP);
    assert_eq!(batch["member"], "my-mcp");
    assert_eq!(batch["outcome"], "ok");

    // Every request of the session has its line (initialize, the
    // notification, the call), and none carries an argument.
    let initialize = entries
        .iter()
        .filter(|e| e["method"] == "initialize")
        .count();
    assert!(initialize >= 2, "both sessions' initialize: {entries:#?}");
    let all = lines.lock().join("\n");
    assert!(!all.contains(&SECRET_ARGUMENT.to_string()), "{all}");
    cp.stop().await;
}

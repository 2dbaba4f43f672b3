//! Members that fail the way real ones do, and come back: killed and
//! restarted on the same port, against a server we did not write.

use hangar_tests::eventually::eventually;
use hangar_tests::everything::Everything;
use hangar_tests::stack::Stack;
use serde_json::json;

fn group_of(servers: &[Everything]) -> String {
    let mut yaml = String::from("mcp_servers:\n");
    for (i, server) in servers.iter().enumerate() {
        yaml.push_str(&format!(
            "  e{i}:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 0.2\n    max_consecutive_failures: 1\n",
            server.url()
        ));
    }
    yaml.push_str("  g:\n    mode: group\n    strategy: round_robin\n    members:\n");
    for i in 0..servers.len() {
        yaml.push_str(&format!("      - id: e{i}\n"));
    }
    yaml
}

async fn wait_for_state(stack: &Stack, id: &str, want: &str) {
    eventually(&format!("{id} to be {want}"), || async {
        let status = stack.cp.status().await;
        status
            .servers
            .iter()
            .any(|s| s.id == id && s.state == want)
            .then_some(())
    })
    .await;
}

/// `kill -9` one of three `server-everything` members and start it again on
/// the same port: the member leaves rotation, and is back as soon as it
/// answers, though it answers the session we held with the dead process
/// with 400 (not 404); calls through the group reach all three again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restarted_on_the_same_port_is_back_in_rotation() {
    let mut servers = vec![
        Everything::start().await,
        Everything::start().await,
        Everything::start().await,
    ];
    let stack = Stack::start(&group_of(&servers)).await;
    for id in ["e0", "e1", "e2"] {
        wait_for_state(&stack, id, "ready").await;
    }
    servers[1].kill().await;
    wait_for_state(&stack, "e1", "dead").await;
    servers[1].restart().await;
    wait_for_state(&stack, "e1", "ready").await;

    let client = stack.client().await;
    let call = json!({"mcp_server": "g", "tool": "echo", "arguments": {"message": "hi"}});
    // Back in rotation, it ramps up from a tenth of its share (slow start).
    eventually(
        "calls through the group to reach the restarted member",
        || async {
            let out = client
                .hangar_call(json!({"calls": vec![call.clone(); 6]}))
                .await;
            let results = out["results"].as_array().unwrap();
            assert!(results.iter().all(|r| r["success"] == true), "{out}");
            results.iter().any(|r| r["served_by"] == "e1").then_some(())
        },
    )
    .await;
}

/// A 2026-07-28 request to a group whose members are all out of rotation
/// gets 503 and a JSON-RPC error with its id naming the group, as a legacy
/// request does; not the "Missing session ID" a legacy-only server gives,
/// which would send the client on to `initialize`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_no_member_in_rotation_is_unavailable_in_both_eras() {
    let mut servers = vec![Everything::start().await, Everything::start().await];
    let stack = Stack::start(&group_of(&servers)).await;
    for server in &mut servers {
        server.kill().await;
    }
    wait_for_state(&stack, "e0", "dead").await;
    wait_for_state(&stack, "e1", "dead").await;

    let http = reqwest::Client::new();
    let modern = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"message": "hi"},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let answer = http
        .post(stack.group_url("g"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .body(modern.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["id"], 7, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("group 'g'"), "{message}");

    let legacy = json!({"jsonrpc": "2.0", "id": 8, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let answer = http
        .post(stack.group_url("g"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(legacy.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["id"], 8, "{body}");
}

/// A legacy SSE answer that the member breaks off (killed mid-call, after
/// it sent progress) ends with a JSON-RPC error event for the pending
/// request naming the member, so the client's call fails with a reason
/// instead of waiting on a stream that just stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_sse_answer_ends_with_an_error_naming_the_member() {
    use hangar_tests::python_sdk::{Mode, PyBackend};
    use hangar_tests::raw::Raw;

    let mut backend = PyBackend::start("py", Mode::Stateful).await;
    let yaml = format!(
        "mcp_servers:\n  py:\n    mode: remote\n    endpoint: \"{}\"\n  g:\n    mode: group\n    members:\n      - id: py\n",
        backend.url()
    );
    let stack = Stack::start(&yaml).await;
    wait_for_state(&stack, "py", "ready").await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: stack.group_url("g"),
    };
    let session = raw.initialize().await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "sleep", "arguments": {"ms": 20000}, "_meta": {"progressToken": "p"}}});
    let mut answer = raw.post(Some(&session), call).await;
    assert_eq!(answer.status(), 200);
    let mut seen = String::new();
    while !seen.contains("notifications/progress") {
        let chunk = answer
            .chunk()
            .await
            .unwrap()
            .expect("progress before the end");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    backend.stop().await;
    let rest = tokio::time::timeout(hangar_tests::eventually::PATIENCE, async {
        let mut rest = String::new();
        while let Ok(Some(chunk)) = answer.chunk().await {
            rest.push_str(&String::from_utf8_lossy(&chunk));
        }
        rest
    })
    .await
    .expect("the stream ends");
    let event = rest
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .find(|message| message["id"] == 2)
        .unwrap_or_else(|| panic!("no answer for id 2 in {rest:?}"));
    let message = event["error"]["message"].as_str().unwrap();
    assert!(message.contains("member 'py'"), "{message}");
}

/// Three members of the official Python SDK under steady calls; one is
/// stopped with SIGSTOP (it accepts connections and answers nothing). It
/// leaves rotation long before three read timeouts or three failed probes
/// could take it out (30 s each here): its calls went silent and its check
/// failed. Calls started after that are served by the other two; the calls
/// that were on it finish once it is continued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_member_leaves_rotation_without_waiting_for_timeouts() {
    use hangar_tests::process::send_signal;
    use hangar_tests::python_sdk::{Mode, PyBackend};

    let backends = [
        PyBackend::start("p0", Mode::Stateful).await,
        PyBackend::start("p1", Mode::Stateful).await,
        PyBackend::start("p2", Mode::Stateful).await,
    ];
    let mut yaml = String::from("mcp_servers:\n");
    for (i, backend) in backends.iter().enumerate() {
        yaml.push_str(&format!(
            "  p{i}:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 30\n",
            backend.url()
        ));
    }
    yaml.push_str("  g:\n    mode: group\n    members: [{id: p0}, {id: p1}, {id: p2}]\n");
    let stack = Stack::start(&yaml).await;
    for id in ["p0", "p1", "p2"] {
        wait_for_state(&stack, id, "ready").await;
    }
    let hung = backends[1].pid().unwrap();
    send_signal(hung, "STOP");
    let client = stack.client().await;
    let call = json!({"mcp_server": "g", "tool": "add", "arguments": {"a": 1, "b": 2}});
    // One batch lands a call on the stopped member; it stays in flight.
    let in_flight = tokio::spawn({
        let client = stack.client().await;
        let call = call.clone();
        async move { client.hangar_call(json!({"calls": vec![call; 3]})).await }
    });
    wait_for_state(&stack, "p1", "dead").await;
    let status = stack.cp.status().await;
    let p1 = status.servers.iter().find(|s| s.id == "p1").unwrap();
    assert!(p1.last_error.starts_with("hung"), "{}", p1.last_error);

    let out = client.hangar_call(json!({"calls": vec![call; 6]})).await;
    let results = out["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["success"] == true), "{out}");
    assert!(results.iter().all(|r| r["served_by"] != "p1"), "{out}");

    send_signal(hung, "CONT");
    let earlier = in_flight.await.unwrap();
    let results = earlier["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["success"] == true), "{earlier}");
}

/// A tool that answers in one JSON body after longer than the member's
/// read timeout fails that call, but the member answers its probe, so it is
/// busy, not broken: three such calls leave it in rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_calls_do_not_eject_a_member_that_answers_its_probe() {
    use hangar_tests::python_sdk::{Mode, PyBackend};

    let backend = PyBackend::start("slow", Mode::JsonResponse).await;
    let yaml = format!(
        "mcp_servers:\n  slow:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 30\n    http:\n      read_timeout: 0.5\n",
        backend.url()
    );
    let stack = Stack::start(&yaml).await;
    wait_for_state(&stack, "slow", "ready").await;
    let client = stack.client().await;
    let long = json!({"mcp_server": "slow", "tool": "sleep", "arguments": {"ms": 1500}});
    for _ in 0..3 {
        let out = client.hangar_call(json!({"calls": [long.clone()]})).await;
        assert_eq!(out["results"][0]["error_type"], "TimeoutError", "{out}");
    }
    let add = json!({"mcp_server": "slow", "tool": "add", "arguments": {"a": 1, "b": 2}});
    let out = client.hangar_call(json!({"calls": [add]})).await;
    assert_eq!(out["results"][0]["success"], true, "{out}");
    // The data plane's own view, with no report interval in between.
    let local = client.call("hangar_status", json!({})).await;
    let slow = &local["servers"][0];
    assert_eq!(slow["id"], "slow", "{local}");
    assert_eq!(slow["healthy"], true, "{local}");
    assert_eq!(slow["consecutive_failures"], 0, "{local}");
}

/// Two members of the official Python SDK server in a group with short
/// probes, and a stack serving them.
async fn stateful_pair(extra: &str) -> ([hangar_tests::python_sdk::PyBackend; 2], Stack) {
    use hangar_tests::python_sdk::{Mode, PyBackend};

    let backends = [
        PyBackend::start("p0", Mode::Stateful).await,
        PyBackend::start("p1", Mode::Stateful).await,
    ];
    let mut yaml = String::from("mcp_servers:\n");
    for (i, backend) in backends.iter().enumerate() {
        yaml.push_str(&format!(
            "  p{i}:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 0.2\n    max_consecutive_failures: 1\n",
            backend.url()
        ));
    }
    yaml.push_str(&format!(
        "  g:\n    mode: group\n    members: [{{id: p0}}, {{id: p1}}]\n{extra}"
    ));
    let stack = Stack::start(&yaml).await;
    for id in ["p0", "p1"] {
        wait_for_state(&stack, id, "ready").await;
    }
    (backends, stack)
}

/// The official SDK clients keep their session after its member dies and
/// never initialize again by themselves. With session recovery (on by
/// default) their next call is served by the other member, in the same
/// session id; the call in between the kill and the member's ejection is
/// the only one that may fail.
async fn sdk_session_survives_its_member(
    start: impl AsyncFnOnce(&str) -> (hangar_tests::conversation::Conversation, serde_json::Value),
) {
    let (mut backends, stack) = stateful_pair("").await;
    let (mut client, hello) = start(&stack.group_url("g")).await;
    let first = client.call().await;
    assert_eq!(first["ok"], true, "{first}");
    let holder = first["served_by"].as_str().unwrap().to_owned();
    let index = usize::from(holder == "p1");
    backends[index].stop().await;
    wait_for_state(&stack, &holder, "dead").await;
    for _ in 0..3 {
        let next = client.call().await;
        assert_eq!(next["ok"], true, "{next}");
        assert_ne!(next["served_by"], holder, "{next}");
        if let Some(id) = hello.get("sessionId") {
            assert_eq!(next["sessionId"], *id, "the client's session id stays");
        }
    }
    client.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_sdk_session_survives_its_member() {
    sdk_session_survives_its_member(hangar_tests::ts_sdk::session_client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_sdk_session_survives_its_member() {
    sdk_session_survives_its_member(hangar_tests::python_sdk::session_client).await;
}

/// `session_recovery: false` keeps the spec's answer for servers whose
/// per-session state must not be silently lost: 404, and the client starts
/// over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_session_recovery_a_dead_members_session_is_not_found() {
    let (mut backends, stack) = stateful_pair("    session_recovery: false\n").await;
    let (mut client, _) = hangar_tests::ts_sdk::session_client(&stack.group_url("g")).await;
    let first = client.call().await;
    let holder = first["served_by"].as_str().unwrap().to_owned();
    backends[usize::from(holder == "p1")].stop().await;
    wait_for_state(&stack, &holder, "dead").await;
    let next = client.call().await;
    assert_eq!(next["ok"], false, "{next}");
    assert!(
        next["error"]
            .as_str()
            .unwrap()
            .contains("Session not found"),
        "{next}"
    );
    client.finish().await;
}

/// A session opened on one data plane is recovered by another that never
/// saw it: the id carries what it needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_data_plane_recovers_a_session_it_never_saw() {
    use hangar_tests::data_plane::DataPlane;
    use hangar_tests::raw::Raw;

    let (mut backends, stack) = stateful_pair("").await;
    let first = Raw {
        http: reqwest::Client::new(),
        url: stack.group_url("g"),
    };
    let session = first.initialize().await;
    let holder = first.whoami(&session).await.unwrap();
    backends[usize::from(holder == "p1")].stop().await;
    wait_for_state(&stack, &holder, "dead").await;

    let other = DataPlane::start(&stack.cp.url(), "dp-2").await;
    let second = Raw {
        http: reqwest::Client::new(),
        url: format!("http://{}/groups/g/mcp", other.addr()),
    };
    let served = eventually("dp-2 to serve the session", || async {
        second.whoami(&session).await.ok()
    })
    .await;
    assert_ne!(served, holder);
    other.stop().await;
}

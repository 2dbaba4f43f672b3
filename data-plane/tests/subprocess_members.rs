//! `mode: subprocess` members through the real data plane binary, with the
//! official Python SDK server over stdio: a server scaled with `replicas`
//! and a group of separate stdio servers are balanced round robin, a killed
//! copy is restarted and rejoins, a hung copy is killed and restarted, and
//! SIGTERM leaves no process behind.

use std::collections::BTreeMap;
use std::process::Stdio;

use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::{McpClient, served_counts};
use hangar_tests::eventually::eventually;
use hangar_tests::process::send_signal;
use hangar_tests::python_sdk::{example_server, python};
use serde_json::{Value, json};

#[path = "support/binary.rs"]
mod binary;

fn stdio_server(id: &str, name: &str, replicas: u32) -> String {
    format!(
        "  {id}:\n    mode: subprocess\n    command: [\"{}\", \"{}\"]\n    args: [--transport, stdio, --name, {name}]\n    replicas: {replicas}\n    health_check_interval_s: 0.2\n    max_consecutive_failures: 1\n",
        python().display(),
        example_server().display()
    )
}

/// How many of a batch of `n` `whoami` calls each process served; `Err`
/// with the first failed result if any call failed.
async fn try_pids(
    client: &McpClient,
    target: &str,
    n: usize,
) -> Result<BTreeMap<u64, usize>, Value> {
    let calls = vec![json!({"mcp_server": target, "tool": "whoami", "arguments": {}}); n];
    let out = client
        .hangar_call(json!({"calls": calls, "max_concurrency": 1}))
        .await;
    let mut pids = BTreeMap::new();
    for result in out["results"].as_array().expect("results") {
        let pid = result["result"]["structuredContent"]["pid"]
            .as_u64()
            .ok_or_else(|| result.clone())?;
        *pids.entry(pid).or_default() += 1;
    }
    Ok(pids)
}

/// [`try_pids`] where every call must succeed.
async fn pids(client: &McpClient, target: &str, n: usize) -> BTreeMap<u64, usize> {
    try_pids(client, target, n)
        .await
        .unwrap_or_else(|failed| panic!("every call succeeds: {failed}"))
}

/// The data plane binary following `cp` as `node_id` on a free port.
fn spawn_data_plane(cp: &ControlPlane, node_id: &str) -> (tokio::process::Child, u16) {
    let port = hangar_tests::free_port();
    let child = binary::data_plane(&cp.url(), node_id, port)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn data plane");
    (child, port)
}

fn is_running(pid: u64) -> bool {
    // A zombie still has a /proc entry; it is reaped, not running.
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|status| !status.lines().any(|l| l.starts_with("State:\tZ")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_and_groups_of_stdio_servers_are_balanced_restarted_and_stopped() {
    let cp = ControlPlane::start().await;
    let (mut child, port) = spawn_data_plane(&cp, "dp-sub");
    let yaml = format!(
        "mcp_servers:\n{}{}{}{}  trio:\n    mode: group\n    strategy: round_robin\n    members: [{{id: s1}}, {{id: s2}}, {{id: s3}}]\n",
        stdio_server("math", "m", 3),
        stdio_server("s1", "s1", 1),
        stdio_server("s2", "s2", 1),
        stdio_server("s3", "s3", 1),
    );
    cp.apply_and_wait(&yaml, 1).await;
    let status = eventually("every subprocess server to be ready", || async {
        let status = cp.status().await;
        status
            .servers
            .iter()
            .all(|s| s.state == "ready")
            .then_some(status)
    })
    .await;
    let math = status.servers.iter().find(|s| s.id == "math").unwrap();
    assert_eq!((math.mode.as_str(), math.replicas), ("subprocess", 3));
    let client = McpClient::connect(&format!("http://127.0.0.1:{port}/mcp")).await;

    // A group of three stdio servers, round robin.
    let calls =
        vec![json!({"mcp_server": "trio", "tool": "add", "arguments": {"a": 1, "b": 2}}); 30];
    let out = client
        .hangar_call(json!({"calls": calls, "max_concurrency": 1}))
        .await;
    let counts: Vec<usize> = served_counts(&out).values().copied().collect();
    assert_eq!(counts, [10, 10, 10], "{out}");

    // Any MCP client can point at the group: the official Python SDK client,
    // one fresh session per call, lands on each stdio server in turn.
    let group_url = format!("http://127.0.0.1:{port}/groups/trio/mcp");
    let (exit, lines, stderr) = hangar_tests::python_sdk::run_client(&[
        "--mode",
        "legacy",
        &group_url,
        "call",
        "add",
        r#"{"a":1,"b":2}"#,
        "--n",
        "6",
        "--fresh",
    ])
    .await;
    assert!(exit.success(), "{stderr}");
    let mut served: Vec<&str> = lines
        .iter()
        .map(|l| l["served_by"].as_str().unwrap_or("?"))
        .collect();
    served.sort_unstable();
    assert_eq!(served, ["s1", "s1", "s2", "s2", "s3", "s3"], "{lines:?}");
    assert!(
        lines.iter().all(|l| l["structured"]["sum"] == 3),
        "{lines:?}"
    );

    // One server with three replicas: three processes, in turn.
    let before = pids(&client, "math", 30).await;
    assert_eq!(before.values().copied().collect::<Vec<_>>(), [10, 10, 10]);

    // Kill one copy: it is restarted and rejoins with a new process. A call
    // that meets the copy as it dies fails (it may have been delivered);
    // the copy then leaves rotation until its new process answers a probe.
    let killed = *before.keys().next().unwrap();
    send_signal(u32::try_from(killed).unwrap(), "KILL");
    let after = eventually("the killed copy to be back with a new process", || async {
        let pids = try_pids(&client, "math", 9).await.ok()?;
        (pids.len() == 3 && !pids.contains_key(&killed)).then_some(pids)
    })
    .await;
    let survivors: Vec<u64> = before.keys().copied().filter(|p| *p != killed).collect();
    assert!(
        survivors.iter().all(|p| after.contains_key(p)),
        "{before:?} {after:?}"
    );

    // SIGTERM: the data plane stops every process it started, then exits 0.
    let mut started: Vec<u64> = after.keys().copied().collect();
    for target in ["s1", "s2", "s3"] {
        started.extend(pids(&client, target, 1).await.keys());
    }
    assert_eq!(started.len(), 6);
    assert!(started.iter().all(|p| is_running(*p)));
    send_signal(child.id().expect("running"), "TERM");
    let exit = child.wait().await.expect("wait");
    assert!(exit.success(), "{exit}");
    let left: Vec<&u64> = started.iter().filter(|p| is_running(**p)).collect();
    assert!(
        left.is_empty(),
        "processes left after the data plane exited: {left:?}"
    );
    let status: Value = json!(cp.status().await.servers.len());
    assert_eq!(status, 4);
    cp.stop().await;
}

/// A copy that hangs (SIGSTOP: it reads nothing and answers nothing) fails
/// its probes; after `max_consecutive_failures` of them it is killed and
/// started again, and calls are served by both copies once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_copy_is_killed_and_restarted() {
    let cp = ControlPlane::start().await;
    let (mut child, port) = spawn_data_plane(&cp, "dp-hung");
    let yaml = format!("mcp_servers:\n{}", stdio_server("pair", "pair", 2))
        .replace("max_consecutive_failures: 1", "max_consecutive_failures: 2");
    cp.apply_and_wait(&yaml, 1).await;
    let client = McpClient::connect(&format!("http://127.0.0.1:{port}/mcp")).await;
    let before = eventually("both copies to serve", || async {
        try_pids(&client, "pair", 4)
            .await
            .ok()
            .filter(|pids| pids.len() == 2)
    })
    .await;
    let hung = *before.keys().next().unwrap();
    send_signal(u32::try_from(hung).unwrap(), "STOP");

    let after = eventually("the hung copy to be replaced", || async {
        if is_running(hung) {
            return None;
        }
        try_pids(&client, "pair", 4)
            .await
            .ok()
            .filter(|pids| pids.len() == 2)
    })
    .await;
    assert!(!after.contains_key(&hung), "{after:?}");
    send_signal(child.id().expect("running"), "TERM");
    let exit = child.wait().await.expect("wait");
    assert!(exit.success(), "{exit:?}");
    for pid in after.keys() {
        assert!(!is_running(*pid), "copy {pid} left behind");
    }
}

/// A process started with its config is in rotation once its handshake is
/// done, not a probe period later: the first probe, which finds it still
/// starting, waits for the start instead of counting a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_is_in_rotation_once_it_has_started() {
    let cp = ControlPlane::start().await;
    let (mut child, port) = spawn_data_plane(&cp, "dp-start");
    let server = stdio_server("slow", "slow", 1).replace(
        "health_check_interval_s: 0.2",
        "health_check_interval_s: 600",
    );
    let yaml =
        format!("mcp_servers:\n{server}  g:\n    mode: group\n    members:\n      - id: slow\n");
    cp.apply_and_wait(&yaml, 1).await;
    let client = McpClient::connect(&format!("http://127.0.0.1:{port}/mcp")).await;
    let served = eventually("the group to serve its process", || async {
        try_pids(&client, "g", 2).await.ok()
    })
    .await;
    assert_eq!(served.values().sum::<usize>(), 2, "{served:?}");
    send_signal(child.id().expect("running"), "TERM");
    assert!(child.wait().await.expect("wait").success());
}

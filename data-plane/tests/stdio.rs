//! `hangar-data-plane --stdio` as an MCP client that spawns it sees it.

use std::process::Stdio;
use std::time::Duration;

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::{python_sdk, ts_sdk};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_hangar-data-plane");

async fn control_plane_with_group() -> (ControlPlane, Vec<FakeMcpHandle>) {
    let mut servers = Vec::new();
    for name in ["a", "b", "c"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    let endpoints: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    let cp = ControlPlane::start().await;
    cp.apply(&GroupConfig::recipe(&endpoints).yaml())
        .await
        .expect("apply");
    (cp, servers)
}

/// `hangar-data-plane --stdio` following `cp` as `node_id`, with `env`
/// added, its stdin and stdout piped and its log discarded, or piped too
/// when `log`.
fn spawn_stdio(
    cp: &ControlPlane,
    node_id: &str,
    env: &[(&str, &str)],
    log: bool,
) -> tokio::process::Child {
    tokio::process::Command::new(BIN)
        .args([
            "--control-plane",
            &cp.url(),
            "--node-id",
            node_id,
            "--stdio",
        ])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if log { Stdio::piped() } else { Stdio::null() })
        .kill_on_drop(true)
        .spawn()
        .expect("spawn data plane")
}

/// MCP Hangar's recipe pipeline (initialize, initialized, a `hangar_call`
/// of the group) works unchanged; stdout carries only JSON-RPC lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipe_shell_pipeline() {
    let (cp, _servers) = control_plane_with_group().await;
    let mut child = spawn_stdio(&cp, "stdio-1", &[], false);
    let mut stdin = child.stdin.take().unwrap();
    let lines = [
        r#"{"jsonrpc":"2.0","method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"test","version":"1.0"}},"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}"#,
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"hangar_call","arguments":{"calls":[{"mcp_server":"my-mcp-group","tool":"add","arguments":{"a":1,"b":2}}]}},"id":2}"#,
    ];
    for line in lines {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = stdout
                .next_line()
                .await
                .unwrap()
                .expect("an answer to id 2");
            let message: Value = serde_json::from_str(&line).expect("stdout carries only JSON-RPC");
            if message["id"] == 2 {
                return message;
            }
        }
    })
    .await
    .expect("answer within the patience");
    let output = &answer["result"]["structuredContent"];
    assert_eq!(output["succeeded"], 1, "{answer}");
    assert_eq!(
        output["results"][0]["result"]["structuredContent"]["sum"],
        3
    );
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "closing stdin ends the data plane cleanly"
    );
    cp.stop().await;
}

/// `--stdio --group` makes a group look like one stdio MCP server to the
/// official Python SDK client (every mode) and the TypeScript SDK client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_over_stdio_for_sdk_clients() {
    let (cp, _servers) = control_plane_with_group().await;
    let command = format!(
        "{BIN} --control-plane {} --node-id stdio-2 --stdio --group {RECIPE_GROUP}",
        cp.url()
    );
    for mode in ["legacy", "auto", "2026-07-28"] {
        let (status, lines, stderr) = python_sdk::run_client(&[
            "--mode",
            mode,
            "--stdio",
            &command,
            "call",
            "add",
            r#"{"a":2,"b":3}"#,
            "--n",
            "3",
        ])
        .await;
        assert!(status.success(), "{mode}: {stderr}");
        assert_eq!(lines.len(), 3);
        assert!(
            lines.iter().all(|l| l["structured"]["sum"] == 5),
            "{mode}: {lines:?}"
        );
    }
    let argv: Vec<&str> = command.split(' ').collect();
    let mut args = vec!["add", r#"{"a":2,"b":3}"#, "--"];
    args.extend(argv);
    let (status, lines, stderr) = ts_sdk::run("stdio_client.mjs", &args).await;
    assert!(status.success(), "{stderr}");
    assert_eq!(lines[0]["tools"][0], "add");
    assert_eq!(lines[1]["structuredContent"]["sum"], 5, "{lines:?}");
    cp.stop().await;
}

/// An IDE started with a group name that does not exist, or before any
/// config has arrived, shows why at once: the error answers its
/// `initialize` (with its id), naming the groups there are, or the control
/// plane that did not answer; the client does not wait for a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_group_or_no_config_is_said_to_the_client() {
    let (cp, _servers) = control_plane_with_group().await;
    let stdio = |cp_url: String, group: &'static str| {
        let mut args = vec![
            "add".to_owned(),
            r#"{"a":2,"b":3}"#.to_owned(),
            "--".to_owned(),
            BIN.to_owned(),
        ];
        args.extend(
            [
                "--control-plane",
                &cp_url,
                "--node-id",
                "ide",
                "--stdio",
                "--group",
                group,
            ]
            .map(str::to_owned),
        );
        args
    };
    let args = stdio(cp.url(), "nope");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, _, stderr) = ts_sdk::run("stdio_client.mjs", &args).await;
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("unknown group 'nope' (groups: {RECIPE_GROUP})")),
        "{stderr}"
    );
    assert!(!stderr.contains("timed out"), "{stderr}");

    let nowhere = format!("http://127.0.0.1:{}", hangar_tests::free_port());
    let args = stdio(nowhere.clone(), RECIPE_GROUP);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, _, stderr) = ts_sdk::run("stdio_client.mjs", &args).await;
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "no config has arrived yet: the control plane at {nowhere} is unreachable"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--cache-dir"), "{stderr}");
    cp.stop().await;
}

/// Two IDE windows started with the same `--node-id`: the second data
/// plane is refused by the control plane instead of being merged into the
/// first one's row, and its client is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_data_plane_with_the_same_node_id_is_refused() {
    let (cp, _servers) = control_plane_with_group().await;
    let cp_url = cp.url();
    let args = [
        "--control-plane",
        cp_url.as_str(),
        "--node-id",
        "ide",
        "--stdio",
        "--group",
        RECIPE_GROUP,
    ];
    // The first window: a data plane that stays up (its stdin stays open).
    let _first = tokio::process::Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn data plane");
    hangar_tests::eventually::eventually("the first data plane to connect", || async {
        let status = cp.status().await;
        status
            .data_planes
            .iter()
            .any(|p| p.node_id == "ide" && p.acked_version == 1)
            .then_some(())
    })
    .await;
    let mut client = vec!["add", r#"{"a":2,"b":3}"#, "--", BIN];
    client.extend(args);
    let (status, _, stderr) = ts_sdk::run("stdio_client.mjs", &client).await;
    assert!(!status.success());
    assert!(
        stderr.contains("node id 'ide' is in use by another data plane"),
        "{stderr}"
    );
    assert_eq!(cp.status().await.data_planes.len(), 1);
    cp.stop().await;
}

/// `--stdio --group` builds only its group: a subprocess server of the
/// config that the group does not use is never started (an IDE window per
/// group would otherwise start every stdio server of the config).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_group_starts_only_what_it_uses() {
    let mut servers = Vec::new();
    for name in ["a", "b", "c"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    let endpoints: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("started");
    let unused = format!(
        "  unused:\n    mode: subprocess\n    command: [sh, -c, \"touch {} && sleep 30\"]\n",
        marker.display()
    );
    let cp = ControlPlane::start().await;
    cp.apply(&format!(
        "{}{unused}",
        GroupConfig::recipe(&endpoints).yaml()
    ))
    .await
    .expect("apply");
    let command = format!(
        "{BIN} --control-plane {} --node-id stdio-scope --stdio --group {RECIPE_GROUP}",
        cp.url()
    );
    let mut args = vec!["add", r#"{"a":2,"b":3}"#, "--"];
    args.extend(command.split(' '));
    let (status, lines, stderr) = ts_sdk::run("stdio_client.mjs", &args).await;
    assert!(status.success(), "{stderr}");
    assert_eq!(lines[1]["structuredContent"]["sum"], 5, "{lines:?}");
    assert!(!marker.exists(), "the unused subprocess server was started");
    cp.stop().await;
}

/// What a member sends outside any request reaches a stdio client as it
/// would over HTTP: `server-everything`'s simulated log messages, which it
/// sends on the session's event stream every few seconds once asked to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_outside_requests_reach_a_stdio_client() {
    let everything = hangar_tests::everything::Everything::start().await;
    let cp = ControlPlane::start().await;
    let yaml = format!(
        "mcp_servers:\n  e:\n    mode: remote\n    endpoint: \"{}\"\n  g:\n    mode: group\n    members: [{{id: e}}]\n",
        everything.url()
    );
    cp.apply(&yaml).await.expect("apply");
    let command = format!(
        "{BIN} --control-plane {} --node-id stdio-events --stdio --group g",
        cp.url()
    );
    let mut args = vec!["toggle-simulated-logging", "--"];
    args.extend(command.split(' '));
    let (status, lines, stderr) = ts_sdk::run("stdio_notifications.mjs", &args).await;
    assert!(status.success(), "{stderr}");
    let notification = &lines[0]["notification"];
    assert!(
        notification["data"]
            .as_str()
            .is_some_and(|d| d.contains("message")),
        "no log message reached the client: {lines:?}"
    );
    cp.stop().await;
}

/// `--stdio` (for `hangar_call`) starts a subprocess server only when a
/// call first needs it: the official TypeScript SDK client calls one of two
/// stdio servers, and only that one's process ever starts; the call that
/// started it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_starts_a_subprocess_server_on_its_first_call() {
    let markers = tempfile::tempdir().unwrap();
    let server = |id: &str| {
        let marker = markers.path().join(id);
        format!(
            "  {id}:\n    mode: subprocess\n    command: [sh, -c, \"touch {} && exec {} {} --transport stdio --name {id}\"]\n",
            marker.display(),
            python_sdk::python().display(),
            python_sdk::example_server().display(),
        )
    };
    let cp = ControlPlane::start().await;
    cp.apply(&format!(
        "mcp_servers:\n{}{}",
        server("used"),
        server("unused")
    ))
    .await
    .expect("apply");
    let command = format!(
        "{BIN} --control-plane {} --node-id stdio-lazy --stdio",
        cp.url()
    );
    let batch = r#"{"calls":[{"mcp_server":"used","tool":"add","arguments":{"a":2,"b":3}}]}"#;
    let mut args = vec!["hangar_call", batch, "--"];
    args.extend(command.split(' '));
    let (status, lines, stderr) = ts_sdk::run("stdio_client.mjs", &args).await;
    assert!(status.success(), "{stderr}");
    let results = &lines[1]["structuredContent"]["results"];
    assert_eq!(
        results[0]["result"]["structuredContent"]["sum"], 5,
        "{lines:?}"
    );
    assert!(
        markers.path().join("used").exists(),
        "the called server started"
    );
    assert!(
        !markers.path().join("unused").exists(),
        "a server no call needed was started"
    );
    cp.stop().await;
}

/// MCP Hangar's recipe 06 pipeline: `MCP_RATE_LIMIT_RPS` and `_BURST` in
/// the environment of `--stdio` limit that data plane alone. A batch of 5
/// calls with a burst of 3 gets 3 answers and 2 `RateLimitExceeded`, each
/// call counting once; after the wait the refusal names, a call is
/// answered again (the refill).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipe_06_rate_limit_from_the_environment() {
    let (cp, _servers) = control_plane_with_group().await;
    let env = [("MCP_RATE_LIMIT_RPS", "2"), ("MCP_RATE_LIMIT_BURST", "3")];
    let mut child = spawn_stdio(&cp, "stdio-06", &env, true);
    // The log, read all along so the pipe never fills.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            lines.push(line);
        }
        lines
    });
    let mut stdin = child.stdin.take().unwrap();
    let call = r#"{"mcp_server":"my-mcp-group","tool":"add","arguments":{"a":1,"b":2}}"#;
    let batch = |id: u32, n: usize| {
        let calls = vec![call; n].join(",");
        format!(
            r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":"hangar_call","arguments":{{"calls":[{calls}]}}}},"id":{id}}}"#
        )
    };
    let lines = [
        r#"{"jsonrpc":"2.0","method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"test","version":"1.0"}},"id":1}"#.to_owned(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}"#.to_owned(),
        batch(2, 5),
    ];
    for line in &lines {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut answer_to = async |id: u32| -> Value {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let line = stdout.next_line().await.unwrap().expect("an answer");
                let message: Value = serde_json::from_str(&line).expect("JSON-RPC");
                if message["id"] == id {
                    return message["result"]["structuredContent"].clone();
                }
            }
        })
        .await
        .expect("an answer within the patience")
    };
    let first = answer_to(2).await;
    assert_eq!(
        (first["succeeded"].as_u64(), first["failed"].as_u64()),
        (Some(3), Some(2)),
        "{first}"
    );
    let refused = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["success"] == false)
        .unwrap();
    assert_eq!(refused["error_type"], "RateLimitExceeded");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.starts_with("RateLimitExceeded: the rate limit all callers share for this data plane (MCP_RATE_LIMIT_RPS) is used up (3 at once, refilled at 2 per second). Retry after "),
        "{error}"
    );
    let wait: f64 = error
        .rsplit("Retry after ")
        .next()
        .and_then(|s| s.strip_suffix("s."))
        .and_then(|s| s.parse().ok())
        .expect("a delay");
    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    stdin
        .write_all(format!("{}\n", batch(3, 1)).as_bytes())
        .await
        .unwrap();
    let refilled = answer_to(3).await;
    assert_eq!(refilled["succeeded"], 1, "{refilled}");
    drop(stdin);
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    // One episode of refusals, one log line.
    let lines = log.await.unwrap();
    let started: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("rate limit started refusing calls"))
        .collect();
    assert_eq!(started.len(), 1, "{lines:#?}");
    assert!(started[0].contains("limit=env"), "{}", started[0]);
    cp.stop().await;
}

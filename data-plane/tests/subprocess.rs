//! `mode: subprocess` members: one supervised copy of a stdio MCP server,
//! run as a real process through `StdioUpstream`. The server is the example
//! server on the official Python SDK (`examples/python/server.py`), or a
//! small script around it (or beside it) that behaves badly in one chosen way.
//!
//! The interpreter is `$HANGAR_PYTHON`, else `.venv/bin/python` at the
//! workspace root.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[path = "support/log_capture.rs"]
mod log_capture;

use hangar_data_plane::upstream::UpstreamError;
use hangar_data_plane::upstream::stdio::{ProcessSpec, Start, StdioUpstream};
use hangar_tests::eventually::eventually;
use log_capture::capture_logs;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Deadline of one call in these tests.
const CALL: Duration = Duration::from_secs(10);
/// A stop takes at most two 2 s grace periods, then SIGKILL; with slack.
const STOP_BOUND: Duration = Duration::from_secs(8);

fn python() -> PathBuf {
    let python = hangar_tests::python_sdk::python();
    assert!(
        python.exists(),
        "python with the MCP Python SDK not found at {} (run scripts/python-env, or set HANGAR_PYTHON)",
        python.display()
    );
    python
}

fn example_server() -> PathBuf {
    let script = hangar_tests::python_sdk::example_server();
    assert!(
        script.exists(),
        "example server not found at {}",
        script.display()
    );
    script
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The example server over stdio, answering as `name`.
fn backend(name: &str) -> ProcessSpec {
    ProcessSpec {
        command: vec![
            text(&python()),
            text(&example_server()),
            "--transport".into(),
            "stdio".into(),
            "--name".into(),
            name.into(),
        ],
        env: Vec::new(),
        cwd: None,
    }
}

/// A shell script in `dir` that gets the interpreter and the example server as
/// `$1` and `$2`.
fn sh_script(dir: &Path, name: &str, body: &str) -> ProcessSpec {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
    ProcessSpec {
        command: vec![
            "sh".into(),
            text(&path),
            text(&python()),
            text(&example_server()),
        ],
        env: Vec::new(),
        cwd: None,
    }
}

/// One copy under test. Dropping it cancels its stop token, so a failing
/// test does not leave its process running.
struct ServerCopy {
    upstream: Arc<StdioUpstream>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl ServerCopy {
    fn start(spec: ProcessSpec) -> Self {
        Self::start_when(spec, Start::Now)
    }

    fn start_when(spec: ProcessSpec, start: Start) -> Self {
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let upstream = StdioUpstream::start(
            spec,
            "test-member".into(),
            None,
            start,
            stop.clone(),
            &tracker,
        );
        Self {
            upstream,
            stop,
            tracker,
        }
    }

    /// Waits until the process answers `ping`; its pid.
    async fn ready(&self) -> u32 {
        eventually("the process to be running and answer ping", || async {
            self.upstream.probe(CALL).await.ok()?;
            self.upstream.pid()
        })
        .await
    }

    async fn call(&self, tool: &str, arguments: Value) -> Result<Value, UpstreamError> {
        call(&self.upstream, tool, arguments).await
    }

    /// `structuredContent` of the backend's `whoami` tool.
    async fn whoami(&self) -> Value {
        let result = self.call("whoami", json!({})).await.expect("whoami");
        result["structuredContent"].clone()
    }

    /// Cancels `stop` and waits (bounded) until the process is gone and
    /// every task has ended; how long that took.
    async fn shutdown(&self) -> Duration {
        let started = Instant::now();
        self.stop.cancel();
        tokio::time::timeout(STOP_BOUND, self.upstream.stopped())
            .await
            .expect("the supervisor stops within the bound");
        let took = started.elapsed();
        self.tracker.close();
        tokio::time::timeout(STOP_BOUND, self.tracker.wait())
            .await
            .expect("every task of the copy ends");
        took
    }
}

impl Drop for ServerCopy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn call(
    upstream: &StdioUpstream,
    tool: &str,
    arguments: Value,
) -> Result<Value, UpstreamError> {
    let params = json!({ "name": tool, "arguments": arguments });
    upstream.request("tools/call", params, CALL).await
}

fn pid(raw: u32) -> Pid {
    Pid::from_raw(i32::try_from(raw).expect("pid fits i32"))
}

/// Waits until no process of the group led by `leader` is left. Group
/// members other than the leader are reaped by init, hence the wait.
async fn assert_group_gone(leader: u32) {
    assert_eq!(
        kill(pid(leader), None),
        Err(Errno::ESRCH),
        "process {leader} is still there (or was not reaped)"
    );
    eventually("every process of the group to be gone", || async {
        (killpg(pid(leader), None) == Err(Errno::ESRCH)).then_some(())
    })
    .await;
}

/// A started copy answers tool calls and probes, reports the server's
/// `initialize` answer, and concurrent calls share its one stdio session,
/// each getting its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_concurrent_calls_over_one_session() {
    let copy = ServerCopy::start(backend("s1"));
    copy.ready().await;
    let init = copy.upstream.initialize_result().expect("initialized");
    assert_eq!(init["serverInfo"]["name"], "example-s1");
    assert_eq!(init["protocolVersion"], "2025-11-25");

    let sum = copy
        .call("add", json!({ "a": 1, "b": 2 }))
        .await
        .expect("add");
    assert_eq!(
        sum["structuredContent"],
        json!({ "sum": 3, "served_by": "s1" })
    );
    copy.upstream.probe(CALL).await.expect("probe");

    // Distinct durations, so a mixed-up answer shows.
    let calls = (0..50u64).map(|i| {
        let upstream = copy.upstream.clone();
        async move { (i, call(&upstream, "sleep", json!({ "ms": 50 + i })).await) }
    });
    let mut overlapped = 0;
    for (i, result) in futures::future::join_all(calls).await {
        let answer = result.expect("sleep")["structuredContent"].clone();
        assert_eq!(answer["slept_ms"], 50 + i, "answer of call {i}: {answer}");
        assert_eq!(answer["served_by"], "s1");
        if answer["in_flight_at_start"].as_u64() > Some(0) {
            overlapped += 1;
        }
    }
    assert!(overlapped > 0, "the calls ran one at a time");
    copy.shutdown().await;
}

/// kill -9 of the server: the call in flight fails with `Exited` (never to
/// be retried), calls while it is down fail at once with `Unavailable` (may
/// go to another member), and the supervisor brings a new process up.
/// A copy started on first use runs no process until a request needs it:
/// probes pass meanwhile (so calls reach it), and the first request starts
/// the process, waits for its handshake and is answered; so are requests
/// that arrive while it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_started_on_first_use_starts_for_its_first_request() {
    let copy = ServerCopy::start_when(backend("s1"), Start::OnFirstUse);
    copy.upstream
        .probe(CALL)
        .await
        .expect("an idle copy is healthy");
    assert_eq!(copy.upstream.pid(), None, "no process before the first use");
    let (first, second) = tokio::join!(copy.whoami(), copy.whoami());
    let pid = copy.upstream.pid().expect("running after its first use");
    assert_eq!(first["pid"], pid);
    assert_eq!(second["pid"], pid);
    copy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_after_kill_9() {
    let copy = ServerCopy::start(backend("s1"));
    let old = copy.ready().await;
    let upstream = copy.upstream.clone();
    let in_flight =
        tokio::spawn(async move { call(&upstream, "sleep", json!({ "ms": 60_000 })).await });
    eventually("the sleep call to run in the server", || async {
        (copy.whoami().await["in_flight"].as_u64() >= Some(1)).then_some(())
    })
    .await;

    kill(pid(old), Signal::SIGKILL).expect("kill -9");
    let cut = in_flight
        .await
        .expect("join")
        .expect_err("the process died under the call");
    assert!(matches!(cut, UpstreamError::Exited(_)), "{cut}");
    assert!(cut.to_string().contains("signal: 9"), "{cut}");
    assert!(!cut.may_try_another_member() && cut.counts_against_member());

    let started = Instant::now();
    let down = copy
        .call("add", json!({ "a": 1, "b": 2 }))
        .await
        .expect_err("no process to call");
    assert!(matches!(down, UpstreamError::Unavailable(_)), "{down}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "did not fail fast"
    );
    assert!(down.may_try_another_member() && down.counts_against_member());

    let new = copy.ready().await;
    assert_ne!(new, old);
    assert!(copy.upstream.restarts() >= 1);
    assert_eq!(kill(pid(old), None), Err(Errno::ESRCH), "old process left");
    let sum = copy
        .call("add", json!({ "a": 2, "b": 2 }))
        .await
        .expect("add");
    assert_eq!(sum["structuredContent"]["sum"], 4);
    copy.shutdown().await;
}

/// Cancelling `stop` ends the process and its group, and `stopped()` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_process() {
    let copy = ServerCopy::start(backend("s1"));
    let leader = copy.ready().await;
    copy.shutdown().await;
    assert_group_gone(leader).await;
    assert_eq!(copy.upstream.pid(), None);
    let err = copy
        .call("add", json!({ "a": 1, "b": 2 }))
        .await
        .expect_err("stopped");
    assert!(matches!(err, UpstreamError::Unavailable(_)), "{err}");
}

/// A server that outlives stdin EOF and ignores SIGTERM (a wrapper that
/// keeps looping after the backend exits) is still killed, with everything
/// it started, within the bound: here a background child that would outlive
/// its parent if only the parent were killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_a_server_that_ignores_eof_and_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = sh_script(
        dir.path(),
        "stubborn.sh",
        "trap '' TERM\nsleep 300 &\n\"$1\" \"$2\" --transport stdio --name stubborn\n\
         while true; do sleep 1; done\n",
    );
    let copy = ServerCopy::start(spec);
    let leader = copy.ready().await;
    let took = copy.shutdown().await;
    // Both polite steps (EOF, SIGTERM) had to run out before SIGKILL.
    assert!(took >= Duration::from_secs(4), "stopped after {took:?}");
    assert_group_gone(leader).await;
}

/// The spec's environment is added to ours and its working directory is
/// used: a script found relative to `cwd` names the backend after a variable
/// from `env`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_with_the_specs_env_and_cwd() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("run.sh"),
        "exec \"$1\" \"$2\" --transport stdio --name \"$COPY_NAME\"\n",
    )
    .expect("write script");
    let copy = ServerCopy::start(ProcessSpec {
        command: vec![
            "sh".into(),
            "run.sh".into(),
            text(&python()),
            text(&example_server()),
        ],
        env: vec![("COPY_NAME".into(), "from-env".into())],
        cwd: Some(dir.path().to_path_buf()),
    });
    copy.ready().await;
    let sum = copy
        .call("add", json!({ "a": 1, "b": 2 }))
        .await
        .expect("add");
    assert_eq!(sum["structuredContent"]["served_by"], "from-env");
    copy.shutdown().await;
}

/// A command that does not exist: calls fail with `Unavailable` naming the
/// cause, the log says it, and the supervisor keeps trying with backoff.
#[tokio::test(start_paused = true)]
async fn missing_command_is_unavailable_and_retried() {
    let (log, _guard) = capture_logs();

    let copy = ServerCopy::start(ProcessSpec {
        command: vec!["nonexistent-mcp-server".into(), "--flag".into()],
        env: Vec::new(),
        cwd: None,
    });
    eventually("two restarts after failed starts", || async {
        (copy.upstream.restarts() >= 2).then_some(())
    })
    .await;
    let err = copy
        .call("add", json!({ "a": 1, "b": 2 }))
        .await
        .expect_err("no process");
    assert!(matches!(err, UpstreamError::Unavailable(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("cannot start 'nonexistent-mcp-server': No such file or directory"),
        "{message}"
    );
    assert_eq!(copy.upstream.pid(), None);
    copy.shutdown().await;

    let log = String::from_utf8_lossy(&log.lock()).into_owned();
    let failures = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("cannot start 'nonexistent-mcp-server'"))
        .count();
    assert!(failures >= 2, "log:\n{log}");
    assert!(log.contains("member.id=test-member"), "log:\n{log}");
}

/// A server that never answers `initialize` is given up on after the bound
/// (30 s, passed at once in paused time), stopped, and started again.
#[tokio::test(start_paused = true)]
async fn silent_server_is_restarted_after_the_initialize_bound() {
    let (log, _guard) = capture_logs();
    let copy = ServerCopy::start(ProcessSpec {
        command: vec!["sleep".into(), "300".into()],
        env: Vec::new(),
        cwd: None,
    });
    let first = eventually("the first process", || async { copy.upstream.pid() }).await;
    // Longer than `eventually` waits: the bound itself is 30 s (virtual).
    let second = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match copy.upstream.pid() {
                Some(pid) if pid != first => return pid,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .expect("a second process within 120 s (virtual)");
    assert_ne!(first, second);
    assert_eq!(
        kill(pid(first), None),
        Err(Errno::ESRCH),
        "first process left"
    );
    // Virtual time would skip past the real exit of the process being
    // stopped; stop it in real time.
    tokio::time::resume();
    copy.shutdown().await;
    let log = String::from_utf8_lossy(&log.lock()).into_owned();
    assert!(
        log.contains("no answer to initialize within 30s"),
        "log:\n{log}"
    );
}

/// Lines on stdout that are not JSON-RPC (a banner, bytes that are not
/// UTF-8, JSON that is not a message) are skipped; the server still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skips_stdout_lines_that_are_not_json_rpc() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = sh_script(
        dir.path(),
        "banner.sh",
        "echo 'banner-server 1.0 starting up'\nprintf '\\377\\376 not text\\n'\necho 42\n\
         exec \"$1\" \"$2\" --transport stdio --name banner\n",
    );
    let copy = ServerCopy::start(spec);
    copy.ready().await;
    let sum = copy
        .call("add", json!({ "a": 1, "b": 2 }))
        .await
        .expect("add");
    assert_eq!(
        sum["structuredContent"],
        json!({ "sum": 3, "served_by": "banner" })
    );
    copy.shutdown().await;
}

/// A request that times out is withdrawn from the server with
/// `notifications/cancelled` (the server stops the work), and the session
/// keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_request_is_cancelled_in_the_server() {
    let copy = ServerCopy::start(backend("s1"));
    copy.ready().await;
    let params = json!({ "name": "sleep", "arguments": { "ms": 60_000 } });
    let timeout = Duration::from_millis(500);
    let err = copy
        .upstream
        .request("tools/call", params, timeout)
        .await
        .expect_err("a 60 s sleep within 500 ms");
    assert!(matches!(err, UpstreamError::Timeout(_)), "{err}");
    // Without the cancel the server would hold the call for a minute,
    // longer than `eventually` waits.
    eventually("the server to drop the cancelled call", || async {
        (copy.whoami().await["in_flight"].as_u64() == Some(0)).then_some(())
    })
    .await;
    let sum = copy
        .call("add", json!({ "a": 1, "b": 2 }))
        .await
        .expect("add");
    assert_eq!(sum["structuredContent"]["sum"], 3);
    copy.shutdown().await;
}

/// A server that asks us things: `ping` is answered, sampling, roots and the
/// rest are refused with -32601, so it never waits; its notifications reach
/// subscribers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_requests_from_the_server() {
    const ASKER: &str = r#"
import json, sys

def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()

answers = {}
for line in sys.stdin:
    message = json.loads(line)
    method = message.get("method")
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": message["id"], "result": {
            "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
            "serverInfo": {"name": "asker", "version": "1"}}})
    elif method == "notifications/initialized":
        send({"jsonrpc": "2.0", "id": "q-ping", "method": "ping"})
        send({"jsonrpc": "2.0", "id": "q-roots", "method": "roots/list"})
        send({"jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage", "params": {}})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": message["id"], "result": {}})
    elif method == "tools/call":
        send({"jsonrpc": "2.0", "method": "notifications/message",
              "params": {"level": "info", "data": "reporting"}})
        send({"jsonrpc": "2.0", "id": message["id"], "result": {
            "content": [], "structuredContent": answers}})
    elif method is None:
        answers[str(message["id"])] = message
"#;
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("asker.py");
    std::fs::write(&script, ASKER).expect("write script");
    let copy = ServerCopy::start(ProcessSpec {
        command: vec![text(&python()), text(&script)],
        env: Vec::new(),
        cwd: None,
    });
    copy.ready().await;
    let mut notifications = copy.upstream.notifications();
    let answers = eventually("our answers to the server's three requests", || async {
        let result = copy.call("report", json!({})).await.ok()?;
        let answers = result["structuredContent"].clone();
        (answers.as_object()?.len() == 3).then_some(answers)
    })
    .await;
    assert_eq!(answers["q-ping"]["result"], json!({}));
    for id in ["q-roots", "7"] {
        assert_eq!(answers[id]["error"]["code"], -32601, "{answers}");
        assert_eq!(
            answers[id]["error"]["message"], "not supported through Hangar",
            "{answers}"
        );
    }
    assert_eq!(
        answers["7"]["id"], 7,
        "the server's id comes back as it was"
    );
    // Sent before the answer on the same stdout, so already relayed.
    let note = notifications.try_recv().expect("a relayed notification");
    assert_eq!(note["method"], "notifications/message");
    assert_eq!(note["params"]["data"], "reporting");
    copy.shutdown().await;
}

/// Latency of one `tools/call` through `StdioUpstream::request`, printed
/// (not asserted): `cargo test -p hangar-data-plane --test subprocess --
/// --ignored --nocapture add_latency`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run it by name"]
async fn add_latency() {
    const CALLS: u32 = 1_000;
    let copy = ServerCopy::start(backend("s1"));
    copy.ready().await;
    for _ in 0..100 {
        copy.call("add", json!({ "a": 1, "b": 2 }))
            .await
            .expect("warm-up");
    }
    let mut samples = Vec::with_capacity(CALLS as usize);
    let started = Instant::now();
    for i in 0..CALLS {
        let call_started = Instant::now();
        let sum = copy
            .call("add", json!({ "a": i, "b": 1 }))
            .await
            .expect("add");
        samples.push(call_started.elapsed());
        assert_eq!(sum["structuredContent"]["sum"], i + 1);
    }
    let total = started.elapsed();
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "stdio tools/call add, {CALLS} sequential calls: mean {:?}, p50 {:?}, p99 {:?}, max {:?}",
        total / CALLS,
        at(0.5),
        at(0.99),
        at(1.0)
    );
    copy.shutdown().await;
}

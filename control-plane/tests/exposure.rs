//! The control plane binary never opens an unauthenticated API to the network.

use std::process::Stdio;
use std::time::Duration;

/// Runs the control plane with `args` and returns its exit code and stderr;
/// fails the test if it is still running after a bound (it should refuse
/// to start at once). The child is killed when dropped.
async fn run_refused(args: &[&str]) -> (Option<i32>, String) {
    let state = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hangar-control-plane"))
        .args(args)
        .arg("--state-dir")
        .arg(state.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn control plane");
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the control plane started with {args:?} instead of refusing"))
        .expect("output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_non_loopback_listen_address_needs_tokens() {
    let (code, stderr) = run_refused(&["--listen", "0.0.0.0:0"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "refusing to listen on 0.0.0.0:0 with no admin token: anyone who can reach it could apply any config"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unreadable_token_file_is_named() {
    let (code, stderr) = run_refused(&[
        "--listen",
        "127.0.0.1:0",
        "--admin-token-file",
        "/nonexistent/admin-token",
    ])
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read token file /nonexistent/admin-token: "),
        "{stderr}"
    );
}

//! The `hangar-data-plane` binary as the tests start it.

use std::process::Stdio;

/// The release or test build of `hangar-data-plane` beside these tests.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_hangar-data-plane");

/// A command that starts the data plane following `control_plane` as
/// `node_id`, serving HTTP on `127.0.0.1:port`, with no stdin or stdout and
/// killed when dropped; the test adds its own flags and stderr.
pub(crate) fn data_plane(control_plane: &str, node_id: &str, port: u16) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(["--control-plane", control_plane, "--node-id", node_id])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    command
}

//! What a subprocess copy runs: the snapshot's `Subprocess` message with
//! its environment's references resolved on this data plane.

use std::path::PathBuf;

/// What to run: from the snapshot's `Subprocess` message, with env
/// references already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Program and arguments; the program is looked up in `PATH`.
    pub command: Vec<String>,
    /// Variables set on top of this data plane's own environment.
    pub env: Vec<(String, String)>,
    /// Working directory; this data plane's own when `None`.
    pub cwd: Option<PathBuf>,
}

/// Resolves the references in a subprocess server's environment on this
/// data plane; the error names the variable or file, never a value.
pub fn resolve_env(env: &[hangar_proto::v1::Header]) -> Result<Vec<(String, String)>, String> {
    env.iter()
        .map(|var| {
            let value = hangar_template::resolve(&var.value, &hangar_template::System)
                .map_err(|e| format!("env {}: {e}", var.name))?;
            Ok((var.name.clone(), value))
        })
        .collect()
}

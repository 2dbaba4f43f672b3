//! The process's limit on open files, raised to what the system allows: a
//! proxy holds two descriptors per call (client and member) and one per
//! idle client connection, and the usual soft limit of 1024 is a fraction
//! of the hard one (Go's runtime and nginx's `worker_rlimit_nofile` do the
//! same).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the limit in
/// force. Never fails the process: the old limit stays if it cannot be
/// raised.
pub fn raise_open_files_limit() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft >= hard {
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Some(hard),
        Err(err) => {
            tracing::debug!(error = %err, soft, hard, "cannot raise the open files limit");
            Some(soft)
        }
    }
}

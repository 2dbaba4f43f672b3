//! Files that survive `kill -9` and power loss whole or not at all.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A failed durable write, naming the path that failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}", path.display())]
pub struct DurableWriteError {
    /// The file or directory that could not be written or synced.
    pub path: PathBuf,
    /// What the OS said.
    #[source]
    pub source: io::Error,
}

/// Replaces `dir/name` with `bytes`: written to `name.tmp`, synced, renamed
/// over `name`, then the directory synced, since a rename is only durable
/// once its directory entry is. A reader sees the old file or the new one,
/// never a torn one. When the write, sync or rename fails, `name.tmp` is
/// removed (best effort), so a failure leaves `dir` as it found it.
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), DurableWriteError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DurableWriteError { path, source }
    };
    let mut file = fs::File::create(&tmp).map_err(failed(&tmp))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(failed(&tmp));
    drop(file);
    if let Err(err) = written.and_then(|()| fs::rename(&tmp, &path).map_err(failed(&path))) {
        // The error that matters is the one above; a tmp file that cannot
        // be removed either is overwritten by the next replace.
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(failed(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        replace_file(dir.path(), "state.json", b"first, longer").unwrap();
        replace_file(dir.path(), "state.json", b"second").unwrap();
        assert_eq!(fs::read(dir.path().join("state.json")).unwrap(), b"second");
        assert!(!dir.path().join("state.json.tmp").exists());
        let missing = dir.path().join("missing");
        let err = replace_file(&missing, "x", b"").unwrap_err();
        assert_eq!(err.path, missing.join("x.tmp"));
    }

    /// A rename that fails (here onto a non-empty directory, which fails
    /// for root too) leaves no temporary behind, and names the target.
    #[test]
    fn a_failed_replace_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("state.json");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"").unwrap();
        let err = replace_file(dir.path(), "state.json", b"new").unwrap_err();
        assert_eq!(err.path, target);
        assert!(!dir.path().join("state.json.tmp").exists());
        assert!(target.join("inside").exists(), "the target is untouched");
    }
}

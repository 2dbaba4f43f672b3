//! What both config stores (the state directory and etcd) keep and say: the
//! stored config, its revision, the outcome of a write, and their errors.

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A config as applied: its source text and the version it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredConfig {
    /// Monotonic version, starting at 1 for the first apply.
    pub version: u64,
    /// Name the config was applied under, used in error locations.
    pub source_name: String,
    /// The YAML text exactly as applied.
    pub yaml: String,
}

/// Position of a stored config in its store's history: etcd's
/// `mod_revision` for the shared store, the version for the embedded one.
/// 0 means nothing stored yet.
pub(crate) type Revision = i64;

/// Outcome of a write that names the revision it was derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// Stored; it is now at `revision`.
    Done {
        /// Revision of the new config.
        revision: Revision,
    },
    /// Another writer stored a config first; nothing was written.
    Conflict {
        /// What is stored now.
        latest: StoredConfig,
        /// Its revision.
        revision: Revision,
    },
}

/// Errors of the config stores. Messages leave the cause to `source()`,
/// so printing the chain (`{:#}` with anyhow) shows each part once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory or its document could not be read or written.
    #[error("cannot use state dir {path}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The stored document is not valid JSON of the expected shape.
    #[error("state file {path} is corrupt")]
    Corrupt {
        /// The stored document.
        path: PathBuf,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The shared store could not be reached or did not answer in time.
    #[error("config store unavailable (etcd at {endpoints})")]
    Unavailable {
        /// The etcd members tried.
        endpoints: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The config key in etcd does not hold a stored config.
    #[error("etcd key {key} does not hold a Hangar config")]
    CorruptKey {
        /// The config key.
        key: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The config key was deleted by hand during an apply.
    #[error("etcd key {key} was deleted during the apply; re-run apply")]
    Missing {
        /// The config key.
        key: String,
    },
}

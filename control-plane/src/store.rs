//! The embedded config store: one JSON document in the state directory.
//!
//! The applied config is kept as the text the operator wrote (so it can be
//! re-validated by a newer control plane) plus its version. Writes are atomic:
//! a temporary file is written and synced, renamed over the old one, and the
//! directory is synced, so a `kill -9` at any point leaves either the old or
//! the new document, never a torn one.
//!
//! [`ConfigStore`] is where a control plane keeps its config: this embedded
//! store, or the etcd key shared by replicas ([`crate::etcd`]).

use std::fs;
use std::io;
use std::path::PathBuf;

use hangar_runtime::durable::{self, DurableWriteError};

use crate::etcd::EtcdStore;
pub(crate) use crate::stored::{Revision, Saved, StoreError, StoredConfig};

/// File name of the stored document inside the state directory.
const STATE_FILE: &str = "config.json";

/// The embedded store rooted at a state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

// === impl Store ===

impl Store {
    /// Opens (creating if needed) the state directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// Loads the stored config, or `None` when nothing was applied yet.
    pub fn load(&self) -> Result<Option<StoredConfig>, StoreError> {
        let path = self.dir.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Corrupt { path, source })
    }

    /// Durably replaces the stored config.
    pub fn save(&self, config: &StoredConfig) -> Result<(), StoreError> {
        let body = serde_json::to_vec_pretty(config).expect("StoredConfig always serializes");
        durable::replace_file(&self.dir, STATE_FILE, &body)
            .map_err(|DurableWriteError { path, source }| StoreError::Io { path, source })
    }
}

/// What [`ConfigStore::latest`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Latest {
    /// The embedded store: what this control plane holds is the latest.
    OnlyWriter,
    /// Nothing stored (yet, or deleted by hand).
    Absent,
    /// This config, at this revision.
    Stored(StoredConfig, Revision),
}

/// Where a control plane keeps its config.
#[derive(Debug, Clone)]
pub enum ConfigStore {
    /// The embedded state directory; this control plane is the only writer.
    Local(Store),
    /// An etcd key shared by replicas, written with compare-and-swap.
    Etcd(EtcdStore),
}

// === impl ConfigStore ===

impl ConfigStore {
    /// The stored config and its revision, or `None` when nothing was applied yet.
    pub async fn load(&self) -> Result<Option<(StoredConfig, Revision)>, StoreError> {
        match self {
            Self::Local(store) => Ok(store.load()?.map(|stored| {
                let revision = local_revision(&stored);
                (stored, revision)
            })),
            Self::Etcd(store) => store.load().await,
        }
    }

    /// What the store holds now, when others may have written since this
    /// control plane last looked.
    pub async fn latest(&self) -> Result<Latest, StoreError> {
        match self {
            Self::Local(_) => Ok(Latest::OnlyWriter),
            Self::Etcd(store) => Ok(match store.load().await? {
                Some((stored, revision)) => Latest::Stored(stored, revision),
                None => Latest::Absent,
            }),
        }
    }

    /// Stores `config` if the store still holds revision `base`.
    pub async fn save(&self, config: &StoredConfig, base: Revision) -> Result<Saved, StoreError> {
        match self {
            // The only writer of its directory: nothing can have changed
            // it since `base` (applies are serialized by `ConfigState`).
            Self::Local(store) => {
                store.save(config)?;
                Ok(Saved::Done {
                    revision: local_revision(config),
                })
            }
            Self::Etcd(store) => store.save(config, base).await,
        }
    }
}

fn local_revision(stored: &StoredConfig) -> Revision {
    Revision::try_from(stored.version).unwrap_or(Revision::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What was saved is what a later store on the same directory loads.
    #[test]
    fn saved_config_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap(), None);
        let cfg = StoredConfig {
            version: 7,
            source_name: "config.yaml".into(),
            yaml: "mcp_servers: {}\n".into(),
        };
        store.save(&cfg).unwrap();
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.load().unwrap(), Some(cfg));
    }

    /// A corrupt document is reported, not silently replaced by an empty config.
    #[test]
    fn corrupt_state_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), b"{not json").unwrap();
        let err = Store::open(dir.path()).unwrap().load().unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }
}

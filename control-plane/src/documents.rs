//! Small documents of secrets beside the config (the session keys, the
//! API keys): a file in the state directory readable by its owner only, or
//! a key under the etcd prefix written with compare-and-swap, so replicas
//! never overwrite each other's changes.

use std::io;
use std::path::PathBuf;

use hangar_runtime::durable::{self, DurableWriteError};

use crate::etcd::EtcdStore;
use crate::stored::{Revision, StoreError};

/// Where the documents are kept.
#[derive(Debug, Clone)]
pub(crate) enum Documents {
    /// `{name}.json` in the state directory.
    Local(PathBuf),
    /// `{prefix}/{name}` in etcd.
    Etcd(EtcdStore),
}

impl Documents {
    /// The document `name` and its revision (always 0 in a state
    /// directory, whose only writer is this control plane).
    pub(crate) async fn load(&self, name: &str) -> Result<Option<(Vec<u8>, Revision)>, StoreError> {
        match self {
            Self::Local(dir) => {
                let path = dir.join(format!("{name}.json"));
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some((bytes, 0))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StoreError::Io { path, source }),
                }
            }
            Self::Etcd(etcd) => etcd.get_document(name).await,
        }
    }

    /// The document `name` read as JSON, and its revision.
    pub(crate) async fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<(T, Revision)>, StoreError> {
        let Some((bytes, revision)) = self.load(name).await? else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&bytes).map_err(|source| StoreError::CorruptKey {
            key: name.to_owned(),
            source,
        })?;
        Ok(Some((value, revision)))
    }

    /// [`Documents::save`] of `value` as JSON.
    pub(crate) async fn save_json(
        &self,
        name: &str,
        value: &impl serde::Serialize,
        base: Option<Revision>,
    ) -> Result<bool, StoreError> {
        let body = serde_json::to_vec_pretty(value).expect("documents always serialize");
        self.save(name, body, base).await
    }

    /// Stores `body` as `name` if the stored one is still at `base` (`None`:
    /// if there is none); false when another replica stored one first.
    pub(crate) async fn save(
        &self,
        name: &str,
        body: Vec<u8>,
        base: Option<Revision>,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Local(dir) => {
                let file = format!("{name}.json");
                durable::replace_file(dir, &file, &body).map_err(
                    |DurableWriteError { path, source }| StoreError::Io { path, source },
                )?;
                restrict(&dir.join(&file));
                Ok(true)
            }
            Self::Etcd(etcd) => etcd.put_document(name, body, base.unwrap_or(0)).await,
        }
    }

    /// True when other replicas write the documents too (etcd), so they
    /// must be read again now and then.
    pub(crate) fn shared(&self) -> bool {
        matches!(self, Self::Etcd(_))
    }
}

/// Only the owner may read a file of secrets.
fn restrict(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(err) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path.display(), error = %err, "cannot make a file of secrets readable by its owner only");
    }
}

//! API keys for MCP clients (MCP Hangar's `auth.api_key`). The control
//! plane issues them (`hangarctl create apikey`), keeps only their SHA-256
//! with the principal each speaks for (state directory, or etcd shared by
//! replicas), and sends the hashes to every data plane (`ApiKeys`), first
//! on each stream and whenever a key is created or deleted: a revocation
//! reaches every data plane of this control plane in one push (and those
//! of other replicas within [`ETCD_CHECK`]).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hangar_proto::v1;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::documents::Documents;
use crate::stored::{Revision, StoreError};

/// Name of the document.
const NAME: &str = "api-keys";
/// How often replicas read the shared document.
const ETCD_CHECK: Duration = Duration::from_secs(5);
/// Longest principal name.
const MAX_PRINCIPAL: usize = 128;
/// The start of every key, so leaked keys are easy to recognise.
const KEY_PREFIX: &str = "hgk_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredKey {
    id: String,
    principal: String,
    /// SHA-256 of the key, base64.
    sha256: String,
    created_unix_ms: u64,
    /// 0: never.
    expires_unix_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct KeyList {
    keys: Vec<StoredKey>,
}

/// Why a key could not be made or deleted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    /// The principal is not a name.
    #[error("principal '{0}' must be 1 to {MAX_PRINCIPAL} letters, digits or any of _ - . : @ /")]
    BadPrincipal(String),
    /// The principal is the name access rules give callers without a
    /// credential.
    #[error(
        "principal 'anonymous' names callers without a credential in access rules; give the key another name"
    )]
    ReservedPrincipal,
    /// No key has this id.
    #[error("no API key with id '{0}'")]
    Unknown(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other replicas kept changing the keys.
    #[error("the API keys changed on another replica meanwhile; try again")]
    Busy,
}

/// The keys in force, following the store.
#[derive(Debug)]
pub(crate) struct ApiKeys {
    store: Documents,
    current: watch::Sender<Arc<v1::ApiKeys>>,
    list: parking_lot::Mutex<(KeyList, Option<Revision>)>,
}

impl ApiKeys {
    /// Loads the keys.
    pub(crate) async fn open(store: Documents) -> Result<Self, StoreError> {
        let keys = Self {
            store,
            current: watch::Sender::new(Arc::default()),
            list: parking_lot::Mutex::new((KeyList::default(), None)),
        };
        keys.reload().await?;
        Ok(keys)
    }

    /// The hashes in force, following changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<v1::ApiKeys>> {
        self.current.subscribe()
    }

    /// Every key, without secrets.
    pub(crate) fn list(&self) -> Vec<v1::ApiKeyInfo> {
        self.list.lock().0.keys.iter().map(info).collect()
    }

    /// Issues a key for `principal`, valid for `expires_in` (forever when
    /// `None`); the key is in the answer only.
    pub(crate) async fn create(
        &self,
        principal: &str,
        expires_in: Option<Duration>,
    ) -> Result<(v1::ApiKeyInfo, String), KeyError> {
        if principal.is_empty()
            || principal.len() > MAX_PRINCIPAL
            || !principal
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:@/".contains(&b))
        {
            return Err(KeyError::BadPrincipal(principal.to_owned()));
        }
        if principal == "anonymous" {
            return Err(KeyError::ReservedPrincipal);
        }
        let secret: [u8; 32] = rand::random();
        let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
        let id_bytes: [u8; 6] = rand::random();
        let now = hangar_runtime::unix_ms();
        let stored = StoredKey {
            id: id_bytes.iter().map(|b| format!("{b:02x}")).collect(),
            principal: principal.to_owned(),
            sha256: STANDARD.encode(sha256(key.as_bytes())),
            created_unix_ms: now,
            expires_unix_ms: expires_in.map_or(0, |d| {
                now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            }),
        };
        let made = info(&stored);
        self.change(|list| {
            list.keys.push(stored.clone());
            Ok(())
        })
        .await?;
        tracing::info!(key.id = %made.id, principal = %made.principal, "API key created");
        Ok((made, key))
    }

    /// Revokes the key `id`.
    pub(crate) async fn delete(&self, id: &str) -> Result<(), KeyError> {
        self.change(|list| {
            let before = list.keys.len();
            list.keys.retain(|k| k.id != id);
            if list.keys.len() == before {
                return Err(KeyError::Unknown(id.to_owned()));
            }
            Ok(())
        })
        .await?;
        tracing::info!(key.id = %id, "API key deleted");
        Ok(())
    }

    /// Applies `edit` to the stored list with compare-and-swap.
    async fn change(
        &self,
        edit: impl Fn(&mut KeyList) -> Result<(), KeyError>,
    ) -> Result<(), KeyError> {
        for _ in 0..5 {
            let (mut list, base) = self.load().await?;
            edit(&mut list)?;
            if self.store.save_json(NAME, &list, base).await? {
                self.adopt(list, None);
                return Ok(());
            }
        }
        Err(KeyError::Busy)
    }

    async fn load(&self) -> Result<(KeyList, Option<Revision>), StoreError> {
        Ok(match self.store.load_json(NAME).await? {
            Some((list, revision)) => (list, Some(revision)),
            None => (KeyList::default(), None),
        })
    }

    async fn reload(&self) -> Result<(), StoreError> {
        let (list, revision) = self.load().await?;
        self.adopt(list, revision);
        Ok(())
    }

    fn adopt(&self, list: KeyList, revision: Option<Revision>) {
        let message = v1::ApiKeys {
            keys: list
                .keys
                .iter()
                .filter_map(|k| {
                    Some(v1::ApiKeyHash {
                        id: k.id.clone(),
                        principal: k.principal.clone(),
                        sha256: STANDARD.decode(&k.sha256).ok()?,
                        expires_unix_ms: k.expires_unix_ms,
                    })
                })
                .collect(),
        };
        *self.list.lock() = (list, revision);
        self.current.send_if_modified(|current| {
            if **current == message {
                return false;
            }
            *current = Arc::new(message);
            true
        });
    }

    /// With etcd, follows other replicas' changes until `shutdown`.
    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if !self.store.shared() {
            return;
        }
        let mut ticks = tokio::time::interval(ETCD_CHECK);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.cancelled() => return,
            }
            if let Err(err) = self.reload().await {
                tracing::warn!(error = %hangar_runtime::error_chain(&err), "cannot read the API keys; keeping the ones in force");
            }
        }
    }
}

fn info(key: &StoredKey) -> v1::ApiKeyInfo {
    v1::ApiKeyInfo {
        id: key.id.clone(),
        principal: key.principal.clone(),
        created_unix_ms: key.created_unix_ms,
        expires_unix_ms: key.expires_unix_ms,
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_kept_as_hashes_across_restarts_and_deleted_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ApiKeys::open(Documents::Local(dir.path().to_path_buf()))
            .await
            .unwrap();
        let (made, key) = keys.create("service:my-app", None).await.unwrap();
        assert!(key.starts_with("hgk_"));
        let stored = std::fs::read_to_string(dir.path().join("api-keys.json")).unwrap();
        assert!(!stored.contains(&key[4..]), "the key itself is not stored");
        let hashes = keys.subscribe().borrow().clone();
        assert_eq!(hashes.keys[0].sha256, sha256(key.as_bytes()));
        assert_eq!(hashes.keys[0].principal, "service:my-app");
        let again = ApiKeys::open(Documents::Local(dir.path().to_path_buf()))
            .await
            .unwrap();
        assert_eq!(again.list(), vec![made.clone()]);
        again.delete(&made.id).await.unwrap();
        assert!(again.subscribe().borrow().keys.is_empty());
        assert!(matches!(
            again.delete(&made.id).await,
            Err(KeyError::Unknown(_))
        ));
        assert!(matches!(
            again.create("a b", None).await,
            Err(KeyError::BadPrincipal(_))
        ));
        assert!(matches!(
            again.create("anonymous", None).await,
            Err(KeyError::ReservedPrincipal)
        ));
    }
}

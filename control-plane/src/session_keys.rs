//! The fleet's session keys. The control plane makes a 256-bit key, keeps
//! it in its store (the state directory, or etcd for replicas), sends it to
//! every data plane (`SessionKeys`, first on each stream) and replaces it
//! every `rotation`; the key it replaced stays valid until the next
//! rotation. Data planes seal the session ids of `/groups/{g}/mcp` with
//! the newest key and open them with any, so a session one data plane
//! sealed routes on every other, and a client can neither read nor forge
//! one.
//!
//! Replicas share one ring in etcd: each reads it every [`ETCD_CHECK`] and
//! rotates it with a compare-and-swap, so exactly one rotation wins and
//! the others adopt it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hangar_proto::v1;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::documents::Documents;
use crate::stored::{Revision, StoreError};

/// Name of the ring in the state directory, and under the etcd prefix.
const NAME: &str = "session-keys";
/// How often replicas read the shared ring.
const ETCD_CHECK: Duration = Duration::from_secs(10);
/// Keys a ring holds: the newest, and the one it replaced.
const KEPT: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredKey {
    id: u32,
    /// 32 bytes, base64.
    secret: String,
    created_unix_ms: u64,
}

/// The keys, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Ring {
    keys: Vec<StoredKey>,
}

impl Ring {
    /// This ring with a new key in front, keeping the one it replaces.
    fn rotated(&self, now_ms: u64) -> Self {
        let id = self
            .keys
            .iter()
            .map(|k| k.id)
            .max()
            .map_or(1, |id| id.wrapping_add(1).max(1));
        let secret: [u8; 32] = rand::random();
        let mut keys = vec![StoredKey {
            id,
            secret: STANDARD.encode(secret),
            created_unix_ms: now_ms,
        }];
        keys.extend(self.keys.iter().take(KEPT - 1).cloned());
        Self { keys }
    }

    /// True when the ring has no key, or its newest is `rotation` old.
    fn due(&self, now_ms: u64, rotation: Duration) -> bool {
        self.keys.first().is_none_or(|k| {
            now_ms.saturating_sub(k.created_unix_ms)
                >= u64::try_from(rotation.as_millis()).unwrap_or(u64::MAX)
        })
    }

    fn message(&self) -> v1::SessionKeys {
        v1::SessionKeys {
            keys: self
                .keys
                .iter()
                .filter_map(|k| {
                    let secret = STANDARD.decode(&k.secret).ok().filter(|s| s.len() == 32)?;
                    Some(v1::SessionKey { id: k.id, secret })
                })
                .collect(),
        }
    }
}

/// The keys in force, following the store.
#[derive(Debug)]
pub(crate) struct SessionKeys {
    store: Documents,
    rotation: Duration,
    current: watch::Sender<Arc<v1::SessionKeys>>,
    ring: parking_lot::Mutex<(Ring, Option<Revision>)>,
}

impl SessionKeys {
    /// Loads the ring, making (and storing) a first key, or rotating one
    /// that is due.
    pub(crate) async fn open(store: Documents, rotation: Duration) -> Result<Self, StoreError> {
        let keys = Self {
            store,
            rotation,
            current: watch::Sender::new(Arc::default()),
            ring: parking_lot::Mutex::new((Ring::default(), None)),
        };
        keys.refresh().await?;
        Ok(keys)
    }

    /// The keys in force, following rotations.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<v1::SessionKeys>> {
        self.current.subscribe()
    }

    /// Reads the stored ring and rotates it when due.
    async fn refresh(&self) -> Result<(), StoreError> {
        // A few rounds at most: each lost compare-and-swap means another
        // replica just stored a fresh ring.
        for _ in 0..3 {
            let (ring, base) = match self.store.load_json::<Ring>(NAME).await? {
                Some((ring, revision)) => (ring, Some(revision)),
                None => (Ring::default(), None),
            };
            let now = hangar_runtime::unix_ms();
            if !ring.due(now, self.rotation) {
                self.adopt(ring, base);
                return Ok(());
            }
            let rotated = ring.rotated(now);
            if self.store.save_json(NAME, &rotated, base).await? {
                if ring.keys.is_empty() {
                    tracing::info!(key.id = rotated.keys[0].id, "made the fleet's session key");
                } else {
                    tracing::info!(
                        key.id = rotated.keys[0].id,
                        "rotated the session key; the one before stays valid until the next rotation"
                    );
                }
                self.adopt(rotated, None);
                return Ok(());
            }
        }
        Ok(())
    }

    fn adopt(&self, ring: Ring, revision: Option<Revision>) {
        let message = ring.message();
        *self.ring.lock() = (ring, revision);
        self.current.send_if_modified(|current| {
            if **current == message {
                return false;
            }
            *current = Arc::new(message);
            true
        });
    }

    /// Keeps the keys fresh until `shutdown`: rotates when due, and with
    /// etcd adopts other replicas' rotations.
    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let check = if self.store.shared() {
            ETCD_CHECK
        } else {
            (self.rotation / 10).clamp(Duration::from_millis(100), Duration::from_secs(60))
        };
        let mut ticks = tokio::time::interval(check);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.cancelled() => return,
            }
            if let Err(err) = self.refresh().await {
                tracing::warn!(error = %hangar_runtime::error_chain(&err), "cannot read the session keys; keeping the ones in force");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_first_key_is_made_kept_and_rotated_with_the_one_before_still_valid() {
        let dir = tempfile::tempdir().unwrap();
        let store = Documents::Local(dir.path().to_path_buf());
        let keys = SessionKeys::open(store.clone(), Duration::from_secs(3600))
            .await
            .unwrap();
        let first = keys.subscribe().borrow().clone();
        assert_eq!(first.keys.len(), 1);
        assert_eq!(first.keys[0].secret.len(), 32);
        // Another start finds the same key.
        let again = SessionKeys::open(store.clone(), Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(*again.subscribe().borrow(), first);
        // Due at once: rotated, the old key second.
        let rotated = SessionKeys::open(store.clone(), Duration::ZERO)
            .await
            .unwrap();
        let ring = rotated.subscribe().borrow().clone();
        assert_eq!(ring.keys.len(), 2);
        assert_eq!(ring.keys[1], first.keys[0]);
        assert_ne!(ring.keys[0].id, first.keys[0].id);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("session-keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A third rotation drops the oldest.
        let third = SessionKeys::open(store, Duration::ZERO).await.unwrap();
        let ring3 = third.subscribe().borrow().clone();
        assert_eq!(ring3.keys.len(), 2);
        assert_eq!(ring3.keys[1], ring.keys[0]);
    }
}

//! The current config: validated, versioned, stored, and watched.
//!
//! `ConfigState` is the single writer of the config. Applies are serialized
//! by a mutex that is never held across an `.await` (the store write is a
//! short synchronous write of one small file). Every new snapshot is published
//! on a `watch` channel that each data-plane stream follows.

use std::sync::Arc;

use hangar_config::{Config, ConfigErrors};
use hangar_proto::v1::Snapshot;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::store::{Store, StoreError, StoredConfig};

/// The config in force.
#[derive(Debug, Clone)]
pub struct Current {
    /// Version of the config; 0 before the first apply.
    pub version: u64,
    /// The validated config.
    pub config: Arc<Config>,
    /// What data planes are sent for this version.
    pub snapshot: Arc<Snapshot>,
}

/// Why an apply was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The config is not valid; nothing was changed.
    #[error("invalid config:\n{0}")]
    Invalid(ConfigErrors),
    /// The config could not be stored; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why the control plane cannot start from its state directory.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The state directory could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored config no longer validates.
    #[error("stored config (version {version}) is not valid:\n{errors}")]
    Invalid {
        /// Version of the stored config.
        version: u64,
        /// Every error found.
        errors: ConfigErrors,
    },
}

/// Result of an accepted apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Version now in force.
    pub version: u64,
    /// False when the config equals the one in force and no version was made.
    pub changed: bool,
}

/// Owner of the config in force.
#[derive(Debug)]
pub struct ConfigState {
    store: Store,
    current: Mutex<Current>,
    snapshots: watch::Sender<Arc<Snapshot>>,
}

// === impl ConfigState ===

impl ConfigState {
    /// Loads the stored config, if any, and validates it again.
    pub fn load(store: Store) -> Result<Self, LoadError> {
        let current = match store.load()? {
            Some(stored) => {
                let config =
                    hangar_config::load(&stored.source_name, &stored.yaml).map_err(|errors| {
                        LoadError::Invalid {
                            version: stored.version,
                            errors,
                        }
                    })?;
                current_of(stored.version, config)
            }
            None => current_of(
                0,
                Config {
                    servers: Default::default(),
                },
            ),
        };
        let (snapshots, _) = watch::channel(current.snapshot.clone());
        Ok(Self {
            store,
            current: Mutex::new(current),
            snapshots,
        })
    }

    /// The config in force.
    pub fn current(&self) -> Current {
        self.current.lock().clone()
    }

    /// Follows the snapshots published from now on, starting with the current one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.subscribe()
    }

    /// Validates, stores and publishes a config. An invalid config or a
    /// failed store write changes nothing.
    pub fn apply(&self, source_name: &str, yaml: &str) -> Result<Applied, ApplyError> {
        let config = hangar_config::load(source_name, yaml).map_err(ApplyError::Invalid)?;
        let mut current = self.current.lock();
        if *current.config == config {
            return Ok(Applied {
                version: current.version,
                changed: false,
            });
        }
        let version = current.version + 1;
        // Durable first: a data plane must never run a version the store lost.
        self.store.save(&StoredConfig {
            version,
            source_name: source_name.to_owned(),
            yaml: yaml.to_owned(),
        })?;
        *current = current_of(version, config);
        self.snapshots.send_replace(current.snapshot.clone());
        tracing::info!(
            config.version = version,
            config.servers = current.config.remotes().count(),
            config.groups = current.config.groups().count(),
            "config applied"
        );
        Ok(Applied {
            version,
            changed: true,
        })
    }
}

impl ConfigState {
    /// Publishes `snapshot` to every data plane as if it had been applied,
    /// bypassing validation and the store. For fault-injection tests only:
    /// it is how a test makes a data plane receive a snapshot it must NACK.
    pub fn inject_snapshot(&self, snapshot: Snapshot) {
        tracing::warn!(config.version = snapshot.version, "injecting a snapshot");
        self.snapshots.send_replace(Arc::new(snapshot));
    }
}

fn current_of(version: u64, config: Config) -> Current {
    let snapshot = Arc::new(config.to_snapshot(version));
    Current {
        version,
        config: Arc::new(config),
        snapshot,
    }
}

//! The current config: validated, versioned, stored, and watched.
//!
//! `ConfigState` is this replica's writer of the config. Its applies are
//! serialized by an async mutex held across the store write; the config in
//! force sits behind a plain mutex that is never held across an `.await`,
//! so readers never wait for the store. Every new snapshot is published on a
//! `watch` channel that each data-plane stream follows, whether it came from
//! an apply here or, with the shared store, from another replica's apply
//! seen through [`ConfigState::follow_store`].
//!
//! An applied text is loaded on a blocking thread: loading is CPU-bound
//! (a large config takes tens of milliseconds), and an async worker busy
//! loading is one that cannot answer `status`.

use std::sync::Arc;
use std::time::Duration;

use hangar_config::{Config, ConfigErrors};
use hangar_proto::v1::Snapshot;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::traces::ApplyTrace;
use tokio_util::sync::CancellationToken;

use crate::store::{ConfigStore, Latest, Revision, Saved, StoreError, StoredConfig};
use hangar_runtime::backoff::Backoff;
use hangar_runtime::error_chain;

/// The config in force.
#[derive(Debug, Clone)]
pub struct Current {
    /// Version of the config; 0 before the first apply.
    pub version: u64,
    /// The validated config.
    pub config: Arc<Config>,
    /// What data planes are sent for this version.
    pub snapshot: Arc<Snapshot>,
    /// Where this version sits in the store; writes are derived from it.
    revision: Revision,
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
    /// Loading stopped without an answer (it panicked, or the runtime is
    /// shutting down); nothing was changed.
    #[error("loading the config did not finish: {0}")]
    Interrupted(String),
    /// The config has no servers while some are in force, and emptying
    /// every data plane was not asked for; nothing was changed.
    #[error(
        "the config has no servers: applying it would remove every server ({in_force} in force) from every data plane; pass --allow-empty to do that"
    )]
    WouldRemoveEveryServer {
        /// Servers and groups in force.
        in_force: usize,
    },
    /// Another replica stored a config first; this one was not stored.
    #[error(
        "config changed concurrently (version {version} was applied by another replica); re-run apply"
    )]
    Conflict {
        /// The version now in force.
        version: u64,
    },
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
    store: ConfigStore,
    /// Serializes this replica's applies across the store write.
    writer: tokio::sync::Mutex<()>,
    current: Mutex<Current>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    /// The trace of the apply that made the version in force, if traced.
    apply_trace: ApplyTrace,
}

// === impl ConfigState ===

impl ConfigState {
    /// Loads the stored config, if any, and validates it again.
    pub async fn load(store: ConfigStore) -> Result<Self, LoadError> {
        let current = match store.load().await? {
            Some((stored, revision)) => {
                let config =
                    hangar_config::load(&stored.source_name, &stored.yaml).map_err(|errors| {
                        LoadError::Invalid {
                            version: stored.version,
                            errors,
                        }
                    })?;
                current_of(stored.version, config, revision)
            }
            None => current_of(0, Config::default(), 0),
        };
        let (snapshots, _) = watch::channel(current.snapshot.clone());
        Ok(Self {
            store,
            writer: tokio::sync::Mutex::new(()),
            current: Mutex::new(current),
            snapshots,
            apply_trace: ApplyTrace::default(),
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

    /// Validates, stores and publishes a config. An invalid config, a
    /// failed store write or a lost race with another replica changes
    /// nothing; nor does a config with no servers over one with some,
    /// unless `allow_empty`.
    pub async fn apply(
        &self,
        source_name: &str,
        yaml: &str,
        allow_empty: bool,
    ) -> Result<Applied, ApplyError> {
        // Before the writer lock: a slow load holds up no other apply.
        let config = load_blocking(source_name, yaml)
            .await?
            .map_err(ApplyError::Invalid)?;
        let _writer = self.writer.lock().await;
        // Build on the latest stored config, not on what the watch has
        // delivered so far: a lagging watch would otherwise call a config
        // "unchanged" that another replica has since replaced.
        let mut recreate = false;
        match self.store.latest().await? {
            Latest::Stored(latest, revision) => self.adopt(latest, revision),
            // Deleted by hand: the next version creates the key again, and
            // versions go on from the one in force.
            Latest::Absent => recreate = true,
            Latest::OnlyWriter => {}
        }
        let base = self.current();
        let base_revision = if recreate { 0 } else { base.revision };
        // Judged against the latest config, as the store is: an empty
        // first config removes nothing and needs no flag.
        if config.servers.is_empty() && !base.config.servers.is_empty() && !allow_empty {
            return Err(ApplyError::WouldRemoveEveryServer {
                in_force: base.config.servers.len(),
            });
        }
        if *base.config == config {
            return Ok(Applied {
                version: base.version,
                changed: false,
            });
        }
        let stored = StoredConfig {
            version: base.version + 1,
            source_name: source_name.to_owned(),
            yaml: yaml.to_owned(),
        };
        // Durable first: a data plane must never run a version the store lost.
        match self.store.save(&stored, base_revision).await? {
            Saved::Done { revision } => {
                let version = stored.version;
                let next = current_of(version, config, revision);
                tracing::info!(
                    config.version = version,
                    config.servers = next.config.remotes().count(),
                    config.groups = next.config.groups().count(),
                    "config applied"
                );
                self.install(next);
                Ok(Applied {
                    version,
                    changed: true,
                })
            }
            Saved::Conflict { latest, revision } => {
                let version = latest.version;
                let same = load_blocking(&latest.source_name, &latest.yaml)
                    .await?
                    .is_ok_and(|theirs| theirs == config);
                // Take the winner now rather than when the watch delivers
                // it, so that a re-run apply builds on it.
                self.adopt(latest, revision);
                if same {
                    return Ok(Applied {
                        version,
                        changed: false,
                    });
                }
                tracing::info!(config.version = version, "apply lost to another replica");
                Err(ApplyError::Conflict { version })
            }
        }
    }

    /// Follows the shared store until `shutdown`, publishing every config
    /// another replica stores. A lost connection is retried with backoff;
    /// meanwhile the config in force keeps being served. Returns at once
    /// for the embedded store, which has no other writer.
    pub async fn follow_store(self: Arc<Self>, shutdown: CancellationToken) {
        const FIRST_RETRY: Duration = Duration::from_millis(100);
        const LAST_RETRY: Duration = Duration::from_secs(5);
        let ConfigStore::Etcd(store) = &self.store else {
            return;
        };
        let mut backoff = Backoff::new(FIRST_RETRY, LAST_RETRY);
        let mut failing = false;
        loop {
            let started = tokio::time::Instant::now();
            let after = self.current.lock().revision;
            let followed = store.follow(after, |stored, revision| {
                if failing {
                    tracing::info!(etcd.endpoints = store.endpoints(), "config watch resumed");
                    failing = false;
                }
                self.adopt(stored, revision);
            });
            let err = tokio::select! {
                err = followed => err,
                () = shutdown.cancelled() => return,
            };
            // A watch that ran for a while was healthy: start backing off afresh.
            if started.elapsed() > LAST_RETRY {
                backoff.reset();
            }
            let retry = backoff.next_delay();
            tracing::warn!(
                error = %error_chain(&err),
                retry.in_ms = retry.as_millis() as u64,
                "config watch lost; serving the config in force until it is back"
            );
            failing = true;
            tokio::select! {
                () = tokio::time::sleep(retry) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Publishes a config read from the store if it is newer than the one
    /// in force. One that no longer validates (say, written by a newer
    /// replica) is logged and skipped: the config in force stays.
    fn adopt(&self, stored: StoredConfig, revision: Revision) {
        if revision <= self.current.lock().revision {
            return;
        }
        match hangar_config::load(&stored.source_name, &stored.yaml) {
            Ok(config) => {
                let next = current_of(stored.version, config, revision);
                let (version, servers, groups) = (
                    next.version,
                    next.config.remotes().count(),
                    next.config.groups().count(),
                );
                if self.install(next) {
                    tracing::info!(
                        config.version = version,
                        config.servers = servers,
                        config.groups = groups,
                        "config updated from the shared store"
                    );
                }
            }
            Err(errors) => tracing::error!(
                config.version = stored.version,
                %errors,
                "stored config does not validate here; keeping the config in force"
            ),
        }
    }

    /// Makes `next` the config in force unless a newer one already is
    /// (the watch and the apply path can both deliver a version).
    fn install(&self, next: Current) -> bool {
        let mut current = self.current.lock();
        if next.revision <= current.revision {
            return false;
        }
        *current = next;
        // Before publishing: the pushes of this version look it up.
        self.apply_trace.note(current.version);
        self.snapshots.send_replace(current.snapshot.clone());
        true
    }

    /// The span context of the apply that made `version` here, if traced.
    pub(crate) fn apply_trace(&self, version: u64) -> Option<opentelemetry::trace::SpanContext> {
        self.apply_trace.of(version)
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

/// [`hangar_config::load`] on a blocking thread, so that the async workers
/// stay free for `status` and the data-plane streams however long it takes.
async fn load_blocking(
    source_name: &str,
    yaml: &str,
) -> Result<Result<Config, ConfigErrors>, ApplyError> {
    let (source_name, yaml) = (source_name.to_owned(), yaml.to_owned());
    tokio::task::spawn_blocking(move || hangar_config::load(&source_name, &yaml))
        .await
        .map_err(|err| ApplyError::Interrupted(err.to_string()))
}

fn current_of(version: u64, config: Config, revision: Revision) -> Current {
    let snapshot = Arc::new(config.to_snapshot(version));
    Current {
        version,
        config: Arc::new(config),
        snapshot,
        revision,
    }
}

//! The last good snapshot on disk (`--cache-dir`), so a data plane that
//! restarts while the control plane is down serves at once.
//!
//! One file holds the protobuf-encoded snapshot, another the last fleet
//! shares of rate limits, so a restarted data plane runs on its share
//! rather than the whole budget, and another the hashes of the API keys, so
//! it lets keyed clients in while the control plane is away, and another
//! the signing keys last fetched for bearer tokens. Writes go to a temporary file that is
//! synced and renamed over the old one, so a crash leaves the old or the
//! new one, never a torn one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use hangar_proto::v1::{ApiKeys, JwtAuth, RateShares, Snapshot};
use hangar_runtime::durable::{self, DurableWriteError};
use prost::Message;

const FILE: &str = "snapshot.pb";
const SHARES: &str = "shares.pb";
const API_KEYS: &str = "api-keys.pb";
const JWKS: &str = "jwks.pb";

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The directory or file could not be read or written.
    #[error("cache {path}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file does not hold what it should.
    #[error("cache {path} is corrupt")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The decoding error.
        #[source]
        source: prost::DecodeError,
    },
}

/// A snapshot cache directory.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotCache {
    dir: PathBuf,
}

impl SnapshotCache {
    /// Uses `dir`, creating it if needed.
    pub(crate) fn open(dir: &Path) -> Result<Self, CacheError> {
        fs::create_dir_all(dir).map_err(|source| CacheError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached snapshot, or `None` when there is none yet.
    pub(crate) fn load(&self) -> Result<Option<Snapshot>, CacheError> {
        self.read(FILE)
    }

    /// Durably replaces the cached snapshot.
    pub(crate) fn save(&self, snapshot: &Snapshot) -> Result<(), CacheError> {
        self.write(FILE, snapshot)
    }

    /// The last rate limit shares, or `None` when there are none yet.
    pub(crate) fn load_shares(&self) -> Result<Option<RateShares>, CacheError> {
        self.read(SHARES)
    }

    /// Durably replaces the cached shares.
    pub(crate) fn save_shares(&self, shares: &RateShares) -> Result<(), CacheError> {
        self.write(SHARES, shares)
    }

    /// The last API key hashes, or `None` when there are none yet.
    pub(crate) fn load_api_keys(&self) -> Result<Option<ApiKeys>, CacheError> {
        self.read(API_KEYS)
    }

    /// Durably replaces the cached API key hashes (SHA-256 of random keys:
    /// nothing a reader could log in with).
    pub(crate) fn save_api_keys(&self, keys: &ApiKeys) -> Result<(), CacheError> {
        self.write(API_KEYS, keys)
    }

    /// The last key set fetched from `auth.jwt.jwks_url`, in a `JwtAuth`
    /// that holds only the URL and the set.
    pub(crate) fn load_jwks(&self) -> Result<Option<JwtAuth>, CacheError> {
        self.read(JWKS)
    }

    /// Durably replaces the cached key set (public keys only).
    pub(crate) fn save_jwks(&self, jwks: &JwtAuth) -> Result<(), CacheError> {
        self.write(JWKS, jwks)
    }

    fn read<M: Message + Default>(&self, file: &str) -> Result<Option<M>, CacheError> {
        let path = self.dir.join(file);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        M::decode(bytes.as_slice())
            .map(Some)
            .map_err(|source| CacheError::Corrupt { path, source })
    }

    fn write(&self, file: &str, message: &impl Message) -> Result<(), CacheError> {
        durable::replace_file(&self.dir, file, &message.encode_to_vec())
            .map_err(|DurableWriteError { path, source }| CacheError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A saved snapshot loads back; an empty directory has none; garbage is
    /// an error, not an empty config.
    #[test]
    fn round_trip_and_corruption() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("cache");
        let cache = SnapshotCache::open(&dir).unwrap();
        assert_eq!(cache.load().unwrap(), None);
        let snapshot = Snapshot {
            version: 4,
            ..Default::default()
        };
        cache.save(&snapshot).unwrap();
        assert_eq!(cache.load().unwrap(), Some(snapshot));
        fs::write(dir.join(FILE), b"\xff\xff\xff").unwrap();
        assert!(matches!(cache.load(), Err(CacheError::Corrupt { .. })));
        assert_eq!(cache.load_shares().unwrap(), None);
        let shares = RateShares {
            version: 4,
            data_planes: 3,
            ..Default::default()
        };
        cache.save_shares(&shares).unwrap();
        assert_eq!(cache.load_shares().unwrap(), Some(shares));
    }
}

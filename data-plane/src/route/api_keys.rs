//! The API keys the control plane issued, as hashes, and who each speaks
//! for: what a data plane checks an MCP client's key against. Revoked keys
//! leave with the next `ApiKeys` the control plane sends.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hangar_proto::v1;

/// Who a key speaks for, and until when.
#[derive(Debug, Clone)]
struct Entry {
    principal: Arc<str>,
    /// 0: never expires.
    expires_unix_ms: u64,
}

/// Why a key was refused, in words safe to show the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRefusal {
    /// No key of the fleet has this hash (never issued, or revoked).
    Unknown,
    /// The key's time is up.
    Expired,
}

/// The keys in force, by the SHA-256 of the key.
#[derive(Debug, Default)]
pub(crate) struct ApiKeyBook {
    keys: ArcSwap<HashMap<Vec<u8>, Entry>>,
}

impl ApiKeyBook {
    /// Puts the control plane's keys in force, replacing all before.
    pub(crate) fn install(&self, keys: &v1::ApiKeys) {
        let map = keys
            .keys
            .iter()
            .map(|k| {
                let entry = Entry {
                    principal: Arc::from(k.principal.as_str()),
                    expires_unix_ms: k.expires_unix_ms,
                };
                (k.sha256.clone(), entry)
            })
            .collect();
        self.keys.store(Arc::new(map));
    }

    /// The principal `key` speaks for, at `now_unix_ms`.
    pub(crate) fn check(&self, key: &[u8], now_unix_ms: u64) -> Result<Arc<str>, KeyRefusal> {
        let hash = ring::digest::digest(&ring::digest::SHA256, key);
        let keys = self.keys.load();
        let entry = keys.get(hash.as_ref()).ok_or(KeyRefusal::Unknown)?;
        if entry.expires_unix_ms != 0 && entry.expires_unix_ms <= now_unix_ms {
            return Err(KeyRefusal::Expired);
        }
        Ok(entry.principal.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(keys: &[(&str, &str, u64)]) -> ApiKeyBook {
        let book = ApiKeyBook::default();
        book.install(&v1::ApiKeys {
            keys: keys
                .iter()
                .map(|(key, principal, expires)| v1::ApiKeyHash {
                    id: "id".into(),
                    principal: (*principal).into(),
                    sha256: ring::digest::digest(&ring::digest::SHA256, key.as_bytes())
                        .as_ref()
                        .to_vec(),
                    expires_unix_ms: *expires,
                })
                .collect(),
        });
        book
    }

    #[test]
    fn a_key_speaks_for_its_principal_until_it_expires_or_is_revoked() {
        let keys = book(&[("hgk_a", "service:a", 0), ("hgk_b", "service:b", 1_000)]);
        assert_eq!(keys.check(b"hgk_a", 5_000).as_deref(), Ok("service:a"));
        assert_eq!(keys.check(b"hgk_b", 999).as_deref(), Ok("service:b"));
        assert_eq!(keys.check(b"hgk_b", 1_000), Err(KeyRefusal::Expired));
        assert_eq!(keys.check(b"hgk_c", 0), Err(KeyRefusal::Unknown));
        keys.install(&v1::ApiKeys::default());
        assert_eq!(keys.check(b"hgk_a", 0), Err(KeyRefusal::Unknown));
    }
}

//! The keys that seal the session ids of `/groups/{g}/mcp`: the fleet's,
//! from the control plane (newest first: seal with the first, open with
//! any), and until they arrive one of this process's own, so sessions are
//! sealed from the first request on. ChaCha20-Poly1305 with a random nonce
//! per id: a client can neither read an id (member names, member session
//! ids, its `initialize` params) nor alter or forge one.

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hangar_proto::v1;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// The id of this process's own key: no fleet key has it.
const LOCAL: u32 = 0;

/// One key and its id.
struct Key {
    id: u32,
    key: LessSafeKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Key {
    fn new(id: u32, secret: &[u8]) -> Option<Self> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, secret).ok()?;
        Some(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }
}

/// The keys in force.
#[derive(Debug)]
pub(crate) struct SessionKeys {
    /// The fleet's keys, newest first; empty until the control plane sent
    /// them.
    fleet: ArcSwap<Vec<Key>>,
    /// This process's own key.
    local: Key,
}

impl Default for SessionKeys {
    fn default() -> Self {
        let secret: [u8; 32] = rand::random();
        Self {
            fleet: ArcSwap::from_pointee(Vec::new()),
            local: Key::new(LOCAL, &secret).expect("32 bytes make a ChaCha20-Poly1305 key"),
        }
    }
}

impl SessionKeys {
    /// Puts the fleet's keys in force (keys of the wrong size are left out).
    pub(crate) fn install(&self, keys: &v1::SessionKeys) {
        let keys: Vec<Key> = keys
            .keys
            .iter()
            .filter(|k| k.id != LOCAL)
            .filter_map(|k| Key::new(k.id, &k.secret))
            .collect();
        tracing::debug!(keys = keys.len(), "session keys in force");
        self.fleet.store(std::sync::Arc::new(keys));
    }

    /// `plain` sealed with the newest key, bound to `context`:
    /// `KEYID.BASE64(nonce ‖ ciphertext ‖ tag)`.
    pub(crate) fn seal(&self, plain: &[u8], context: &[u8]) -> String {
        let fleet = self.fleet.load();
        let key = fleet.first().unwrap_or(&self.local);
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut sealed = plain.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context),
                &mut sealed,
            )
            .expect("sealing a short id cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        format!("{}.{}", key.id, URL_SAFE_NO_PAD.encode(out))
    }

    /// The plain text of an id [`SessionKeys::seal`] made with `context`,
    /// if a key in force opens it; `None` for anything altered or forged.
    pub(crate) fn open(&self, sealed: &str, context: &[u8]) -> Option<Vec<u8>> {
        let (id, body) = sealed.split_once('.')?;
        let id: u32 = id.parse().ok()?;
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let fleet = self.fleet.load();
        let key = if id == LOCAL {
            &self.local
        } else {
            fleet.iter().find(|k| k.id == id)?
        };
        let mut buffer = ciphertext.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(context), &mut buffer)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(ids: &[(u32, u8)]) -> v1::SessionKeys {
        v1::SessionKeys {
            keys: ids
                .iter()
                .map(|&(id, byte)| v1::SessionKey {
                    id,
                    secret: vec![byte; 32],
                })
                .collect(),
        }
    }

    #[test]
    fn sealed_ids_open_on_every_data_plane_of_the_fleet_and_nowhere_else() {
        let (a, b, stranger) = (
            SessionKeys::default(),
            SessionKeys::default(),
            SessionKeys::default(),
        );
        a.install(&fleet(&[(7, 1)]));
        b.install(&fleet(&[(7, 1)]));
        stranger.install(&fleet(&[(7, 2)]));
        let sealed = a.seal(b"member.session", b"ctx");
        assert!(sealed.starts_with("7."));
        assert_eq!(
            b.open(&sealed, b"ctx").as_deref(),
            Some(&b"member.session"[..])
        );
        assert_eq!(stranger.open(&sealed, b"ctx"), None);
        // Bound to its context.
        assert_eq!(b.open(&sealed, b"other"), None);
        // Two seals of one text differ (random nonces).
        assert_ne!(sealed, a.seal(b"member.session", b"ctx"));
    }

    #[test]
    fn a_rotation_keeps_the_key_before_valid_and_then_drops_it() {
        let dp = SessionKeys::default();
        dp.install(&fleet(&[(1, 1)]));
        let old = dp.seal(b"x", b"");
        dp.install(&fleet(&[(2, 2), (1, 1)]));
        assert!(dp.seal(b"x", b"").starts_with("2."));
        assert_eq!(dp.open(&old, b"").as_deref(), Some(&b"x"[..]));
        dp.install(&fleet(&[(3, 3), (2, 2)]));
        assert_eq!(dp.open(&old, b""), None);
    }

    #[test]
    fn before_the_fleet_keys_ids_are_sealed_with_the_process_key() {
        let dp = SessionKeys::default();
        let early = dp.seal(b"x", b"");
        assert!(early.starts_with("0."));
        dp.install(&fleet(&[(5, 5)]));
        assert_eq!(dp.open(&early, b"").as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn anything_altered_or_made_up_opens_to_nothing() {
        let dp = SessionKeys::default();
        dp.install(&fleet(&[(1, 1)]));
        let sealed = dp.seal(b"member", b"");
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for forged in [
            "",
            ".",
            "1.",
            "1.AAAA",
            "x.abc",
            "99.abc",
            "0.",
            flipped.as_str(),
        ] {
            assert_eq!(dp.open(forged, b""), None, "{forged}");
        }
    }
}

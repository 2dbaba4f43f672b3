//! Bearer tokens (JWTs) of `auth.jwt`: the signing keys in force and the
//! check of one token — signature (RS*, PS*, ES256, EdDSA; never `none` or
//! a shared secret), `exp`/`nbf` with the configured leeway, `iss`, and
//! `aud` naming this resource, as the MCP authorization spec asks.
//!
//! A token that passed is remembered by its SHA-256 until it expires (at
//! most [`CACHE_ENTRIES`] of them), so a client's next calls cost a hash
//! and a lookup rather than a signature check; new keys or a new config
//! forget them all. Keys come inline with the snapshot or from `jwks_url`,
//! which [`fetch`] keeps fresh.

pub(crate) mod fetch;
#[cfg(test)]
mod tests;

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use base64::Engine;
use hangar_proto::v1;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lru::LruCache;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::route::access::Principal;

/// Longest token taken, in bytes: far above any real one, and a bound on
/// the work a hostile one can cause.
pub(crate) const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Tokens remembered as checked.
const CACHE_ENTRIES: usize = 10_000;
/// Fewest seconds between two fetches a token with an unknown key asks for.
const UNKNOWN_KEY_REFETCH: Duration = Duration::from_secs(30);
/// How long a call with an unknown key waits for the fetch it asked for.
const UNKNOWN_KEY_WAIT: Duration = Duration::from_secs(2);

/// Why a token was refused, in words safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenRefusal {
    TooLong,
    Malformed,
    AlgNone,
    Algorithm(String),
    NoKeys,
    UnknownKey,
    Signature,
    Expired,
    NotYet,
    Missing(String),
    Issuer,
    Audience,
    NoPrincipal(String),
}

impl fmt::Display for TokenRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => write!(f, "the bearer token is longer than {MAX_TOKEN_LEN} bytes"),
            Self::Malformed => f.write_str("the bearer token is not a well-formed JWT"),
            Self::AlgNone => f.write_str("unsigned tokens (alg: none) are not accepted"),
            Self::Algorithm(alg) => write!(f, "the token's algorithm {alg} is not accepted"),
            Self::NoKeys => f.write_str("no signing keys are loaded yet (auth.jwt)"),
            Self::UnknownKey => f.write_str("the token was signed with a key not in the key set"),
            Self::Signature => f.write_str("the token's signature does not verify"),
            Self::Expired => f.write_str("the token expired"),
            Self::NotYet => f.write_str("the token is not valid yet (nbf)"),
            Self::Missing(claim) => write!(f, "the token has no '{claim}' claim"),
            Self::Issuer => f.write_str("the token is from another issuer"),
            Self::Audience => f.write_str("the token is not for this resource (aud)"),
            Self::NoPrincipal(claim) => {
                write!(f, "the token's '{claim}' claim names no principal")
            }
        }
    }
}

/// A token that passed: whom it names, until when.
#[derive(Debug, Clone)]
struct Checked {
    principal: Principal,
    exp: u64,
    nbf: u64,
}

/// The JWT settings and keys in force.
#[derive(Debug, Default)]
pub(crate) struct JwtBook {
    state: ArcSwapOption<State>,
    cache: Mutex<Option<LruCache<[u8; 32], Checked>>>,
    /// The `jwks_url` to keep fresh (`None`: none configured).
    url: watch::Sender<Option<String>>,
    /// Counts key sets installed, so a waiting call sees a new one.
    installed: watch::Sender<u64>,
    /// A token named an unknown key: fetch now.
    refetch: Notify,
    last_refetch: Mutex<Option<Instant>>,
}

#[derive(Debug)]
struct State {
    config: v1::JwtAuth,
    algorithms: Vec<Algorithm>,
    keys: Vec<Key>,
}

#[derive(Debug, Clone)]
struct Key {
    kid: Option<String>,
    key: DecodingKey,
}

impl JwtBook {
    /// Puts `config` in force (`None`: no JWTs taken). The same config
    /// again changes nothing, so fetched keys and checked tokens stay.
    pub(crate) fn configure(&self, config: Option<&v1::JwtAuth>) {
        let current = self.state.load();
        if current.as_deref().map(|s| &s.config) == config {
            return;
        }
        let Some(config) = config else {
            self.state.store(None);
            self.url.send_replace(None);
            self.forget_tokens();
            return;
        };
        let same_url = current
            .as_deref()
            .is_some_and(|s| s.config.jwks_url == config.jwks_url);
        let keys = if !config.jwks_json.is_empty() {
            parse_keys(&config.jwks_json).unwrap_or_default()
        } else if same_url {
            // Keys fetched from the same URL stay until the next fetch.
            current
                .as_deref()
                .map(|s| s.keys.clone())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        self.state.store(Some(Arc::new(State {
            algorithms: config
                .algorithms
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            config: config.clone(),
            keys,
        })));
        self.forget_tokens();
        let url = (!config.jwks_url.is_empty()).then(|| config.jwks_url.clone());
        self.url.send_if_modified(|now| {
            let changed = *now != url;
            *now = url;
            changed
        });
    }

    /// The URL to fetch keys from, as it changes.
    pub(crate) fn watch_url(&self) -> watch::Receiver<Option<String>> {
        self.url.subscribe()
    }

    /// Installs the key set fetched from `url`, if that is still the
    /// configured one. Returns how many keys it holds.
    pub(crate) fn install_fetched(&self, url: &str, jwks: &str) -> Result<usize, String> {
        let keys = parse_keys(jwks)?;
        let count = keys.len();
        let Some(current) = self.state.load_full() else {
            return Ok(count);
        };
        if current.config.jwks_url != url {
            return Ok(count);
        }
        self.state.store(Some(Arc::new(State {
            config: current.config.clone(),
            algorithms: current.algorithms.clone(),
            keys,
        })));
        self.forget_tokens();
        self.installed.send_modify(|n| *n += 1);
        Ok(count)
    }

    /// Resolves when a token asked for a fetch (an unknown key).
    pub(crate) async fn refetch_wanted(&self) {
        self.refetch.notified().await;
    }

    /// Checks `token` at `now_s` (Unix seconds).
    pub(crate) fn check(&self, token: &[u8], now_s: u64) -> Result<Principal, TokenRefusal> {
        let Some(state) = self.state.load_full() else {
            return Err(TokenRefusal::NoKeys);
        };
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenRefusal::TooLong);
        }
        let token = std::str::from_utf8(token).map_err(|_| TokenRefusal::Malformed)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut id = [0u8; 32];
        id.copy_from_slice(digest.as_ref());
        let leeway = u64::from(state.config.leeway_s);
        if let Some(hit) = self.cache.lock().as_mut().and_then(|c| c.get(&id).cloned()) {
            if hit.exp.saturating_add(leeway) <= now_s {
                return Err(TokenRefusal::Expired);
            }
            if hit.nbf > now_s.saturating_add(leeway) {
                return Err(TokenRefusal::NotYet);
            }
            return Ok(hit.principal);
        }
        let checked = state.verify(token, now_s)?;
        let principal = checked.principal.clone();
        self.cache
            .lock()
            .get_or_insert_with(|| {
                LruCache::new(NonZeroUsize::new(CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN))
            })
            .put(id, checked);
        Ok(principal)
    }

    /// After a token named a key not in the set: asks for a fetch (at most
    /// every [`UNKNOWN_KEY_REFETCH`]) and waits a little for it. True when
    /// a new key set arrived, so the token is worth checking again.
    pub(crate) async fn fetch_for_unknown_key(&self) -> bool {
        if self.url.borrow().is_none() {
            return false;
        }
        {
            let mut last = self.last_refetch.lock();
            if last.is_some_and(|at| at.elapsed() < UNKNOWN_KEY_REFETCH) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let mut installed = self.installed.subscribe();
        installed.mark_unchanged();
        self.refetch.notify_one();
        tokio::time::timeout(UNKNOWN_KEY_WAIT, installed.changed())
            .await
            .is_ok_and(|changed| changed.is_ok())
    }

    fn forget_tokens(&self) {
        if let Some(cache) = self.cache.lock().as_mut() {
            cache.clear();
        }
    }
}

impl State {
    fn verify(&self, token: &str, now_s: u64) -> Result<Checked, TokenRefusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| unparsable_header(token))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(TokenRefusal::Algorithm(format!("{:?}", header.alg)));
        }
        if self.keys.is_empty() {
            return Err(TokenRefusal::NoKeys);
        }
        let candidates: Vec<&Key> = self
            .keys
            .iter()
            .filter(|k| header.kid.is_none() || k.kid == header.kid)
            .filter(|k| k.key.family() == header.alg.family())
            .collect();
        if candidates.is_empty() {
            return Err(TokenRefusal::UnknownKey);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = u64::from(self.config.leeway_s);
        validation.validate_nbf = true;
        // `aud` is checked below: an origin names every URL under it.
        validation.validate_aud = false;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let mut refusal = TokenRefusal::Signature;
        for key in candidates {
            match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
                Ok(data) => return self.accept(&data.claims, now_s),
                Err(err) => {
                    refusal = refusal_of(err.kind());
                    if refusal != TokenRefusal::Signature {
                        break;
                    }
                }
            }
        }
        Err(refusal)
    }

    fn accept(&self, claims: &Value, now_s: u64) -> Result<Checked, TokenRefusal> {
        let audiences: Vec<&str> = match &claims["aud"] {
            Value::String(aud) => vec![aud.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences
            .iter()
            .any(|aud| self.config.audiences.iter().any(|ours| names(ours, aud)))
        {
            return Err(TokenRefusal::Audience);
        }
        let claim = &self.config.principal_claim;
        let name = match claims.get(claim) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(TokenRefusal::NoPrincipal(claim.clone())),
        };
        let roles = roles_of(claims, &self.config.roles_claim);
        Ok(Checked {
            principal: Principal::new(&name, roles),
            exp: claims["exp"].as_u64().unwrap_or(now_s),
            nbf: claims["nbf"].as_u64().unwrap_or(0),
        })
    }
}

/// Whether our audience `ours` names the token's `aud`: the same URL, or
/// `ours` is an origin alone and `aud` lies under it.
fn names(ours: &str, aud: &str) -> bool {
    let ours_trimmed = ours.trim_end_matches('/');
    if ours_trimmed == aud.trim_end_matches('/') {
        return true;
    }
    let origin_only = url::Url::parse(ours).is_ok_and(|u| u.path() == "/" || u.path().is_empty());
    origin_only
        && aud
            .strip_prefix(ours_trimmed)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The roles a token holds under `claim` (dots reach into objects): a
/// list of strings, or one space-separated string (as `scope` is).
fn roles_of(claims: &Value, claim: &str) -> Vec<String> {
    let mut value = claims;
    for part in claim.split('.') {
        value = &value[part];
    }
    match value {
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn refusal_of(kind: &jsonwebtoken::errors::ErrorKind) -> TokenRefusal {
    use jsonwebtoken::errors::ErrorKind as E;
    match kind {
        E::InvalidSignature | E::InvalidEcdsaKey | E::InvalidRsaKey(_) | E::InvalidEddsaKey => {
            TokenRefusal::Signature
        }
        E::ExpiredSignature => TokenRefusal::Expired,
        E::ImmatureSignature => TokenRefusal::NotYet,
        E::InvalidIssuer => TokenRefusal::Issuer,
        E::InvalidAudience => TokenRefusal::Audience,
        E::MissingRequiredClaim(claim) => TokenRefusal::Missing(claim.clone()),
        E::InvalidAlgorithm => TokenRefusal::Signature,
        _ => TokenRefusal::Malformed,
    }
}

/// Why a header did not parse: `alg: none` says so, anything else is
/// malformed.
fn unparsable_header(token: &str) -> TokenRefusal {
    let header = token.split('.').next().unwrap_or_default();
    let alg = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|h| h["alg"].as_str().map(str::to_ascii_lowercase));
    match alg.as_deref() {
        Some("none") => TokenRefusal::AlgNone,
        Some(alg) if alg.starts_with("hs") => TokenRefusal::Algorithm(alg.to_ascii_uppercase()),
        _ => TokenRefusal::Malformed,
    }
}

/// The usable keys of a JWKS document; keys of kinds we cannot verify
/// with (`oct`, unknown curves) are skipped.
fn parse_keys(jwks: &str) -> Result<Vec<Key>, String> {
    let set: JwkSet =
        serde_json::from_str(jwks).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
    Ok(set
        .keys
        .iter()
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(jwk).ok()?;
            if key.family() == jsonwebtoken::AlgorithmFamily::Hmac {
                return None;
            }
            Some(Key {
                kid: jwk.common.key_id.clone(),
                key,
            })
        })
        .collect())
}

/// A bearer token's time, for [`JwtBook::check`].
pub(crate) fn now_s() -> u64 {
    hangar_runtime::unix_ms() / 1000
}

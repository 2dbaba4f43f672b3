//! An identity provider of a test: signing keys minted per run (RSA,
//! P-256 and Ed25519), the JWKS that publishes them, and bearer tokens
//! signed with any of them, valid or deliberately not.

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// One signing key.
struct SigningKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
}

/// The keys of one identity provider, all in its JWKS.
pub struct Issuer {
    /// The `iss` its tokens carry.
    pub issuer: String,
    keys: Vec<SigningKey>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("kids", &kids)
            .finish()
    }
}

impl Issuer {
    /// An issuer named `issuer` with an RS256, an ES256 and an EdDSA key
    /// (kids `rsa`, `ec`, `ed`).
    pub fn new(issuer: &str) -> Self {
        let mut keys = Vec::new();
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            keys.push(mint(alg));
        }
        Self {
            issuer: issuer.to_owned(),
            keys,
        }
    }

    /// Adds a key of `alg` (kid `<family>-<n>`), as a rotation at the
    /// identity provider does; returns its kid.
    pub fn rotate(&mut self, alg: Algorithm) -> String {
        let mut key = mint(alg);
        key.kid = format!("{}-{}", key.kid, self.keys.len());
        key.jwk.common.key_id = Some(key.kid.clone());
        let kid = key.kid.clone();
        self.keys.push(key);
        kid
    }

    /// The JWKS document with every key.
    pub fn jwks(&self) -> String {
        let set = JwkSet {
            keys: self.keys.iter().map(|k| k.jwk.clone()).collect(),
        };
        serde_json::to_string(&set).expect("a JWKS serializes")
    }

    /// A token for `sub`, for `audience`, valid from a minute ago for an
    /// hour, with `extra` claims merged in, signed with the key `kid`.
    pub fn token(&self, kid: &str, sub: &str, audience: &str, extra: Value) -> String {
        let now = now_s();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": audience,
            "iat": now,
            "nbf": now - 60,
            "exp": now + 3600,
        });
        if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            claims.extend(extra);
        }
        self.sign(kid, &claims)
    }

    /// `claims` signed with the key `kid`, exactly as given.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .unwrap_or_else(|| panic!("no key '{kid}'"));
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.key).expect("a token signs")
    }
}

/// `claims` as an unsigned token (`alg: none`), which must be refused.
pub fn unsigned(claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

/// Now, in Unix seconds.
pub fn now_s() -> i64 {
    i64::try_from(hangar_runtime::unix_ms() / 1000).unwrap_or(i64::MAX)
}

fn mint(alg: Algorithm) -> SigningKey {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
    let rng = SystemRandom::new();
    let mut ed_public = None;
    let (kid, key) = match alg {
        Algorithm::ES256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("a P-256 key");
            ("ec", EncodingKey::from_ec_der(pkcs8.as_ref()))
        }
        Algorithm::EdDSA => {
            use aws_lc_rs::signature::KeyPair;
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("an Ed25519 key");
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("an Ed25519 key");
            ed_public = Some(pair.public_key().as_ref().to_vec());
            ("ed", EncodingKey::from_ed_der(pkcs8.as_ref()))
        }
        _ => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .expect("an RSA key");
            let der = pair.as_der().expect("an RSA key as PKCS#8");
            let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
            let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
            (
                "rsa",
                EncodingKey::from_rsa_pem(pem.as_bytes()).expect("an RSA PEM"),
            )
        }
    };
    let mut jwk = match ed_public {
        // The crate derives a JWK from PKCS#8 v1 only; aws-lc-rs writes v2.
        Some(x) => serde_json::from_value(json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x),
        }))
        .expect("an Ed25519 JWK"),
        None => Jwk::from_encoding_key(&key, alg).expect("a public JWK"),
    };
    jwk.common.key_id = Some(kid.to_owned());
    SigningKey {
        kid: kid.to_owned(),
        alg,
        key,
        jwk,
    }
}

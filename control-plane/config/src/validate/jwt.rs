//! `auth.jwt` and `auth.oauth`: bearer tokens an identity provider signed,
//! and the protected resource metadata (RFC 9728) that points OAuth
//! clients at that provider.
//!
//! ```yaml
//! auth:
//!   enabled: true
//!   jwt:
//!     issuer: https://idp.example.com/
//!     audience: https://mcp.example.com     # or a list
//!     jwks_url: https://idp.example.com/.well-known/jwks.json   # or jwks: {keys: [...]}
//!     principal_claim: sub                  # default
//!     roles_claim: roles                    # default; dots reach into objects
//!     algorithms: [RS256, ES256, EdDSA]     # default
//!     leeway_s: 30                          # default
//!   oauth:
//!     authorization_servers: [https://idp.example.com/]   # default: the issuer
//!     scopes_supported: [mcp]
//! ```

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;
use url::Url;

use super::read::{Ctx, Keys};
use crate::locate::Path;
use crate::model::{JwksSource, JwtAuth, OAuthMetadata};
use crate::parse::Node;

const JWT_KEYS: Keys = Keys {
    known: &[
        "issuer",
        "audience",
        "jwks_url",
        "jwks",
        "principal_claim",
        "roles_claim",
        "algorithms",
        "leeway_s",
    ],
    unsupported: &["jwks_file"],
    hint: " (give the key set itself as jwks: {keys: [...]}, or jwks_url)",
};

const OAUTH_KEYS: Keys = Keys {
    known: &["authorization_servers", "scopes_supported"],
    unsupported: &[],
    hint: "",
};

/// Most clock skew `leeway_s` may allow.
const MAX_LEEWAY_S: u32 = 300;

/// The `auth.jwt` block.
pub(super) fn jwt(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<JwtAuth> {
    let fields = cx.mapping(path, node, &JWT_KEYS)?;
    let issuer = cx
        .required(&fields, "issuer")
        .and_then(|n| non_empty(cx, &path.key("issuer"), n));
    let audiences = cx
        .required(&fields, "audience")
        .and_then(|n| one_or_many(cx, &path.key("audience"), n));
    let url = cx.optional(&fields, "jwks_url", jwks_url);
    let inline = cx.optional(&fields, "jwks", jwks);
    let principal_claim = cx.optional(&fields, "principal_claim", non_empty);
    let roles_claim = cx.optional(&fields, "roles_claim", non_empty);
    let algorithms = cx.optional(&fields, "algorithms", algorithms);
    let leeway_s = cx.optional(&fields, "leeway_s", |cx, p, n| {
        let leeway = cx.uint(p, n, 0)?;
        if leeway > MAX_LEEWAY_S {
            cx.at_value(p, format!("at most {MAX_LEEWAY_S} seconds of clock skew"));
            return None;
        }
        Some(leeway)
    });
    let jwks = match (url?, inline?) {
        (Some(url), None) => Some(JwksSource::Url(url)),
        (None, Some(json)) => Some(JwksSource::Inline(json)),
        (Some(_), Some(_)) => {
            cx.at_key(path, "give jwks_url or jwks, not both");
            None
        }
        (None, None) => {
            cx.at_key(
                path,
                "missing the signing keys: give jwks_url (fetched by every data plane) or jwks: {keys: [...]}",
            );
            None
        }
    };
    Some(JwtAuth {
        issuer: issuer?,
        audiences: audiences?,
        jwks: jwks?,
        principal_claim: principal_claim?.unwrap_or_else(|| "sub".to_owned()),
        roles_claim: roles_claim?.unwrap_or_else(|| "roles".to_owned()),
        algorithms: algorithms?.unwrap_or_else(|| {
            JwtAuth::DEFAULT_ALGORITHMS
                .iter()
                .map(|a| (*a).to_owned())
                .collect()
        }),
        leeway_s: leeway_s?.unwrap_or(JwtAuth::DEFAULT_LEEWAY_S),
    })
}

/// The `auth.oauth` block.
pub(super) fn oauth(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<PartialOAuth> {
    let fields = cx.mapping(path, node, &OAUTH_KEYS)?;
    let servers = cx.optional(&fields, "authorization_servers", |cx, p, n| {
        let list = cx.string_list(p, n)?;
        let mut ok = !list.is_empty();
        if !ok {
            cx.at_value(p, "name at least one authorization server");
        }
        for (i, server) in list.iter().enumerate() {
            if let Err(why) = http_url(server) {
                cx.at_value(&p.index(i), why);
                ok = false;
            }
        }
        ok.then_some(list)
    });
    let scopes = cx.optional(&fields, "scopes_supported", Ctx::string_list);
    Some(PartialOAuth {
        authorization_servers: servers?,
        scopes_supported: scopes?.unwrap_or_default(),
    })
}

/// `auth.oauth` before the JWT issuer fills in its default.
#[derive(Debug, Default)]
pub(super) struct PartialOAuth {
    authorization_servers: Option<Vec<String>>,
    scopes_supported: Vec<String>,
}

impl PartialOAuth {
    /// The metadata, with `issuer` as the authorization server unless
    /// others were named.
    pub(super) fn complete(self, issuer: &str) -> OAuthMetadata {
        OAuthMetadata {
            authorization_servers: self
                .authorization_servers
                .unwrap_or_else(|| vec![issuer.to_owned()]),
            scopes_supported: self.scopes_supported,
        }
    }
}

fn non_empty(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<String> {
    let text = cx.string(path, node)?;
    if text.trim().is_empty() {
        cx.at_value(path, "must not be empty");
        return None;
    }
    Some(text)
}

fn one_or_many(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<Vec<String>> {
    let list = match node {
        Node::Seq(_) => cx.string_list(path, node)?,
        _ => vec![non_empty(cx, path, node)?],
    };
    if list.is_empty() {
        cx.at_value(
            path,
            "name the resource tokens must be for, e.g. https://mcp.example.com",
        );
        return None;
    }
    Some(list)
}

fn jwks_url(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<Url> {
    let text = cx.string(path, node)?;
    match http_url(&text) {
        Ok(url) => Some(url),
        Err(why) => {
            cx.at_value(path, why);
            None
        }
    }
}

fn http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("invalid URL '{text}': {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{text}' is not an http(s) URL"));
    }
    Ok(url)
}

/// An inline key set: every key must be one a token can be verified with.
fn jwks(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<String> {
    let json = to_json(node);
    let set: JwkSet = match serde_json::from_value(json.clone()) {
        Ok(set) => set,
        Err(err) => {
            cx.at_value(path, format!("not a JSON Web Key Set: {err}"));
            return None;
        }
    };
    if set.keys.is_empty() {
        cx.at_value(path, "the key set holds no key");
        return None;
    }
    let mut ok = true;
    for (i, key) in set.keys.iter().enumerate() {
        if let Err(err) = DecodingKey::from_jwk(key) {
            cx.at_value(
                &path.key("keys").index(i),
                format!("not a key tokens can be verified with: {err}"),
            );
            ok = false;
        }
    }
    ok.then(|| json.to_string())
}

fn algorithms(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<Vec<String>> {
    let list = cx.string_list(path, node)?;
    let mut ok = !list.is_empty();
    if !ok {
        cx.at_value(path, "name at least one algorithm");
    }
    for (i, alg) in list.iter().enumerate() {
        if JwtAuth::ALGORITHMS.contains(&alg.as_str()) {
            continue;
        }
        let why = if alg.starts_with("HS") {
            format!(
                "'{alg}' is not accepted: a shared secret would have to sit on every data plane; use an asymmetric algorithm"
            )
        } else {
            format!(
                "unknown algorithm '{alg}' (one of {})",
                JwtAuth::ALGORITHMS.join(", ")
            )
        };
        cx.at_value(&path.index(i), why);
        ok = false;
    }
    ok.then_some(list)
}

/// A YAML node as the JSON value it spells.
fn to_json(node: &Node) -> Value {
    match node {
        Node::Null | Node::Tagged(..) => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Int(i) => i64::try_from(*i).map_or(Value::Null, Value::from),
        Node::Float(f) => Value::from(*f),
        Node::Str(s) => Value::String(s.clone()),
        Node::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Node::Map(pairs) => Value::Object(
            pairs
                .iter()
                .filter_map(|(k, v)| match k {
                    Node::Str(k) => Some((k.clone(), to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
    }
}

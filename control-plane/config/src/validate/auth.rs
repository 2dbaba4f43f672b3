//! MCP Hangar's top-level `auth:` block: `enabled`, `allow_anonymous`,
//! `api_key: {enabled, header_name}`, and Hangar's `jwt` and `oauth`
//! (`validate/jwt.rs`). The API keys themselves are not in the file: the
//! control plane issues them (`hangarctl create apikey`).

use super::jwt;
use super::read::{Ctx, Keys};
use crate::locate::Path;
use crate::model::ClientAuth;
use crate::parse::Node;

const AUTH_KEYS: Keys = Keys {
    known: &["enabled", "allow_anonymous", "api_key", "jwt", "oauth"],
    unsupported: &["storage"],
    hint: " (API keys live in the control plane's store: hangarctl create apikey)",
};

const API_KEY_KEYS: Keys = Keys {
    known: &["enabled", "header_name"],
    unsupported: &[],
    hint: "",
};

/// The `auth:` block.
pub(super) fn auth(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<ClientAuth> {
    let fields = cx.mapping(path, node, &AUTH_KEYS)?;
    let enabled = cx.optional(&fields, "enabled", Ctx::boolean);
    let anonymous = cx.optional(&fields, "allow_anonymous", Ctx::boolean);
    let api_key = cx.optional(&fields, "api_key", |cx, p, n| {
        let fields = cx.mapping(p, n, &API_KEY_KEYS)?;
        let enabled = cx.optional(&fields, "enabled", Ctx::boolean);
        let header = cx.optional(&fields, "header_name", |cx, p, n| {
            let name = cx.string(p, n)?;
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                cx.at_value(p, format!("'{name}' is not an HTTP header name"));
                return None;
            }
            Some(name)
        });
        let (enabled, header) = (enabled?, header?);
        Some(
            enabled
                .unwrap_or(true)
                .then(|| header.unwrap_or_else(|| ClientAuth::DEFAULT_HEADER.to_owned())),
        )
    });
    let jwt = cx.optional(&fields, "jwt", jwt::jwt);
    let oauth = cx.optional(&fields, "oauth", jwt::oauth);
    let (jwt, oauth) = (jwt?, oauth?);
    let oauth = match (&jwt, oauth) {
        (Some(jwt), Some(oauth)) => Some(oauth.complete(&jwt.issuer)),
        (Some(jwt), None) => Some(jwt::PartialOAuth::default().complete(&jwt.issuer)),
        (None, Some(_)) => {
            cx.at_key(
                &path.key("oauth"),
                "needs auth.jwt: the metadata points OAuth clients at the issuer of the tokens the data planes take",
            );
            return None;
        }
        (None, None) => None,
    };
    Some(ClientAuth {
        enabled: enabled?.unwrap_or(false),
        allow_anonymous: anonymous?.unwrap_or(false),
        api_key_header: api_key?.unwrap_or_else(|| Some(ClientAuth::DEFAULT_HEADER.to_owned())),
        jwt,
        oauth,
    })
}

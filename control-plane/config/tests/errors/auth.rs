//! The top-level `auth:` (API keys, JWT, OAuth metadata) and `access:`.

use super::{errors, with_a};

#[test]
fn every_mistake_of_a_jwt_block_is_named_at_once() {
    let got = with_a(&[
        "auth:",
        "  enabled: true",
        "  api_key: {header_name: \"bad header\"}",
        "  jwt:",
        "    audience: []",
        "    jwks_url: ftp://idp/keys",
        "    jwks: {keys: []}",
        "    algorithms: [HS256, XY1]",
        "    leeway_s: 900",
        "    jwks_file: keys.json",
    ]);
    assert_eq!(
        got,
        "config.yaml:7:26: auth.api_key.header_name: 'bad header' is not an HTTP header name\n\
         config.yaml:8:3: auth.jwt: missing required key 'issuer'\n\
         config.yaml:9:15: auth.jwt.audience: name the resource tokens must be for, e.g. https://mcp.example.com\n\
         config.yaml:10:15: auth.jwt.jwks_url: 'ftp://idp/keys' is not an http(s) URL\n\
         config.yaml:11:12: auth.jwt.jwks: the key set holds no key\n\
         config.yaml:12:18: auth.jwt.algorithms[0]: 'HS256' is not accepted: a shared secret would have to sit on every data plane; use an asymmetric algorithm\n\
         config.yaml:12:25: auth.jwt.algorithms[1]: unknown algorithm 'XY1' (one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, EdDSA)\n\
         config.yaml:13:15: auth.jwt.leeway_s: at most 300 seconds of clock skew\n\
         config.yaml:14:5: auth.jwt.jwks_file: key 'jwks_file' is not supported yet (give the key set itself as jwks: {keys: [...]}, or jwks_url)"
    );
}

#[test]
fn a_jwt_block_needs_keys_from_one_place_and_keys_that_verify() {
    let got = with_a(&[
        "auth:",
        "  enabled: true",
        "  jwt:",
        "    issuer: https://idp",
        "    audience: https://mcp.example.com",
        "  oauth: {authorization_servers: [not a url]}",
    ]);
    assert_eq!(
        got,
        "config.yaml:7:3: auth.jwt: missing the signing keys: give jwks_url (fetched by every data plane) or jwks: {keys: [...]}\n\
         config.yaml:10:35: auth.oauth.authorization_servers[0]: invalid URL 'not a url': relative URL without a base"
    );
    let got = with_a(&[
        "auth:",
        "  enabled: true",
        "  jwt:",
        "    issuer: https://idp",
        "    audience: https://mcp.example.com",
        "    jwks: {keys: [{kty: RSA, n: \"!!\", e: AQAB}]}",
    ]);
    assert!(
        got.starts_with(
            "config.yaml:10:20: auth.jwt.jwks.keys[0]: not a key tokens can be verified with:"
        ),
        "{got}"
    );
}

#[test]
fn oauth_metadata_needs_a_jwt_issuer() {
    let got = with_a(&[
        "auth:",
        "  enabled: true",
        "  oauth: {scopes_supported: [mcp]}",
    ]);
    assert_eq!(
        got,
        "config.yaml:7:3: auth.oauth: needs auth.jwt: the metadata points OAuth clients at the issuer of the tokens the data planes take"
    );
}

#[test]
fn access_rules_name_callers_and_known_targets_and_need_auth() {
    let got = with_a(&[
        "access:",
        "  - allow: [\"a/*\"]",
        "  - principals: [\"service:[\"]",
        "    allow: [a, \"nope/*\", \"a/x/y\", \"*/read_*\"]",
        "  - roles: [admin]",
        "    allow: []",
    ]);
    assert_eq!(
        got,
        "config.yaml:5:1: access: needs auth.enabled: without client authentication every caller is anonymous\n\
         config.yaml:6:5: access[0]: speaks of no caller: give principals (patterns of names) or roles\n\
         config.yaml:7:18: access[1].principals[0]: 'service:[' is not a pattern: unclosed character class; missing ']'\n\
         config.yaml:8:13: access[1].allow[0]: 'a' names no tool: write <server or group>/<tool>, e.g. 'a/*'\n\
         config.yaml:8:16: access[1].allow[1]: 'nope/*' names no server or group 'nope' (known: a)\n\
         config.yaml:8:26: access[1].allow[2]: 'a/x/y' is not <server or group>/<tool>: one '/', a name on each side\n\
         config.yaml:10:12: access[2].allow: allows nothing: give <server or group>/<tool> patterns"
    );
}

#[test]
fn a_refused_auth_block_is_not_also_reported_as_missing() {
    // `access` needs auth.enabled; an auth block with a mistake says only
    // its own mistake.
    let got = errors(&[
        "mcp_servers:",
        "  a: {mode: remote, endpoint: http://h}",
        "auth: {enabled: yes-please}",
    ]);
    assert_eq!(
        got,
        "config.yaml:3:17: auth.enabled: expected true or false, got string 'yes-please'"
    );
}

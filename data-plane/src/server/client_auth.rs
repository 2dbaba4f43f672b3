//! Client authentication on the MCP endpoints (MCP Hangar's `auth:`): with
//! `auth.enabled`, a request must carry an API key the control plane
//! issued (in the configured header, `X-API-Key` by default, or as
//! `Authorization: Bearer`) or, with `auth.jwt`, a bearer token the
//! identity provider signed; without either it is served as anonymous only
//! with `allow_anonymous`. A refusal is a 401 with a JSON-RPC error that
//! says why in words safe to show. Credentials are checked here and never
//! passed to a member; the principal they speak for goes with the request
//! ([`Principal`]), for access rules, per-caller rate limits and logs.

use axum::http::HeaderMap;
use hangar_proto::v1;

use crate::route::access::Principal;
use crate::route::api_keys::{ApiKeyBook, KeyRefusal};
use crate::route::jwt::{self, JwtBook, TokenRefusal};

/// What authentication made of a request.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Served, as the principal of its credential, or anonymous.
    Admit(Option<Principal>),
    /// Refused, with the reason for the client.
    Refuse(Refusal),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// One line, safe to show: `Unauthorized: ...`.
    pub(crate) reason: String,
    /// A bearer token was presented and failed (RFC 6750's
    /// `invalid_token`), rather than no usable credential at all.
    pub(crate) invalid_token: bool,
}

impl Refusal {
    fn missing(reason: String) -> Self {
        Self {
            reason,
            invalid_token: false,
        }
    }

    fn token(why: &TokenRefusal) -> Self {
        Self {
            reason: format!("Unauthorized: {why}"),
            invalid_token: true,
        }
    }
}

/// The credential a request presents.
enum Presented<'a> {
    None,
    ApiKey(&'a [u8]),
    Bearer(&'a [u8]),
    OtherScheme,
}

fn presented<'a>(auth: &v1::ClientAuth, headers: &'a HeaderMap) -> Presented<'a> {
    let key_header = (!auth.api_key_header.is_empty()).then_some(auth.api_key_header.as_str());
    if let Some(key) = key_header.and_then(|name| headers.get(name)) {
        return Presented::ApiKey(key.as_bytes().trim_ascii());
    }
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Presented::None;
    };
    let value = value.as_bytes().trim_ascii();
    // The scheme is case-insensitive (RFC 9110 §11.1).
    match value.split_at_checked(7) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => {
            Presented::Bearer(rest.trim_ascii())
        }
        _ => Presented::OtherScheme,
    }
}

/// Whether a bearer credential is a JWT rather than an API key.
fn looks_like_jwt(credential: &[u8]) -> bool {
    !credential.starts_with(b"hgk_") && credential.iter().filter(|&&b| b == b'.').count() == 2
}

/// Checks `headers` under `auth` against `keys` and `tokens`.
pub(crate) async fn authenticate(
    auth: &v1::ClientAuth,
    keys: &ApiKeyBook,
    tokens: &JwtBook,
    headers: &HeaderMap,
) -> Verdict {
    let api_keys = !auth.api_key_header.is_empty();
    let jwts = auth.jwt.is_some();
    let verdict = match presented(auth, headers) {
        Presented::None if auth.allow_anonymous => return Verdict::Admit(None),
        Presented::None => Err(Refusal::missing(format!(
            "Unauthorized: this data plane takes MCP requests only with {}",
            ways(auth)
        ))),
        Presented::OtherScheme => Err(Refusal::missing(format!(
            "Unauthorized: the Authorization header takes only the Bearer scheme here; present {}",
            ways(auth)
        ))),
        Presented::ApiKey(key) => api_key(keys, key),
        Presented::Bearer(token) if jwts && (looks_like_jwt(token) || !api_keys) => {
            bearer_token(tokens, token).await
        }
        Presented::Bearer(key) if api_keys => api_key(keys, key),
        Presented::Bearer(_) => Err(Refusal::missing(
            "Unauthorized: API keys are not enabled (auth.api_key.enabled is false)".to_owned(),
        )),
    };
    match verdict {
        Ok(principal) => {
            tracing::debug!(principal = %principal, "client authenticated");
            Verdict::Admit(Some(principal))
        }
        Err(refusal) => Verdict::Refuse(refusal),
    }
}

fn api_key(keys: &ApiKeyBook, key: &[u8]) -> Result<Principal, Refusal> {
    match keys.check(key, hangar_runtime::unix_ms()) {
        Ok(name) => Ok(Principal::new(&name, Vec::new())),
        Err(KeyRefusal::Unknown) => Err(Refusal::missing(
            "Unauthorized: unknown or revoked API key".to_owned(),
        )),
        Err(KeyRefusal::Expired) => Err(Refusal::missing(
            "Unauthorized: the API key expired".to_owned(),
        )),
    }
}

async fn bearer_token(tokens: &JwtBook, token: &[u8]) -> Result<Principal, Refusal> {
    match tokens.check(token, jwt::now_s()) {
        Err(TokenRefusal::UnknownKey) if tokens.fetch_for_unknown_key().await => tokens
            .check(token, jwt::now_s())
            .map_err(|why| Refusal::token(&why)),
        checked => checked.map_err(|why| Refusal::token(&why)),
    }
}

/// The credentials `auth` takes, in words.
fn ways(auth: &v1::ClientAuth) -> String {
    let key = (!auth.api_key_header.is_empty()).then(|| {
        format!(
            "an API key in the {} header (or Authorization: Bearer)",
            auth.api_key_header
        )
    });
    let token = auth
        .jwt
        .as_ref()
        .map(|jwt| format!("a bearer token from {} (Authorization: Bearer)", jwt.issuer));
    match (key, token) {
        (Some(key), Some(token)) => format!("{key} or {token}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => {
            "a credential, and no way to present one is enabled (auth.api_key, auth.jwt)".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use hangar_tests::jwt::Issuer;

    use super::*;

    const AUD: &str = "https://mcp.example.com";

    fn auth(anonymous: bool, idp: Option<&Issuer>) -> v1::ClientAuth {
        v1::ClientAuth {
            enabled: true,
            allow_anonymous: anonymous,
            api_key_header: "X-API-Key".into(),
            jwt: idp.map(|idp| v1::JwtAuth {
                issuer: idp.issuer.clone(),
                audiences: vec![AUD.into()],
                jwks_json: idp.jwks(),
                principal_claim: "sub".into(),
                roles_claim: "roles".into(),
                algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
                leeway_s: 30,
                ..Default::default()
            }),
            oauth: None,
        }
    }

    fn run(auth: &v1::ClientAuth, keys: &ApiKeyBook, headers: &HeaderMap) -> Verdict {
        let tokens = JwtBook::default();
        tokens.configure(auth.jwt.as_ref());
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(authenticate(auth, keys, &tokens, headers))
    }

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn reason(verdict: Verdict) -> String {
        match verdict {
            Verdict::Refuse(refusal) => refusal.reason,
            Verdict::Admit(who) => panic!("admitted {who:?}"),
        }
    }

    fn idp() -> &'static Issuer {
        static ISSUER: std::sync::OnceLock<Issuer> = std::sync::OnceLock::new();
        ISSUER.get_or_init(|| Issuer::new("https://idp.example.com"))
    }

    proptest::proptest! {
        /// Whatever bytes come as a credential, in either header, the
        /// answer is a refusal with a reason (no panic).
        #[test]
        fn arbitrary_credentials_are_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let keys = ApiKeyBook::default();
            let auth = auth(false, Some(idp()));
            let bearer = [&b"Bearer "[..], &bytes].concat();
            for (name, value) in [("x-api-key", &bytes), ("authorization", &bytes), ("authorization", &bearer)] {
                let mut headers = HeaderMap::new();
                let Ok(value) = HeaderValue::from_bytes(value) else { continue };
                headers.insert(name, value);
                let verdict = run(&auth, &keys, &headers);
                let refused = matches!(&verdict, Verdict::Refuse(r) if r.reason.starts_with("Unauthorized: "));
                proptest::prop_assert!(refused, "{:?}", verdict);
            }
        }
    }

    #[test]
    fn without_a_credential_only_anonymous_access_passes() {
        let keys = ApiKeyBook::default();
        let none = HeaderMap::new();
        assert!(matches!(
            run(&auth(true, None), &keys, &none),
            Verdict::Admit(None)
        ));
        assert_eq!(
            reason(run(&auth(false, Some(idp())), &keys, &none)),
            "Unauthorized: this data plane takes MCP requests only with an API key in the X-API-Key header (or Authorization: Bearer) or a bearer token from https://idp.example.com (Authorization: Bearer)"
        );
    }

    #[test]
    fn a_bearer_jwt_names_its_principal_and_a_bad_one_says_why() {
        let keys = ApiKeyBook::default();
        let auth = auth(false, Some(idp()));
        let token = idp().token(
            "ec",
            "user:ann",
            AUD,
            serde_json::json!({"roles": ["admin"]}),
        );
        match run(
            &auth,
            &keys,
            &with("authorization", &format!("bearer {token}")),
        ) {
            Verdict::Admit(Some(principal)) => {
                assert_eq!(&*principal.name, "user:ann");
                assert_eq!(&*principal.roles[0], "admin");
            }
            other => panic!("{other:?}"),
        }
        let other = idp().token("ec", "user:ann", "https://elsewhere", serde_json::json!({}));
        let Verdict::Refuse(refusal) = run(
            &auth,
            &keys,
            &with("authorization", &format!("Bearer {other}")),
        ) else {
            panic!("admitted a token for another resource")
        };
        assert_eq!(
            refusal.reason,
            "Unauthorized: the token is not for this resource (aud)"
        );
        assert!(refusal.invalid_token);
        // An API key in Authorization still goes to the key check.
        assert_eq!(
            reason(run(
                &auth,
                &keys,
                &with("authorization", "Bearer hgk_unknown")
            )),
            "Unauthorized: unknown or revoked API key"
        );
        assert_eq!(
            reason(run(&auth, &keys, &with("authorization", "Basic dTpw"))),
            "Unauthorized: the Authorization header takes only the Bearer scheme here; present an API key in the X-API-Key header (or Authorization: Bearer) or a bearer token from https://idp.example.com (Authorization: Bearer)"
        );
    }
}

//! Client authentication on the MCP endpoints (MCP Hangar's `auth:`): with
//! `auth.enabled`, a request must carry an API key the control plane
//! issued, in the configured header (`X-API-Key` by default) or as
//! `Authorization: Bearer`; without one it is served as anonymous only
//! with `allow_anonymous`. A refusal is a 401 with a JSON-RPC error that
//! says why in words safe to show. The key is checked here and never
//! passed to a member; the principal it speaks for goes with the request
//! (`Principal`), for per-caller rate limits and logs.

use std::sync::Arc;

use axum::http::HeaderMap;
use hangar_proto::v1;

use crate::route::api_keys::{ApiKeyBook, KeyRefusal};

/// The principal an authenticated request speaks for, in its extensions.
#[derive(Debug, Clone)]
pub(crate) struct Principal(pub(crate) Arc<str>);

/// What authentication made of a request.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Served, as the principal of its key, or anonymous.
    Admit(Option<Principal>),
    /// Refused, with the reason for the client.
    Refuse(String),
}

/// Checks `headers` under `auth` against `keys` at `now_unix_ms`.
pub(crate) fn authenticate(
    auth: &v1::ClientAuth,
    keys: &ApiKeyBook,
    headers: &HeaderMap,
    now_unix_ms: u64,
) -> Verdict {
    let header = (!auth.api_key_header.is_empty()).then_some(auth.api_key_header.as_str());
    let presented = header
        .and_then(|name| headers.get(name))
        .map(|v| v.as_bytes())
        .or_else(|| {
            headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        });
    let Some(key) = presented else {
        if auth.allow_anonymous {
            return Verdict::Admit(None);
        }
        let how = match header {
            Some(name) => format!("an API key in the {name} header (or Authorization: Bearer)"),
            None => "a credential, and no way to present one is enabled (auth.api_key)".to_owned(),
        };
        return Verdict::Refuse(format!(
            "Unauthorized: this data plane takes MCP requests only with {how}"
        ));
    };
    if header.is_none() {
        return Verdict::Refuse(
            "Unauthorized: API keys are not enabled (auth.api_key.enabled is false)".to_owned(),
        );
    }
    match keys.check(key.trim_ascii(), now_unix_ms) {
        Ok(principal) => {
            tracing::debug!(principal = %principal, "client authenticated");
            Verdict::Admit(Some(Principal(principal)))
        }
        Err(KeyRefusal::Unknown) => {
            Verdict::Refuse("Unauthorized: unknown or revoked API key".to_owned())
        }
        Err(KeyRefusal::Expired) => Verdict::Refuse("Unauthorized: the API key expired".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn auth(anonymous: bool) -> v1::ClientAuth {
        v1::ClientAuth {
            enabled: true,
            allow_anonymous: anonymous,
            api_key_header: "X-API-Key".into(),
        }
    }

    proptest::proptest! {
        /// Whatever bytes come as a credential, in either header, the
        /// answer is a refusal with a reason (no panic), unless it is a key.
        #[test]
        fn arbitrary_credentials_are_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let keys = ApiKeyBook::default();
            for name in ["x-api-key", "authorization"] {
                let mut headers = HeaderMap::new();
                let Ok(value) = HeaderValue::from_bytes(&bytes) else { continue };
                headers.insert(name, value);
                let verdict = authenticate(&auth(false), &keys, &headers, 0);
                let refused = matches!(&verdict, Verdict::Refuse(reason) if reason.starts_with("Unauthorized: "));
                proptest::prop_assert!(refused, "{:?}", verdict);
            }
        }
    }

    #[test]
    fn without_a_credential_only_anonymous_access_passes() {
        let keys = ApiKeyBook::default();
        let none = HeaderMap::new();
        assert!(matches!(
            authenticate(&auth(true), &keys, &none, 0),
            Verdict::Admit(None)
        ));
        assert!(matches!(
            authenticate(&auth(false), &keys, &none, 0),
            Verdict::Refuse(_)
        ));
    }
}

use hangar_tests::jwt::{Issuer, now_s as test_now, unsigned};
use serde_json::json;

use super::*;

const AUD: &str = "https://mcp.example.com/mcp";

fn config(issuer: &Issuer) -> v1::JwtAuth {
    v1::JwtAuth {
        issuer: issuer.issuer.clone(),
        audiences: vec![AUD.into(), "https://fleet.example.com".into()],
        jwks_json: issuer.jwks(),
        principal_claim: "sub".into(),
        roles_claim: "realm_access.roles".into(),
        algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
        leeway_s: 30,
        ..Default::default()
    }
}

fn book(issuer: &Issuer) -> JwtBook {
    let book = JwtBook::default();
    book.configure(Some(&config(issuer)));
    book
}

fn now() -> u64 {
    u64::try_from(test_now()).unwrap()
}

#[test]
fn tokens_of_every_algorithm_name_their_principal_and_roles() {
    let idp = Issuer::new("https://idp.example.com/");
    let book = book(&idp);
    for kid in ["rsa", "ec", "ed"] {
        let token = idp.token(
            kid,
            "user:ann",
            AUD,
            json!({"realm_access": {"roles": ["admin", "dev"]}}),
        );
        let principal = book.check(token.as_bytes(), now()).unwrap();
        assert_eq!(&*principal.name, "user:ann", "{kid}");
        let roles: Vec<&str> = principal.roles.iter().map(|r| &**r).collect();
        assert_eq!(roles, ["admin", "dev"]);
    }
}

#[test]
fn an_origin_audience_names_every_url_under_it_and_only_those() {
    let idp = Issuer::new("https://idp");
    let book = book(&idp);
    let under = idp.token(
        "ed",
        "a",
        "https://fleet.example.com/groups/math/mcp",
        json!({}),
    );
    assert!(book.check(under.as_bytes(), now()).is_ok());
    let listed = idp.token("ed", "a", AUD, json!({"aud": [AUD, "other"]}));
    assert!(book.check(listed.as_bytes(), now()).is_ok());
    for aud in [
        "https://fleet.example.com.evil.com/mcp",
        "https://mcp.example.com/mcp/other",
        "https://other.example.com",
    ] {
        let token = idp.token("ed", "a", aud, json!({}));
        assert_eq!(
            book.check(token.as_bytes(), now()).unwrap_err(),
            TokenRefusal::Audience,
            "{aud}"
        );
    }
}

#[test]
fn each_bad_token_gets_its_own_reason() {
    let idp = Issuer::new("https://idp");
    let stranger = Issuer::new("https://idp");
    let book = book(&idp);
    let t = now();
    let at = |token: String| book.check(token.as_bytes(), t).unwrap_err();
    let ti = i64::try_from(t).unwrap();
    assert_eq!(
        at(idp.token("rsa", "a", AUD, json!({"exp": ti - 31}))),
        TokenRefusal::Expired
    );
    assert_eq!(
        at(idp.token("rsa", "a", AUD, json!({"nbf": ti + 31}))),
        TokenRefusal::NotYet
    );
    assert_eq!(
        at(idp.token("rsa", "a", AUD, json!({"iss": "https://evil"}))),
        TokenRefusal::Issuer
    );
    assert_eq!(
        at(stranger.token("ec", "a", AUD, json!({}))),
        TokenRefusal::Signature
    );
    let mut rotated = Issuer::new("https://idp");
    let kid = rotated.rotate(Algorithm::EdDSA);
    assert_eq!(
        at(rotated.token(&kid, "a", AUD, json!({}))),
        TokenRefusal::UnknownKey
    );
    assert_eq!(
        at(unsigned(
            &json!({"iss": "https://idp", "sub": "a", "aud": AUD, "exp": ti + 60})
        )),
        TokenRefusal::AlgNone
    );
    assert_eq!(
        at(idp.token("rsa", "", AUD, json!({}))),
        TokenRefusal::NoPrincipal("sub".into())
    );
    assert_eq!(
        at(idp.sign(
            "rsa",
            &json!({"iss": "https://idp", "sub": "a", "aud": AUD})
        )),
        TokenRefusal::Missing("exp".into())
    );
    assert_eq!(at("a.b.c".to_owned()), TokenRefusal::Malformed);
    assert_eq!(at("x".repeat(MAX_TOKEN_LEN + 1)), TokenRefusal::TooLong);
    // Within the leeway, a token that just expired still passes.
    let late = idp.token("rsa", "a", AUD, json!({"exp": ti - 5}));
    assert!(book.check(late.as_bytes(), t).is_ok());
}

#[test]
fn a_remembered_token_still_expires() {
    let idp = Issuer::new("https://idp");
    let book = book(&idp);
    let t = now();
    let token = idp.token("ec", "a", AUD, json!({"exp": t + 100}));
    assert!(book.check(token.as_bytes(), t).is_ok());
    assert!(book.check(token.as_bytes(), t + 129).is_ok());
    assert_eq!(
        book.check(token.as_bytes(), t + 130).unwrap_err(),
        TokenRefusal::Expired
    );
}

#[test]
fn fetched_keys_replace_the_set_and_a_new_config_forgets_checked_tokens() {
    let mut idp = Issuer::new("https://idp");
    let book = JwtBook::default();
    let mut by_url = config(&idp);
    by_url.jwks_json.clear();
    by_url.jwks_url = "http://127.0.0.1:9/jwks".into();
    book.configure(Some(&by_url));
    let token = idp.token("ed", "a", AUD, json!({}));
    assert_eq!(
        book.check(token.as_bytes(), now()).unwrap_err(),
        TokenRefusal::NoKeys
    );
    assert_eq!(book.install_fetched(&by_url.jwks_url, &idp.jwks()), Ok(3));
    assert!(book.check(token.as_bytes(), now()).is_ok());
    // Keys from another URL are not taken.
    let kid = idp.rotate(Algorithm::ES256);
    assert_eq!(
        book.install_fetched("http://elsewhere/jwks", &idp.jwks()),
        Ok(4)
    );
    let rotated = idp.token(&kid, "a", AUD, json!({}));
    assert_eq!(
        book.check(rotated.as_bytes(), now()).unwrap_err(),
        TokenRefusal::UnknownKey
    );
    book.configure(None);
    assert_eq!(
        book.check(token.as_bytes(), now()).unwrap_err(),
        TokenRefusal::NoKeys
    );
}

proptest::proptest! {
    /// Whatever bytes come as a token, the answer is a refusal, never a
    /// panic; the next good token still passes.
    #[test]
    fn arbitrary_bytes_are_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
        let idp = shared_issuer();
        let book = book(idp);
        proptest::prop_assert!(book.check(&bytes, now()).is_err());
        let dotted: Vec<u8> = [&bytes[..], b".", &bytes[..], b".", &bytes[..]].concat();
        proptest::prop_assert!(book.check(&dotted, now()).is_err());
        let good = idp.token("ed", "a", AUD, json!({}));
        proptest::prop_assert!(book.check(good.as_bytes(), now()).is_ok());
    }
}

/// One issuer for every case of the property test (RSA keys take a while
/// to mint).
fn shared_issuer() -> &'static Issuer {
    static ISSUER: std::sync::OnceLock<Issuer> = std::sync::OnceLock::new();
    ISSUER.get_or_init(|| Issuer::new("https://idp"))
}

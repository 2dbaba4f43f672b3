//! Session ids the client sees on `/groups/{group}/mcp`.
//!
//! The id carries the member, the member's own session id and the client's
//! `initialize` params, so any data plane of the fleet (or a restarted one)
//! routes the session to the same member without shared state, and can
//! re-open it on another member by replaying the client's `initialize` when
//! that member is gone (see `recovery`). It is sealed with the fleet's
//! session key (`route/session_keys.rs`): `hgr3.<key id>.<sealed>`, base64url
//! without padding, within the visible ASCII range the spec requires. A
//! client can neither read the member ids nor pick a member: an altered or
//! forged id opens to nothing, and the client gets 404 and starts over.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::route::session_keys::SessionKeys;

/// Versions that have sessions; anything else is the stateless protocol.
pub(crate) const LEGACY_VERSIONS: [&str; 4] =
    ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

const PREFIX: &str = "hgr3.";
/// What sealed ids are bound to: this form of id.
const CONTEXT: &[u8] = b"hgr3";
/// Most bytes of `initialize` params an id carries; a client whose params
/// are larger gets an id without them, whose session cannot be recovered.
const MAX_INIT: usize = 4096;

/// What a client's session id says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionId {
    /// The member the session was opened on.
    pub(crate) member: String,
    /// The member's own session id.
    pub(crate) member_session: Vec<u8>,
    /// The client's `initialize` params (protocol version, capabilities,
    /// client info), to open the session again elsewhere.
    pub(crate) init: Option<Value>,
}

/// Which session id a member's answer hands the client.
pub(crate) enum Naming<'a> {
    /// A new session (an answer to `initialize`): the member's id sealed
    /// with the member and the client's `initialize` params.
    New {
        /// The client's `initialize` params.
        init: Option<Value>,
        /// The keys to seal it with.
        keys: &'a SessionKeys,
        /// The principal the session is bound to, if the client has one.
        principal: Option<&'a str>,
    },
    /// A request in a session: the client's own id, always, so it never
    /// changes under the client (even when the session moved).
    Keep(&'a [u8]),
}

impl Naming<'_> {
    /// The id the client gets for `member`'s session `member_session`.
    pub(crate) fn name(&self, member: &str, member_session: &[u8]) -> String {
        match self {
            Self::New {
                init,
                keys,
                principal,
            } => encode(keys, member, member_session, init.as_ref(), *principal),
            Self::Keep(client) => String::from_utf8_lossy(client).into_owned(),
        }
    }
}

/// Seals a member, its session id and the client's `initialize` params
/// into the id the client sees, bound to `principal`: a request of another
/// principal cannot open it.
pub(crate) fn encode(
    keys: &SessionKeys,
    member: &str,
    member_session: &[u8],
    init: Option<&Value>,
    principal: Option<&str>,
) -> String {
    let init = init
        .map(|params| params.to_string())
        .filter(|text| text.len() <= MAX_INIT)
        .unwrap_or_default();
    let plain = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(member),
        URL_SAFE_NO_PAD.encode(member_session),
        URL_SAFE_NO_PAD.encode(init)
    );
    format!(
        "{PREFIX}{}",
        keys.seal(plain.as_bytes(), &context(principal))
    )
}

/// What a sealed id is bound to: its form and the principal, if any.
fn context(principal: Option<&str>) -> Vec<u8> {
    let mut context = CONTEXT.to_vec();
    if let Some(principal) = principal {
        context.push(0);
        context.extend_from_slice(principal.as_bytes());
    }
    context
}

/// What a client's session id says, if a key in force opens it for
/// `principal`; `None` for ids this fleet did not seal, altered ones, those
/// of another principal and those of earlier forms, which the client then
/// re-opens (404).
pub(crate) fn decode(
    keys: &SessionKeys,
    session: &[u8],
    principal: Option<&str>,
) -> Option<SessionId> {
    let text = std::str::from_utf8(session).ok()?;
    let plain = keys.open(text.strip_prefix(PREFIX)?, &context(principal))?;
    let plain = String::from_utf8(plain).ok()?;
    let mut parts = plain.split('.');
    let (member, member_session, init) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let init = URL_SAFE_NO_PAD.decode(init).ok()?;
    Some(SessionId {
        member: String::from_utf8(URL_SAFE_NO_PAD.decode(member).ok()?).ok()?,
        member_session: URL_SAFE_NO_PAD.decode(member_session).ok()?,
        init: (!init.is_empty())
            .then(|| serde_json::from_slice(&init).ok())
            .flatten(),
    })
}

/// The parts of a client's `initialize` request (its whole body) that a
/// member needs to open the same session again: `protocolVersion`,
/// `capabilities` and `clientInfo`.
pub(crate) fn init_params(body: &[u8]) -> Option<Value> {
    let message: Value = serde_json::from_slice(body).ok()?;
    let params = message.get("params")?;
    Some(json!({
        "protocolVersion": params.get("protocolVersion")?,
        "capabilities": params.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        "clientInfo": params.get("clientInfo").cloned().unwrap_or_else(|| json!({})),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusal() {
        let keys = SessionKeys::default();
        let init = json!({"protocolVersion": "2025-06-18", "capabilities": {"roots": {}},
            "clientInfo": {"name": "ide", "version": "1.0"}});
        let id = encode(&keys, "my-mcp.backup", b"09e9f0c2-\x7e", Some(&init), None);
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{id}");
        assert!(
            !id.contains("bXktbWNw"),
            "the member id is not readable: {id}"
        );
        assert_eq!(
            decode(&keys, id.as_bytes(), None),
            Some(SessionId {
                member: "my-mcp.backup".into(),
                member_session: b"09e9f0c2-\x7e".to_vec(),
                init: Some(init),
            })
        );
        let bare = encode(&keys, "m", b"s", None, None);
        assert_eq!(decode(&keys, bare.as_bytes(), None).unwrap().init, None);
        // Unsealed ids of earlier forms, and anything made up, open to nothing:
        // a client cannot name the member it wants.
        let chosen = format!(
            "hgr2.{}.{}.",
            URL_SAFE_NO_PAD.encode("my-mcp"),
            URL_SAFE_NO_PAD.encode("s")
        );
        for foreign in [
            "",
            "abc",
            "hgr1.bQ.cw",
            chosen.as_str(),
            "hgr3.0.AAAA",
            "hgr3.",
        ] {
            assert_eq!(decode(&keys, foreign.as_bytes(), None), None, "{foreign}");
        }
        // Another fleet's (or process's) keys do not open it.
        assert_eq!(decode(&SessionKeys::default(), id.as_bytes(), None), None);
        // A session is bound to its principal.
        let bound = encode(&keys, "m", b"s", None, Some("service:a"));
        assert!(decode(&keys, bound.as_bytes(), Some("service:a")).is_some());
        assert_eq!(decode(&keys, bound.as_bytes(), Some("service:b")), None);
        assert_eq!(decode(&keys, bound.as_bytes(), None), None);
    }

    proptest::proptest! {
        /// Whatever a client sends as its session id, it opens to nothing
        /// (and never panics): only ids this fleet sealed open.
        #[test]
        fn arbitrary_bytes_never_open(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let keys = SessionKeys::default();
            let mut prefixed = b"hgr3.".to_vec();
            prefixed.extend_from_slice(&bytes);
            proptest::prop_assert_eq!(decode(&keys, &bytes, None), None);
            proptest::prop_assert_eq!(decode(&keys, &prefixed, None), None);
        }
    }

    #[test]
    fn huge_params_are_left_out() {
        let keys = SessionKeys::default();
        let init = json!({"clientInfo": {"name": "x".repeat(MAX_INIT)}});
        let id = encode(&keys, "m", b"s", Some(&init), None);
        assert_eq!(decode(&keys, id.as_bytes(), None).unwrap().init, None);
    }

    #[test]
    fn init_params_keep_what_a_member_needs() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{"sampling":{}},"clientInfo":{"name":"c","version":"2"},"_meta":{"x":1}}}"#;
        assert_eq!(
            init_params(body),
            Some(
                json!({"protocolVersion": "2025-03-26", "capabilities": {"sampling": {}},
                "clientInfo": {"name": "c", "version": "2"}})
            )
        );
        assert_eq!(init_params(b"{}"), None);
    }
}

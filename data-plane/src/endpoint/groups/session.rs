//! Session ids the client sees on `/groups/{group}/mcp`.
//!
//! The id carries the member, the member's own session id and the client's
//! `initialize` params, so any data plane of the fleet (or a restarted one)
//! routes the session to the same member without shared state, and can
//! re-open it on another member by replaying the client's `initialize` when
//! that member is gone (see `recovery`): `hgr2.<member id>.<member session
//! id>.<initialize params>`, each part base64url without padding, which
//! keeps the whole id within the visible ASCII range the spec requires.
//! Ids of the earlier form `hgr1.<member>.<member session>` are still
//! routed; they cannot be recovered.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Versions that have sessions; anything else is the stateless protocol.
pub(crate) const LEGACY_VERSIONS: [&str; 4] =
    ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

const PREFIX_V1: &str = "hgr1.";
const PREFIX: &str = "hgr2.";
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

/// Encodes a member, its session id and the client's `initialize` params
/// into the id the client sees.
pub(crate) fn encode(member: &str, member_session: &[u8], init: Option<&Value>) -> String {
    let init = init
        .map(|params| params.to_string())
        .filter(|text| text.len() <= MAX_INIT)
        .unwrap_or_default();
    format!(
        "{PREFIX}{}.{}.{}",
        URL_SAFE_NO_PAD.encode(member),
        URL_SAFE_NO_PAD.encode(member_session),
        URL_SAFE_NO_PAD.encode(init)
    )
}

/// What `session` says, or `None` for an id this proxy did not mint.
pub(crate) fn decode(session: &[u8]) -> Option<SessionId> {
    let text = std::str::from_utf8(session).ok()?;
    if let Some(v1) = text.strip_prefix(PREFIX_V1) {
        let (member, member_session) = v1.split_once('.')?;
        return Some(SessionId {
            member: String::from_utf8(URL_SAFE_NO_PAD.decode(member).ok()?).ok()?,
            member_session: URL_SAFE_NO_PAD.decode(member_session).ok()?,
            init: None,
        });
    }
    let mut parts = text.strip_prefix(PREFIX)?.split('.');
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

    /// Ids round-trip, stay visible ASCII, and foreign ids are refused.
    #[test]
    fn round_trip_and_refusal() {
        let init = json!({"protocolVersion": "2025-06-18", "capabilities": {"roots": {}},
            "clientInfo": {"name": "ide", "version": "1.0"}});
        let id = encode("my-mcp.backup", b"09e9f0c2-\x7e", Some(&init));
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{id}");
        assert_eq!(
            decode(id.as_bytes()),
            Some(SessionId {
                member: "my-mcp.backup".into(),
                member_session: b"09e9f0c2-\x7e".to_vec(),
                init: Some(init),
            })
        );
        let bare = encode("m", b"s", None);
        assert_eq!(decode(bare.as_bytes()).unwrap().init, None);
        for foreign in [
            "",
            "abc",
            "hgr1.",
            "hgr1.!!.x",
            "hgr2.bQ.cw",
            "hgr2.bQ.cw.e30.x",
            "hgr3.bQ.cw.e30",
        ] {
            assert_eq!(decode(foreign.as_bytes()), None, "{foreign}");
        }
    }

    /// Ids minted before `initialize` params were carried still route.
    #[test]
    fn earlier_ids_route_without_recovery() {
        let v1 = format!(
            "hgr1.{}.{}",
            URL_SAFE_NO_PAD.encode("m"),
            URL_SAFE_NO_PAD.encode("s")
        );
        let id = decode(v1.as_bytes()).unwrap();
        assert_eq!((id.member.as_str(), id.init), ("m", None));
    }

    /// Oversized params are left out rather than making an id no client
    /// could send back.
    #[test]
    fn huge_params_are_left_out() {
        let init = json!({"clientInfo": {"name": "x".repeat(MAX_INIT)}});
        let id = encode("m", b"s", Some(&init));
        assert_eq!(decode(id.as_bytes()).unwrap().init, None);
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

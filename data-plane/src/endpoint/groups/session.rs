//! Session ids the client sees on `/groups/{group}/mcp`.
//!
//! The id carries the member and the member's own session id, so any data
//! plane of the fleet (or a restarted one) routes the session to the same
//! member without shared state: `hgr1.<member id>.<member session id>`,
//! both parts base64url without padding, which keeps the whole id within
//! the visible ASCII range the spec requires.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const PREFIX: &str = "hgr1.";

/// Encodes a member and its session id into the id the client sees.
pub(crate) fn encode(member: &str, member_session: &[u8]) -> String {
    format!(
        "{PREFIX}{}.{}",
        URL_SAFE_NO_PAD.encode(member),
        URL_SAFE_NO_PAD.encode(member_session)
    )
}

/// The member and its session id, or `None` for an id this proxy did not mint.
pub(crate) fn decode(session: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(session).ok()?.strip_prefix(PREFIX)?;
    let (member, member_session) = text.split_once('.')?;
    let member = String::from_utf8(URL_SAFE_NO_PAD.decode(member).ok()?).ok()?;
    let member_session = URL_SAFE_NO_PAD.decode(member_session).ok()?;
    Some((member, member_session))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids round-trip, stay visible ASCII, and foreign ids are refused.
    #[test]
    fn round_trip_and_refusal() {
        let id = encode("my-mcp.backup", b"09e9f0c2-\x7e");
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{id}");
        assert_eq!(
            decode(id.as_bytes()),
            Some(("my-mcp.backup".into(), b"09e9f0c2-\x7e".to_vec()))
        );
        for foreign in ["", "abc", "hgr1.", "hgr1.!!.x", "hgr2.bQ.cw"] {
            assert_eq!(decode(foreign.as_bytes()), None, "{foreign}");
        }
    }
}

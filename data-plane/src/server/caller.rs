//! Who is calling, as per-caller rate limits tell callers apart: the
//! principal of the client's API key, else its MCP session, else the
//! address it connects from, else (stdio) the one client there is.

use std::net::IpAddr;

use hangar_rate::CallerKey;
use http::{Extensions, HeaderMap};

use crate::route::access::Principal;

/// The address a request came from, put in its extensions at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub(crate) IpAddr);

/// The caller of a request with `headers` and `extensions`.
pub(crate) fn of_request(headers: &HeaderMap, extensions: &Extensions) -> CallerKey {
    if let Some(principal) = extensions.get::<Principal>() {
        return CallerKey::of(("principal", principal.name.as_ref()));
    }
    if let Some(session) = headers.get("mcp-session-id") {
        return CallerKey::of(("session", session.as_bytes()));
    }
    match extensions.get::<ClientAddr>() {
        Some(ClientAddr(ip)) => CallerKey::of(("address", ip)),
        None => stdio(),
    }
}

/// The one client of a stdio data plane.
pub(crate) fn stdio() -> CallerKey {
    CallerKey::of("stdio")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_outranks_the_address_and_sessions_differ() {
        let mut ext = Extensions::new();
        ext.insert(ClientAddr([127, 0, 0, 1].into()));
        let mut headers = HeaderMap::new();
        let by_address = of_request(&headers, &ext);
        headers.insert("mcp-session-id", "a".parse().unwrap());
        let session_a = of_request(&headers, &ext);
        headers.insert("mcp-session-id", "b".parse().unwrap());
        let session_b = of_request(&headers, &ext);
        assert_ne!(by_address, session_a);
        assert_ne!(session_a, session_b);
        assert_eq!(by_address, of_request(&HeaderMap::new(), &ext));
        assert_eq!(of_request(&HeaderMap::new(), &Extensions::new()), stdio());
    }
}

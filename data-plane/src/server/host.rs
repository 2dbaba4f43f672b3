//! DNS-rebinding protection, parsed strictly: the host a request names must
//! be one of the data plane's names, and a browser's `Origin` (when sent)
//! must name one too, on the data plane's own port unless the operator
//! allowed that origin. A page on another site that resolves its name to
//! this machine sends its own name in both.
//!
//! The host comes from the request target when it has one (the
//! absolute-form of HTTP/1.1, `:authority` of HTTP/2), else from the one
//! `Host` header (RFC 9112 §3.2: none, two, or an invalid one is 400).
//! Hosts are parsed as RFC 3986 authorities (a bracketed IPv6 literal, or a
//! name of letters, digits, dots and hyphens, then an optional numeric
//! port); origins as the URL standard's `scheme://host[:port]`, nothing
//! more. Anything else is refused, not guessed at.

use std::borrow::Cow;
use std::net::Ipv6Addr;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, Uri, header};

/// The names and origins a data plane answers to.
#[derive(Debug, Clone)]
pub(crate) struct Allowed {
    /// Host names and IPs (lowercase; IPv6 without brackets).
    pub hosts: Arc<[String]>,
    /// The port the data plane listens on: the one port a browser origin
    /// of an allowed host may have without being listed.
    pub listen_port: u16,
    /// Origins allowed besides (`scheme://host:port`, lowercase).
    pub origins: Arc<[String]>,
}

/// Why a request was refused: its status and message.
pub(crate) type Refusal = (StatusCode, &'static str);

/// Checks the request's host and origin against `allowed`.
pub(crate) fn check(uri: &Uri, headers: &HeaderMap, allowed: &Allowed) -> Result<(), Refusal> {
    let bad = |message| Err((StatusCode::BAD_REQUEST, message));
    let forbidden = |message| Err((StatusCode::FORBIDDEN, message));
    let mut hosts = headers.get_all(header::HOST).iter();
    let (first, second) = (hosts.next(), hosts.next());
    if second.is_some() {
        return bad("Bad Request: more than one Host header");
    }
    let named = match (uri.authority(), first) {
        (Some(authority), _) => authority.as_str(),
        (None, Some(host)) => match host.to_str() {
            Ok(host) => host,
            Err(_) => return bad("Bad Request: invalid Host header"),
        },
        (None, None) => return bad("Bad Request: missing Host header"),
    };
    let Some((host, _port)) = parse_authority(named) else {
        return bad("Bad Request: invalid Host header");
    };
    if !is_allowed_host(&host, allowed) {
        return forbidden("Forbidden: Host not allowed");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed_origin = origin
            .to_str()
            .ok()
            .and_then(parse_origin)
            .is_some_and(|origin| is_allowed_origin(&origin, allowed));
        if !allowed_origin {
            return forbidden("Forbidden: Origin not allowed");
        }
    }
    Ok(())
}

/// A parsed origin.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    /// `http` or `https`.
    scheme: String,
    /// Lowercase; IPv6 without brackets.
    host: String,
    port: u16,
}

fn is_allowed_host(host: &str, allowed: &Allowed) -> bool {
    allowed.hosts.iter().any(|name| same_host(name, host))
}

fn is_allowed_origin(origin: &Origin, allowed: &Allowed) -> bool {
    let listed = |text: &String| parse_origin(text).is_some_and(|o| &o == origin);
    (is_allowed_host(&origin.host, allowed) && origin.port == allowed.listen_port)
        || allowed.origins.iter().any(listed)
}

/// Host names compare without case; IPv6 literals by address. Only an
/// IPv6 literal holds a colon, so a name is never parsed as one (this runs
/// for every allowed host on every request).
fn same_host(a: &str, b: &str) -> bool {
    if !(a.contains(':') && b.contains(':')) {
        return a.eq_ignore_ascii_case(b);
    }
    match (a.parse::<Ipv6Addr>(), b.parse::<Ipv6Addr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// `host[:port]` as RFC 3986 has it (IPv6 in brackets); the host in
/// lowercase without brackets, and the port if given. A name already in
/// lowercase, as clients send it, is borrowed: this runs on every request.
fn parse_authority(authority: &str) -> Option<(Cow<'_, str>, Option<u16>)> {
    let (host, rest) = if let Some(literal) = authority.strip_prefix('[') {
        let (inside, rest) = literal.split_once(']')?;
        let address: Ipv6Addr = inside.parse().ok()?;
        (Cow::Owned(address.to_string()), rest)
    } else {
        let end = authority.find(':').unwrap_or(authority.len());
        let (name, rest) = authority.split_at(end);
        let name_chars = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
        if name.is_empty() || !name.chars().all(name_chars) {
            return None;
        }
        let host = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        (host, rest)
    };
    let port = match rest {
        "" => None,
        _ => {
            let digits = rest.strip_prefix(':')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(digits.parse().ok()?)
        }
    };
    Some((host, port))
}

/// An `Origin` value: `http(s)://host[:port]` and nothing else (`null`,
/// paths, credentials and other schemes are not origins of pages that may
/// call a local data plane).
fn parse_origin(text: &str) -> Option<Origin> {
    let (scheme, authority) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = parse_authority(authority)?;
    Some(Origin {
        scheme,
        host: host.into_owned(),
        port: port.unwrap_or(default_port),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Allowed {
        Allowed {
            hosts: ["localhost", "127.0.0.1", "::1"].map(String::from).into(),
            listen_port: 9000,
            origins: ["http://localhost:6274".to_owned()].into(),
        }
    }

    fn verdict(uri: &str, hosts: &[&str], origin: Option<&str>) -> Option<StatusCode> {
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(header::HOST, host.parse().unwrap());
        }
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        check(&uri.parse().unwrap(), &headers, &allowed())
            .err()
            .map(|(status, _)| status)
    }

    const OK: Option<StatusCode> = None;
    const BAD: Option<StatusCode> = Some(StatusCode::BAD_REQUEST);
    const FORBIDDEN: Option<StatusCode> = Some(StatusCode::FORBIDDEN);

    #[test]
    fn hosts_are_parsed_strictly() {
        let table: &[(&[&str], Option<StatusCode>)] = &[
            (&["127.0.0.1:9000"], OK),
            (&["localhost"], OK),
            (&["LOCALHOST:9000"], OK),
            (&["[::1]:9000"], OK),
            (&["[0:0:0:0:0:0:0:1]"], OK),
            (&["127.0.0.1:9000@evil.example"], BAD),
            (&["[::1]evil.example"], BAD),
            (&["localhost:evil"], BAD),
            (&["localhost:"], BAD),
            (&["localhost:99999"], BAD),
            (&["local host"], BAD),
            (&[""], BAD),
            (&["evil.example"], FORBIDDEN),
            (&["127.0.0.1.evil.example:9000"], FORBIDDEN),
            (&["127.0.0.1", "127.0.0.1"], BAD),
            (&[], BAD),
        ];
        for (hosts, expected) in table {
            assert_eq!(verdict("/mcp", hosts, None), *expected, "Host: {hosts:?}");
        }
    }

    #[test]
    fn the_request_target_names_the_host_when_it_has_one() {
        // absolute-form, and HTTP/2's :authority, which hyper puts in the URI
        assert_eq!(
            verdict("http://evil.example/mcp", &["127.0.0.1"], None),
            FORBIDDEN
        );
        assert_eq!(verdict("http://127.0.0.1:9000/mcp", &[], None), OK);
    }

    #[test]
    fn origins_are_parsed_strictly_and_bound_to_the_listen_port() {
        let host = &["127.0.0.1:9000"][..];
        let table = [
            ("http://127.0.0.1:9000", OK),
            ("http://localhost:9000", OK),
            ("http://[::1]:9000", OK),
            ("http://localhost:6274", OK),
            ("http://localhost:3000", FORBIDDEN),
            ("http://localhost", FORBIDDEN),
            ("http://127.0.0.1:9000@evil.example", FORBIDDEN),
            ("http://[::1]evil.example:9000", FORBIDDEN),
            ("http://localhost:evil", FORBIDDEN),
            ("http://evil.example:9000", FORBIDDEN),
            ("file://localhost:9000", FORBIDDEN),
            ("null", FORBIDDEN),
            ("http://localhost:9000/path", FORBIDDEN),
        ];
        for (origin, expected) in table {
            assert_eq!(
                verdict("/mcp", host, Some(origin)),
                expected,
                "Origin: {origin}"
            );
        }
    }
}

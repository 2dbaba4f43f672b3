//! A client's request head, parsed with `httparse`, and whether the
//! inbound loop serves it or hands the connection to hyper.
//!
//! Only the plain shape of an MCP call is served here: an HTTP/1.1 `POST`
//! to a path, its body framed by one `Content-Length` (or none, an empty
//! body), without `Expect`, `Upgrade`, `Transfer-Encoding` or
//! `Connection: close`. Anything else, a head that is malformed or too
//! large included, goes to hyper as it arrived, so every answer to an odd
//! request (400, 431, `100 Continue`, chunked bodies, HTTP/1.0, HTTP/2)
//! stays hyper's.

use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Uri, Version};

use crate::fields;

/// Header fields parsed without an allocation.
const STACK_FIELDS: usize = 128;

/// A head the inbound loop serves.
#[derive(Debug)]
pub(super) struct Plain {
    /// The request without its body.
    pub(super) request: Request<()>,
    /// The body's length.
    pub(super) content_length: u64,
    /// How many bytes the head took.
    pub(super) head_len: usize,
}

/// What the bytes read so far hold.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "made once per request and taken apart at once; a box would cost every call an allocation"
)]
pub(super) enum Parsed {
    /// Not a whole head yet.
    Partial,
    Plain(Plain),
    /// A request for hyper: the connection is handed over.
    Other,
}

/// Parses the head at the start of `read`, allowing `max_headers` fields.
pub(super) fn parse(read: &[u8], max_headers: usize) -> Parsed {
    // On the stack for any usual limit: a partial head is parsed again on
    // every read.
    let mut stack = [httparse::EMPTY_HEADER; STACK_FIELDS];
    let mut heap = Vec::new();
    let fields = if max_headers <= STACK_FIELDS {
        &mut stack[..max_headers]
    } else {
        heap.resize(max_headers, httparse::EMPTY_HEADER);
        &mut heap[..]
    };
    let mut head = httparse::Request::new(fields);
    let head_len = match head.parse(read) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    if head.version != Some(1) || head.method != Some("POST") {
        return Parsed::Other;
    }
    let Some(path) = head.path.filter(|path| path.starts_with('/')) else {
        return Parsed::Other;
    };
    let Ok(uri) = path.parse::<Uri>() else {
        return Parsed::Other;
    };
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    let mut content_length = None;
    let values = fields::Values::new(read, head_len);
    for field in head.headers.iter() {
        let (Ok(name), Ok(value)) = (
            fields::name(field.name.as_bytes()),
            values.value(field.value),
        ) else {
            return Parsed::Other;
        };
        if name == TRANSFER_ENCODING || name == EXPECT || name == UPGRADE {
            return Parsed::Other;
        }
        if name == CONNECTION && !only_keep_alive(&value) {
            return Parsed::Other;
        }
        if name == CONTENT_LENGTH {
            let length = value.to_str().ok().and_then(fields::content_length);
            match (content_length, length) {
                (None, Some(length)) => content_length = Some(length),
                // Repeated or unreadable: hyper decides what to answer.
                _ => return Parsed::Other,
            }
        }
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Parsed::Plain(Plain {
        request,
        content_length: content_length.unwrap_or(0),
        head_len,
    })
}

/// Whether a `Connection` field asks for nothing but keep-alive, which
/// HTTP/1.1 does anyway.
fn only_keep_alive(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|value| {
        value
            .split(',')
            .map(str::trim)
            .all(|token| token.is_empty() || token.eq_ignore_ascii_case("keep-alive"))
    })
}

#[cfg(test)]
mod tests {
    use super::{Parsed, parse};

    fn plain(text: &str) -> (http::Request<()>, u64, usize) {
        match parse(text.as_bytes(), 100) {
            Parsed::Plain(plain) => (plain.request, plain.content_length, plain.head_len),
            other => panic!("not served here: {other:?}"),
        }
    }

    fn is_other(text: &str) -> bool {
        matches!(parse(text.as_bytes(), 100), Parsed::Other)
    }

    #[test]
    fn a_plain_post_is_served_with_its_headers_and_length() {
        let text = "POST /groups/trio/mcp?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Length: 12\r\nConnection: keep-alive\r\nMcp-Session-Id: a\r\n\r\n{\"id\":1}";
        let (request, length, head_len) = plain(text);
        assert_eq!(request.uri().path(), "/groups/trio/mcp");
        assert_eq!(request.uri().query(), Some("x=1"));
        assert_eq!(request.headers()["host"], "127.0.0.1:9");
        assert_eq!(request.headers()["mcp-session-id"], "a");
        assert_eq!(length, 12);
        assert_eq!(&text[head_len..], "{\"id\":1}");
        let (_, length, _) = plain("POST /mcp HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(length, 0, "no length is an empty body");
    }

    #[test]
    fn a_head_in_pieces_is_partial_until_whole() {
        assert!(matches!(parse(b"POST /mcp HT", 100), Parsed::Partial));
        assert!(matches!(
            parse(b"POST /mcp HTTP/1.1\r\nHost: h\r\n", 100),
            Parsed::Partial
        ));
    }

    #[test]
    fn everything_but_the_plain_shape_goes_to_hyper() {
        for text in [
            "GET /mcp HTTP/1.1\r\nHost: h\r\n\r\n",
            "DELETE /mcp HTTP/1.1\r\nHost: h\r\n\r\n",
            "POST /mcp HTTP/1.0\r\nHost: h\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "POST http://h/mcp HTTP/1.1\r\nHost: h\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nConnection: close\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "garbage\r\n\r\n",
        ] {
            assert!(is_other(text), "{text:?} must go to hyper");
        }
        let many: String = (0..101).map(|i| format!("x-{i}: v\r\n")).collect();
        assert!(is_other(&format!("POST /mcp HTTP/1.1\r\n{many}\r\n")));
    }
}

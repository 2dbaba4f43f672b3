//! How HTTP/1.1 header fields are read, one way for both sides of the
//! data plane: the client front (`server::inbound`) and the member client
//! (`upstream::h1`). Fields that frame a message (RFC 9110 sections 7.6.1
//! and 8.6) are read alike on both, since framing read two ways is how
//! requests are smuggled; a head's fields become a `HeaderMap` with one
//! allocation for all their values; and fields are written one way.

use bytes::Bytes;
use http::header::{InvalidHeaderName, InvalidHeaderValue};
use http::{HeaderName, HeaderValue};

/// MCP's own field names. `HeaderName::from_bytes` keeps only the
/// standard names static and copies any other into an allocation of its
/// own, which every call would pay for these.
const MCP_FIELDS: [&str; 4] = [
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
];

/// A field's name, without an allocation for the standard names and
/// MCP's own.
pub(crate) fn name(raw: &[u8]) -> Result<HeaderName, InvalidHeaderName> {
    if raw.len() > 4 && raw[..4].eq_ignore_ascii_case(b"mcp-") {
        let known = MCP_FIELDS
            .iter()
            .find(|name| raw.eq_ignore_ascii_case(name.as_bytes()));
        if let Some(known) = known {
            return Ok(HeaderName::from_static(known));
        }
    }
    HeaderName::from_bytes(raw)
}

/// Appends the field `name: value` to a head being written.
pub(crate) fn write(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// The values of one parsed head, all slices of one copy of its bytes:
/// one allocation for the head, where a copy per value took one each, and
/// clones of a value (a request's fields forwarded to a member) cost none.
pub(crate) struct Values<'r> {
    /// What was parsed; the values `httparse` returns are slices of it.
    read: &'r [u8],
    copy: Bytes,
}

impl<'r> Values<'r> {
    /// For a head that takes the first `head_len` bytes of `read`.
    pub(crate) fn new(read: &'r [u8], head_len: usize) -> Self {
        Self {
            read,
            copy: Bytes::copy_from_slice(&read[..head_len]),
        }
    }

    /// `value`, a field value `httparse` found in the head, as a
    /// `HeaderValue` over the copy (checked as `HeaderValue::from_bytes`
    /// checks).
    pub(crate) fn value(&self, value: &[u8]) -> Result<HeaderValue, InvalidHeaderValue> {
        let start = value
            .as_ptr()
            .addr()
            .wrapping_sub(self.read.as_ptr().addr());
        match start.checked_add(value.len()) {
            Some(end) if end <= self.copy.len() => {
                HeaderValue::from_maybe_shared(self.copy.slice(start..end))
            }
            // Not from this head: copied on its own.
            _ => HeaderValue::from_bytes(value),
        }
    }
}

/// A `Content-Length` value: decimal digits only. A sign, spaces inside
/// or a list are not a length (`str::parse` alone would take `+12`,
/// which hyper and proxies refuse).
pub(crate) fn content_length(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

/// Whether a comma-separated field (`Connection`, `Transfer-Encoding`)
/// holds `token`, in any case.
pub(crate) fn has_token(value: &HeaderValue, token: &str) -> bool {
    value.to_str().is_ok_and(|v| {
        v.split(',')
            .any(|part| part.trim().eq_ignore_ascii_case(token))
    })
}

#[cfg(test)]
mod tests {
    use super::{Values, content_length, has_token, name};
    use http::HeaderValue;

    #[test]
    fn mcp_names_are_read_in_any_case() {
        assert_eq!(name(b"Mcp-Session-Id").unwrap(), "mcp-session-id");
        assert_eq!(
            name(b"mcp-protocol-version").unwrap(),
            "mcp-protocol-version"
        );
        assert_eq!(name(b"mcp-other").unwrap(), "mcp-other");
        assert_eq!(name(b"Content-Type").unwrap(), "content-type");
        assert!(name(b"bad name").is_err());
    }

    #[test]
    fn values_are_the_heads_bytes_and_checked() {
        let read = b"a: one\r\nb: two\r\n\r\nbody";
        let values = Values::new(read, read.len() - 4);
        assert_eq!(values.value(&read[3..6]).unwrap(), "one");
        assert_eq!(values.value(&read[11..14]).unwrap(), "two");
        assert_eq!(values.value(&read[0..0]).unwrap(), "");
        // A slice from elsewhere is copied; a bad byte is refused.
        assert_eq!(values.value(b"other").unwrap(), "other");
        assert!(values.value(b"bad\nvalue").is_err());
    }

    #[test]
    fn a_length_is_digits_and_nothing_else() {
        assert_eq!(content_length("0"), Some(0));
        assert_eq!(content_length("0012"), Some(12));
        for bad in [
            "",
            "+12",
            "-1",
            "1 2",
            "1,1",
            "0x10",
            "99999999999999999999",
        ] {
            assert_eq!(content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_found_in_lists_in_any_case() {
        let value = HeaderValue::from_static("keep-alive, Close");
        assert!(has_token(&value, "close"));
        assert!(!has_token(&value, "upgrade"));
    }
}

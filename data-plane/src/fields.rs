//! How HTTP/1.1 header fields that frame a message are read (RFC 9110
//! sections 7.6.1 and 8.6), one way for both sides of the data plane: the
//! client front (`server::inbound`) and the member client
//! (`upstream::h1`). Framing read two ways is how requests are smuggled.

use http::HeaderValue;

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
    use super::{content_length, has_token};
    use http::HeaderValue;

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

//! Bearer tokens on the gRPC API, for both ends.
//!
//! Clients send `authorization: Bearer <token>` on every call; the control
//! plane compares it in constant time against the token of the API being
//! called. Tokens come from files (or `HANGAR_TOKEN`), never from the
//! command line, where `ps` would show them, and never appear in `Debug`
//! output or logs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;

/// The metadata key that carries the token.
const AUTHORIZATION: &str = "authorization";
const BEARER: &str = "Bearer ";
/// The environment variable clients read their token from.
pub const TOKEN_ENV: &str = "HANGAR_TOKEN";

/// A shared secret. Its `Debug` output is redacted.
#[derive(Clone)]
pub struct Token(Arc<str>);

/// Why a token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read token file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token is empty or has characters a header cannot carry.
    #[error("{origin}: {problem}")]
    Invalid {
        /// Where the token came from (a file name or a variable).
        origin: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl Token {
    /// A token from text; surrounding whitespace (a trailing newline) is ignored.
    /// `origin` names where it came from in errors.
    pub fn new(text: &str, origin: &str) -> Result<Self, TokenError> {
        let token = text.trim();
        let invalid = |problem| TokenError::Invalid {
            origin: origin.to_owned(),
            problem,
        };
        if token.is_empty() {
            return Err(invalid("the token is empty"));
        }
        // Visible ASCII only: the token travels in an HTTP/2 header.
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "the token may only contain visible ASCII characters (no spaces)",
            ));
        }
        Ok(Self(token.into()))
    }

    /// The token in `path`.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::new(&text, &path.display().to_string())
    }

    /// A client's token: from `file` when given, else from the
    /// `HANGAR_TOKEN` environment variable, else none.
    pub fn from_file_or_env(file: Option<&Path>) -> Result<Option<Self>, TokenError> {
        if let Some(path) = file {
            return Self::from_file(path).map(Some);
        }
        match std::env::var(TOKEN_ENV) {
            Ok(text) => Self::new(&text, TOKEN_ENV).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Whether `presented` is this token, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        // Only the length can leak, and only when it differs.
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The token presented on a call, if any.
pub fn presented_token(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get(AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix(BEARER).map(str::trim)
}

/// Client interceptor that sends the token (if there is one) on every call.
#[derive(Clone, Default)]
pub struct BearerToken(Option<AsciiMetadataValue>);

impl BearerToken {
    /// Sends `token` on every call, or nothing for `None`.
    pub fn new(token: Option<&Token>) -> Self {
        Self(token.map(|t| {
            format!("{BEARER}{}", t.0)
                .parse()
                .expect("Token::new admits only visible ASCII")
        }))
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BearerToken")
            .field(&self.0.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert(AUTHORIZATION, value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_with_a_trailing_newline_reads_as_the_token() {
        let dir = std::env::temp_dir().join(format!("hangar-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "s3cret-token\n").unwrap();
        let token = Token::from_file(&path).unwrap();
        assert!(token.matches("s3cret-token"));
        assert!(!token.matches("s3cret-token\n"));
        assert!(!token.matches("s3cret-tokem"));
        assert!(!token.matches(""));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_and_unsendable_tokens_are_refused_with_their_origin() {
        let empty = Token::new(" \n", "/etc/hangar/token").unwrap_err();
        assert_eq!(empty.to_string(), "/etc/hangar/token: the token is empty");
        let spaced = Token::new("two words", "HANGAR_TOKEN").unwrap_err();
        assert!(spaced.to_string().starts_with("HANGAR_TOKEN: "), "{spaced}");
        assert!(Token::new("naïve", "HANGAR_TOKEN").is_err());
    }

    #[test]
    fn a_missing_token_file_names_the_file() {
        let err = Token::from_file(Path::new("/nonexistent/hangar-token")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read token file /nonexistent/hangar-token: "),
            "{err}"
        );
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let token = Token::new("s3cret-token", "test").unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(!format!("{:?}", BearerToken::new(Some(&token))).contains("s3cret"));
    }

    #[test]
    fn the_interceptor_sends_what_the_server_reads() {
        let token = Token::new("s3cret-token", "test").unwrap();
        let request = BearerToken::new(Some(&token))
            .call(tonic::Request::new(()))
            .unwrap();
        assert_eq!(presented_token(request.metadata()), Some("s3cret-token"));
        let bare = BearerToken::new(None)
            .call(tonic::Request::new(()))
            .unwrap();
        assert_eq!(presented_token(bare.metadata()), None);
    }
}

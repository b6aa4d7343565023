//! The shared bearer token and the two interceptors that carry it: clients
//! add `authorization: Bearer TOKEN` to every call, servers refuse a call
//! whose token is missing or different with `Unauthenticated` before the
//! handler runs. The comparison takes the same time wherever the first
//! differing byte is.

use crate::SecurityError;
use std::path::Path;
use std::sync::Arc;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The header the token travels in.
pub const HEADER: &str = "authorization";
/// Shortest token accepted: shorter ones are guessable.
pub const MIN_TOKEN_LEN: usize = 16;
/// Longest token accepted (it travels in every call's headers).
pub const MAX_TOKEN_LEN: usize = 1024;

/// A validated token: printable ASCII without spaces, 16..=1024 bytes.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    pub fn new(text: &str) -> Result<Token, SecurityError> {
        let text = text.trim();
        if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&text.len()) {
            return Err(SecurityError::Token(format!(
                "must be {MIN_TOKEN_LEN}..={MAX_TOKEN_LEN} characters, got {}",
                text.len()
            )));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecurityError::Token("must be printable ASCII without spaces".into()));
        }
        Ok(Token(text.into()))
    }

    /// The first line of `path`.
    pub fn from_file(path: &Path) -> Result<Token, SecurityError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SecurityError::Read { path: path.to_path_buf(), source })?;
        Token::new(text.lines().next().unwrap_or_default())
    }

    fn header(&self) -> Option<AsciiMetadataValue> {
        MetadataValue::try_from(format!("Bearer {}", self.0)).ok()
    }
}

/// Equal length and equal bytes, in time that depends on the length only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Server side: refuses calls without the token (passes all when none is set).
#[derive(Debug, Clone)]
pub struct TokenCheck {
    expected: Option<Token>,
}

impl TokenCheck {
    pub fn new(expected: Option<Token>) -> TokenCheck {
        TokenCheck { expected }
    }

    /// The check itself, for services wired by hand.
    pub fn verify<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(expected) = &self.expected else { return Ok(()) };
        let given = request.metadata().get(HEADER).map(|v| v.as_bytes());
        match given.and_then(|v| v.strip_prefix(b"Bearer ")) {
            Some(given) if constant_time_eq(given, expected.0.as_bytes()) => Ok(()),
            Some(_) => Err(Status::unauthenticated("wrong bearer token")),
            None => Err(Status::unauthenticated("missing bearer token")),
        }
    }
}

impl Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.verify(&request)?;
        Ok(request)
    }
}

/// Client side: adds the token to every call (nothing when none is set).
#[derive(Debug, Clone, Default)]
pub struct TokenAttach {
    header: Option<AsciiMetadataValue>,
}

impl TokenAttach {
    pub fn new(token: Option<&Token>) -> TokenAttach {
        TokenAttach { header: token.and_then(Token::header) }
    }
}

impl Interceptor for TokenAttach {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request.metadata_mut().insert(HEADER, header.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_be_long_and_printable() {
        assert!(Token::new("short").is_err());
        assert!(Token::new("sixteen chars!!!").is_err(), "spaces refused");
        assert!(Token::new(&"x".repeat(MAX_TOKEN_LEN + 1)).is_err());
        assert!(Token::new("  0123456789abcdef\n").is_ok(), "surrounding whitespace trimmed");
        assert_eq!(format!("{:?}", Token::new("0123456789abcdef").unwrap()), "Token(…)");
    }

    #[test]
    fn check_accepts_the_token_and_nothing_else() {
        let token = Token::new("0123456789abcdef").unwrap();
        let mut check = TokenCheck::new(Some(token.clone()));
        let mut attach = TokenAttach::new(Some(&token));
        let request = attach.call(Request::new(())).unwrap();
        assert!(check.call(request).is_ok());

        let missing = check.call(Request::new(())).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().contains("missing"));

        let other = Token::new("0123456789abcdeF").unwrap();
        let wrong = check.call(TokenAttach::new(Some(&other)).call(Request::new(())).unwrap()).unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        assert!(wrong.message().contains("wrong"));

        let prefix = Token::new("0123456789abcdef0").unwrap();
        assert!(check.call(TokenAttach::new(Some(&prefix)).call(Request::new(())).unwrap()).is_err());

        // No token configured: everything passes, nothing is added.
        assert!(TokenCheck::new(None).call(Request::new(())).is_ok());
        let plain = TokenAttach::new(None).call(Request::new(())).unwrap();
        assert!(plain.metadata().get(HEADER).is_none());
    }
}

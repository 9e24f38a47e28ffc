//! What the browser hands the app after a ceremony: a code, an id_token or a
//! Passage nonce. Parsed strictly: exactly one of them, bounded in size.

use serde::Deserialize;

use crate::secret::{Code, IdToken, PassageNonce};

/// Largest accepted code or nonce, in bytes.
pub const MAX_CODE_LEN: usize = 512;
/// Largest accepted id_token, in bytes.
pub const MAX_ID_TOKEN_LEN: usize = 8 * 1024;

/// A proof of a passkey ceremony.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Proof {
    /// A single-use exchange code (Passlock, embedded).
    Code(Code),
    /// A signed id_token (Passlock, embedded).
    IdToken(IdToken),
    /// A Passage Passkey Flex nonce.
    Nonce(PassageNonce),
}

/// Why a proof body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Not a JSON object with exactly one of `code`, `id_token`, `nonce`.
    #[error("expected a JSON object with exactly one of \"code\", \"id_token\" or \"nonce\"")]
    Shape,
    /// The value is empty or too long.
    #[error("the proof is empty or too long")]
    Length,
}

#[derive(Deserialize)]
struct Body {
    code: Option<String>,
    id_token: Option<String>,
    nonce: Option<String>,
}

impl Proof {
    /// Parses `{"code"}`, `{"id_token"}` or `{"nonce"}` from a JSON body.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ProofError> {
        let body: Body = serde_json::from_slice(bytes).map_err(|_| ProofError::Shape)?;
        let check = |s: &str, max: usize| {
            if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
                Err(ProofError::Length)
            } else {
                Ok(())
            }
        };
        match (body.code, body.id_token, body.nonce) {
            (Some(c), None, None) => {
                check(&c, MAX_CODE_LEN)?;
                Ok(Self::Code(Code::new(c)))
            }
            (None, Some(t), None) => {
                check(&t, MAX_ID_TOKEN_LEN)?;
                Ok(Self::IdToken(IdToken::new(t)))
            }
            (None, None, Some(n)) => {
                check(&n, MAX_CODE_LEN)?;
                Ok(Self::Nonce(PassageNonce::new(n)))
            }
            _ => Err(ProofError::Shape),
        }
    }

    /// The kind, safe to log: `code`, `id_token` or `nonce`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Code(_) => "code",
            Self::IdToken(_) => "id_token",
            Self::Nonce(_) => "nonce",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_field() {
        assert!(matches!(
            Proof::from_json(br#"{"code":"abc"}"#),
            Ok(Proof::Code(_))
        ));
        assert!(matches!(
            Proof::from_json(br#"{"id_token":"a.b.c"}"#),
            Ok(Proof::IdToken(_))
        ));
        assert!(matches!(
            Proof::from_json(br#"{"nonce":"n"}"#),
            Ok(Proof::Nonce(_))
        ));
        assert_eq!(
            Proof::from_json(br#"{"code":"a","id_token":"b"}"#).err(),
            Some(ProofError::Shape)
        );
        assert_eq!(Proof::from_json(br#"{}"#).err(), Some(ProofError::Shape));
        assert_eq!(
            Proof::from_json(br#"{"code":1}"#).err(),
            Some(ProofError::Shape)
        );
        assert_eq!(Proof::from_json(b"not json").err(), Some(ProofError::Shape));
        assert_eq!(
            Proof::from_json(br#"{"code":""}"#).err(),
            Some(ProofError::Length)
        );
        let long = format!(r#"{{"code":"{}"}}"#, "a".repeat(MAX_CODE_LEN + 1));
        assert_eq!(
            Proof::from_json(long.as_bytes()).err(),
            Some(ProofError::Length)
        );
    }

    #[test]
    fn debug_redacts() {
        let p = Proof::from_json(br#"{"code":"supersecretcode"}"#).unwrap();
        assert!(!format!("{p:?}").contains("supersecretcode"));
    }
}

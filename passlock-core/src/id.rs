//! Identifier newtypes, parsed and length-checked at the boundary.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The identifier is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// The identifier is longer than allowed.
    #[error("{kind} is longer than {max} bytes")]
    TooLong {
        /// Which identifier.
        kind: &'static str,
        /// The limit.
        max: usize,
    },
    /// The identifier contains a control character or whitespace.
    #[error("{0} contains a control character or whitespace")]
    BadCharacter(&'static str),
}

/// Whether `value` holds a control character or whitespace. ASCII (every
/// id passlock issues, and ids are parsed from each session on every
/// guarded request) is checked byte by byte: there both are the bytes up
/// to the space and DEL.
fn has_bad_character(value: &str) -> bool {
    if value.is_ascii() {
        value.bytes().any(|b| b <= b' ' || b == 0x7f)
    } else {
        value.chars().any(|c| c.is_control() || c.is_whitespace())
    }
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $max:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Parses and checks an identifier.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                if value.is_empty() {
                    return Err(IdError::Empty(stringify!($name)));
                }
                if value.len() > Self::MAX_LEN {
                    return Err(IdError::TooLong { kind: stringify!($name), max: Self::MAX_LEN });
                }
                if has_bad_character(&value) {
                    return Err(IdError::BadCharacter(stringify!($name)));
                }
                Ok(Self(value))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the identifier into its string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A Passlock tenancy id (also the `aud` of its id_tokens).
    TenancyId, 128
);
id_type!(
    /// The id of an authenticator (a passkey) as the provider names it:
    /// Passlock's `authenticatorId`, the embedded provider's credential id
    /// (base64url), Passage's device id. This is what an app links to a user.
    AuthenticatorId, 1024
);
id_type!(
    /// A passkey id in the Passlock vault (the same value as the
    /// `authenticatorId` of principals, typed apart for the vault API).
    PasskeyId, 1024
);
id_type!(
    /// The provider-side user id fixed when a ceremony is authorized
    /// (Passlock's `userId`, the `sub` of id_tokens, Passage's external id).
    /// Opaque to the app.
    UserHandle, 256
);
id_type!(
    /// A mailbox challenge id.
    ChallengeId, 256
);

impl From<PasskeyId> for AuthenticatorId {
    fn from(value: PasskeyId) -> Self {
        Self(value.0)
    }
}

impl From<AuthenticatorId> for PasskeyId {
    fn from(value: AuthenticatorId) -> Self {
        Self(value.0)
    }
}

impl UserHandle {
    /// A new random handle (128 bits of entropy), used to reserve a user id
    /// for a sign-up before the user exists.
    pub fn random() -> Self {
        Self(crate::secret::random_token(16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_check_is_the_unicode_one() {
        for b in 0_u8..=127 {
            let c = char::from(b);
            let unicode = c.is_control() || c.is_whitespace();
            assert_eq!(has_bad_character(&format!("a{c}b")), unicode, "byte {b}");
            assert_eq!(
                has_bad_character(&format!("\u{e9}{c}")),
                unicode,
                "byte {b}"
            );
        }
        assert!(has_bad_character("a\u{85}b") && has_bad_character("a\u{a0}"));
        assert!(!has_bad_character("passkey-\u{e9}t\u{e9}"));
    }

    #[test]
    fn rejects_empty_long_and_control_characters() {
        assert_eq!(TenancyId::new(""), Err(IdError::Empty("TenancyId")));
        assert!(TenancyId::new("a".repeat(129)).is_err());
        assert!(AuthenticatorId::new("a b").is_err());
        assert!(AuthenticatorId::new("a\nb").is_err());
        assert_eq!(
            AuthenticatorId::new("abc").map(|a| a.to_string()),
            Ok("abc".to_owned())
        );
    }

    #[test]
    fn serde_checks_on_the_way_in() {
        let ok: AuthenticatorId = serde_json::from_str("\"x1\"").unwrap();
        assert_eq!(ok.as_str(), "x1");
        assert!(serde_json::from_str::<AuthenticatorId>("\"\"").is_err());
    }

    #[test]
    fn random_handles_differ() {
        assert_ne!(UserHandle::random(), UserHandle::random());
    }
}

//! Secrets as types: API keys, exchange codes, id_tokens, one-time tokens and nonces.
//!
//! Every secret type is made by one macro, in the manner of `oauth2`'s secret
//! newtypes: `Debug` prints the type name and a placeholder, there is no
//! `Display`, equality is constant-time only (`ct_eq`), and the raw value is
//! reached through one accessor, [`expose_secret`](ApiKey::expose_secret),
//! whose name says it should not be logged.

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a raw secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The raw secret. Never log it, put it in an error message or in a
            /// response body other than the one it is meant for.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }

            /// Compares two secrets in constant time.
            pub fn ct_eq(&self, other: &Self) -> bool {
                aws_lc_rs::constant_time::verify_slices_are_equal(
                    self.0.as_bytes(),
                    other.0.as_bytes(),
                )
                .is_ok()
            }

            /// Length of the secret in bytes (safe to log).
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether the secret is empty.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// A Passlock tenancy API key (or a Passage API key), sent as a Bearer token.
    ApiKey
);
secret_type!(
    /// A single-use exchange code handed to the browser after a ceremony.
    Code
);
secret_type!(
    /// A signed `id_token` (JWT) proving a passkey ceremony.
    IdToken
);
secret_type!(
    /// A one-time token approving one registration ceremony.
    RegistrationToken
);
secret_type!(
    /// A one-time token approving one authentication ceremony.
    AuthenticationToken
);
secret_type!(
    /// A one-time token binding the browser to one ceremony's server-side state.
    SessionToken
);
secret_type!(
    /// A one-time token of the vault's update, delete and prune flows.
    VaultToken
);
secret_type!(
    /// A Passage Passkey Flex nonce, proof of a completed transaction.
    PassageNonce
);
secret_type!(
    /// A mailbox challenge secret (Passlock challenges).
    ChallengeSecret
);
secret_type!(
    /// A one-time account recovery code, as mailed to the user (see
    /// [`crate::recovery`]). Stored only as a keyed hash.
    RecoveryCode
);

/// Random URL-safe token with `bytes` bytes of entropy (base64url, no padding)
/// from the operating system's RNG. Public for the test kit's fakes
/// (`passlock-test`), which mint ids and codes the way the core does; empty
/// only if the RNG fails twice (empty tokens are refused wherever one is
/// checked).
pub fn random_token(bytes: usize) -> String {
    use aws_lc_rs::rand::SecureRandom as _;
    use base64::Engine as _;
    let mut buf = vec![0u8; bytes];
    // SystemRandom::fill only fails if the OS RNG is unavailable; fall back to
    // a panic-free error path by leaving the buffer zeroed is not acceptable,
    // so we retry once and then abort the token (empty tokens are refused
    // everywhere they are checked).
    let rng = aws_lc_rs::rand::SystemRandom::new();
    if rng.fill(&mut buf).is_err() && rng.fill(&mut buf).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_secret() {
        let raw = "s3cr3t-value-123";
        let outputs = [
            format!("{:?}", ApiKey::new(raw)),
            format!("{:?}", Code::new(raw)),
            format!("{:?}", IdToken::new(raw)),
            format!("{:?}", RegistrationToken::new(raw)),
            format!("{:?}", AuthenticationToken::new(raw)),
            format!("{:?}", SessionToken::new(raw)),
            format!("{:?}", VaultToken::new(raw)),
            format!("{:?}", PassageNonce::new(raw)),
            format!("{:?}", ChallengeSecret::new(raw)),
            format!("{:?}", RecoveryCode::new(raw)),
            format!("{:#?}", Some(ApiKey::new(raw))),
        ];
        for out in outputs {
            assert!(!out.contains(raw), "{out}");
            assert!(out.contains("redacted"), "{out}");
        }
    }

    #[test]
    fn constant_time_equality() {
        assert!(Code::new("abc").ct_eq(&Code::new("abc")));
        assert!(!Code::new("abc").ct_eq(&Code::new("abd")));
        assert!(!Code::new("abc").ct_eq(&Code::new("abcd")));
    }

    #[test]
    fn random_tokens_have_enough_entropy() {
        let a = random_token(32);
        let b = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}

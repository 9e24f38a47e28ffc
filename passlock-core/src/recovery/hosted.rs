//! Recovery codes from the hosted Passlock service's mailbox challenges
//! (`POST /challenges`, `POST /challenges/verify`, `DELETE
//! /challenges/{id}`), chosen with
//! [`Recovery::hosted_challenges`](super::Recovery::hosted_challenges).
//!
//! Passlock makes, checks and counts the code; passlock keeps one row per
//! challenge in the app's [`RecoveryChallenges`](super::RecoveryChallenges)
//! store as on the local backend, under its own random public id. The row
//! holds, instead of a code hash, the *sealed reference* to Passlock's
//! challenge: its id and its `secret`, encrypted (AES-256-GCM under a key
//! derived from the sealing key, bound to the public id).
//!
//! Why the row and not the session: the secret then never leaves the
//! server (no cookie, not even an encrypted one, whatever session store
//! the app uses), a code can be typed in another browser than the one
//! that asked for it (as on the local backend), a stolen database gives
//! neither the secret nor Passlock's challenge id, and the row keeps the
//! local attempt count and single use, so both backends answer alike.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::UnixMillis;
use crate::error::{ConfigError, FlowError, MAX_RETRY_AFTER_SECS, ProviderError};
use crate::id::{ChallengeId, UserHandle};
use crate::provider::passlock::{HostedError, PasslockApiError, PasslockClient};
use crate::provider::v2::{CreateChallenge, VerifyChallenge};
use crate::recovery::EmailAddress;
use crate::secret::{ChallengeSecret, RecoveryCode, random_token};

/// The `purpose` of recovery's challenges unless
/// [`HostedChallenges::purpose`] sets another.
pub const DEFAULT_PURPOSE: &str = "account-recovery";

/// What marks a sealed reference in a row (`code_hash` holds it).
const SEALED_PREFIX: &str = "hosted1.";

/// Recovery's challenges on the hosted Passlock service: the backend
/// [`Recovery::hosted_challenges`](super::Recovery::hosted_challenges)
/// selects. Passlock creates each challenge with `purpose` (default
/// [`DEFAULT_PURPOSE`]), the user's id as `userId` and `sendEmail: false`,
/// so that the app's [`Mailer`](super::Mailer) sends the code as on the
/// local backend; [`passlock_sends_mail`](Self::passlock_sends_mail) lets
/// Passlock mail it instead.
#[derive(Clone)]
pub struct HostedChallenges {
    client: PasslockClient,
    purpose: String,
    passlock_sends_mail: bool,
}

impl fmt::Debug for HostedChallenges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostedChallenges")
            .field("tenancy", self.client.tenancy_id())
            .field("purpose", &self.purpose)
            .field("passlock_sends_mail", &self.passlock_sends_mail)
            .finish_non_exhaustive()
    }
}

impl HostedChallenges {
    /// Challenges on the tenancy of `client` (e.g.
    /// `PasslockHosted::client().clone()`), mailed by the app.
    pub fn new(client: PasslockClient) -> Self {
        Self {
            client,
            purpose: DEFAULT_PURPOSE.to_owned(),
            passlock_sends_mail: false,
        }
    }

    /// Sets the challenges' `purpose` (what Passlock files them under).
    #[must_use]
    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = purpose.into();
        self
    }

    /// `true`: Passlock mails the code itself (`sendEmail: true`, its own
    /// template) and the app's [`Mailer`](super::Mailer) is not called.
    #[must_use]
    pub fn passlock_sends_mail(mut self, yes: bool) -> Self {
        self.passlock_sends_mail = yes;
        self
    }
}

/// Passlock's challenge as a row keeps it: its id and its secret.
struct HostedRef {
    id: ChallengeId,
    secret: ChallengeSecret,
}

/// A challenge Passlock created.
pub(crate) struct Created {
    /// The sealed reference, for the row.
    pub(crate) sealed: String,
    /// Passlock's id (to delete it if the row cannot be stored).
    pub(crate) hosted_id: ChallengeId,
    /// When Passlock expires it (epoch ms).
    pub(crate) expires_at: UnixMillis,
    /// The code for the app's mailer; `None` when Passlock mails it.
    pub(crate) code: Option<RecoveryCode>,
}

/// [`HostedChallenges`] as the running recovery holds it, with the key
/// that seals the references.
pub(crate) struct HostedBackend {
    config: HostedChallenges,
    seal: RandomizedNonceKey,
}

impl fmt::Debug for HostedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostedBackend")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HostedBackend {
    /// The backend of `config`, sealing under a key derived from `key`.
    pub(crate) fn new(config: HostedChallenges, key: &hmac::Key) -> Result<Self, ConfigError> {
        let bytes = hmac::sign(key, b"passlock recovery hosted reference aes-256-gcm v1");
        let seal = RandomizedNonceKey::new(&AES_256_GCM, &bytes.as_ref()[..32])
            .map_err(|_| ConfigError::new("recovery.hosted_challenges", "no usable sealing key"))?;
        Ok(Self { config, seal })
    }

    /// Creates Passlock's challenge for `user` at `email` and seals its
    /// reference for the row `public`.
    pub(crate) async fn create(
        &self,
        public: &ChallengeId,
        email: &EmailAddress,
        user: &str,
    ) -> Result<Created, FlowError> {
        let mut request = CreateChallenge::new(email.as_str(), self.config.purpose.as_str());
        request.user_id = Some(
            UserHandle::new(user)
                .map_err(|_| FlowError::Misconfigured("a user id that is not a user handle"))?,
        );
        request.send_email = Some(self.config.passlock_sends_mail);
        let created = self
            .config
            .client
            .create_challenge(&request)
            .await
            .map_err(hosted_error)?
            .challenge;
        let reference = HostedRef {
            id: created.challenge_id.clone(),
            secret: created.secret,
        };
        let sealed = self
            .seal(public, &reference)
            .ok_or(FlowError::Misconfigured("no randomness available"))?;
        let code = (!self.config.passlock_sends_mail)
            .then(|| RecoveryCode::new(created.code.expose_secret()));
        Ok(Created {
            sealed,
            hosted_id: created.challenge_id,
            expires_at: created.expires_at,
            code,
        })
    }

    /// A sealed reference to a challenge Passlock does not have (random id
    /// and secret), for the row of an address without an account: its
    /// verification takes the same call, and fails.
    pub(crate) fn decoy(&self, public: &ChallengeId) -> Option<String> {
        let reference = HostedRef {
            id: ChallengeId::new(random_token(12)).ok()?,
            secret: ChallengeSecret::new(random_token(24)),
        };
        self.seal(public, &reference)
    }

    /// Checks `code` against the challenge sealed in the row `public`:
    /// `Ok(true)` when Passlock verified it (consuming it) for `user`.
    ///
    /// A wrong code, an unknown, expired or exhausted challenge is
    /// `Ok(false)` (`401 invalid_code`; the local attempt count answers
    /// `429 code_attempts_exceeded`, for rows with and without an account
    /// alike); Passlock's rate limit is `429 throttled`; an outage or an
    /// answer off the wire is the upstream error (`503`/`502`/`504`).
    pub(crate) async fn verify(
        &self,
        public: &ChallengeId,
        sealed: &str,
        code: &RecoveryCode,
        user: Option<&str>,
    ) -> Result<bool, FlowError> {
        let Some(reference) = self.open(public, sealed) else {
            // A row of the local backend, or altered: no code opens it.
            return Ok(false);
        };
        let request = VerifyChallenge::new(
            reference.id,
            reference.secret,
            ChallengeSecret::new(code.expose_secret()),
        );
        match self.config.client.verify_challenge(&request).await {
            Ok(verified) => {
                let c = verified.challenge;
                let same_user = c.user_id.as_ref().map(UserHandle::as_str) == user;
                Ok(user.is_some() && same_user && c.purpose == self.config.purpose)
            }
            Err(e) => match e.api() {
                Some(
                    PasslockApiError::InvalidChallengeCode
                    | PasslockApiError::InvalidChallenge
                    | PasslockApiError::ChallengeExpired
                    | PasslockApiError::ChallengeAttemptsExceeded
                    | PasslockApiError::NotFound,
                ) => Ok(false),
                Some(PasslockApiError::ChallengeRateLimited {
                    retry_after_seconds,
                }) => Err(FlowError::Throttled {
                    retry_after: (*retry_after_seconds).clamp(1, MAX_RETRY_AFTER_SECS),
                }),
                _ => Err(hosted_error(e)),
            },
        }
    }

    /// Deletes Passlock's challenge `id` (`DELETE /challenges/{id}`).
    pub(crate) async fn delete(&self, id: &ChallengeId) -> Result<(), FlowError> {
        self.config
            .client
            .delete_challenge(id)
            .await
            .map(|_| ())
            .map_err(hosted_error)
    }

    fn seal(&self, public: &ChallengeId, reference: &HostedRef) -> Option<String> {
        let mut data = format!(
            "{}\0{}",
            reference.id.as_str(),
            reference.secret.expose_secret()
        )
        .into_bytes();
        let nonce = self
            .seal
            .seal_in_place_append_tag(Aad::from(public.as_str().as_bytes()), &mut data)
            .ok()?;
        let mut bytes = nonce.as_ref().to_vec();
        bytes.extend_from_slice(&data);
        Some(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    fn open(&self, public: &ChallengeId, sealed: &str) -> Option<HostedRef> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed.strip_prefix(SEALED_PREFIX)?)
            .ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(public.as_str().as_bytes()), &mut data)
            .ok()?;
        let (id, secret) = std::str::from_utf8(plain).ok()?.split_once('\0')?;
        Some(HostedRef {
            id: ChallengeId::new(id).ok()?,
            secret: ChallengeSecret::new(secret),
        })
    }
}

/// A failed call as the flow answers it: never the service's message or
/// the secret, only the fixed codes of [`ProviderError`].
fn hosted_error(e: HostedError) -> FlowError {
    FlowError::Provider(ProviderError::from(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::passlock::PasslockConfig;

    fn backend(key: &[u8]) -> HostedBackend {
        let config = PasslockConfig::new(
            crate::id::TenancyId::new("t1").unwrap(),
            crate::secret::ApiKey::new("sk_test"),
        )
        .with_endpoint("http://127.0.0.1:9");
        let client = PasslockClient::new(config).unwrap();
        HostedBackend::new(
            HostedChallenges::new(client),
            &hmac::Key::new(hmac::HMAC_SHA256, key),
        )
        .unwrap()
    }

    #[test]
    fn references_open_only_with_their_key_and_row() {
        let b = backend(b"key one");
        let row = ChallengeId::new("row-1").unwrap();
        let reference = HostedRef {
            id: ChallengeId::new("hosted-1").unwrap(),
            secret: ChallengeSecret::new("the-secret"),
        };
        let sealed = b.seal(&row, &reference).unwrap();
        assert!(!sealed.contains("the-secret") && !sealed.contains("hosted-1"));
        let opened = b.open(&row, &sealed).unwrap();
        assert_eq!(opened.id.as_str(), "hosted-1");
        assert_eq!(opened.secret.expose_secret(), "the-secret");
        // Another row, another key, an altered or a local row: nothing.
        assert!(
            b.open(&ChallengeId::new("row-2").unwrap(), &sealed)
                .is_none()
        );
        assert!(backend(b"key two").open(&row, &sealed).is_none());
        let mut altered = sealed.clone();
        altered.push('A');
        assert!(b.open(&row, &altered).is_none());
        assert!(b.open(&row, "00ff00ff").is_none());
        // Two seals of one reference differ (random nonces).
        assert_ne!(b.seal(&row, &reference).unwrap(), sealed);
        assert!(b.decoy(&row).is_some_and(|d| b.open(&row, &d).is_some()));
        // Debug shows the choice, never the key or a secret.
        let dbg = format!("{b:?}");
        assert!(
            dbg.contains("account-recovery") && dbg.contains("t1"),
            "{dbg}"
        );
        assert!(!dbg.contains("sk_test"), "{dbg}");
    }
}

//! Account recovery by a one-time email code, for a user who lost every
//! passkey. Off by default; an app turns it on with
//! [`PasslockBuilder::recovery`](crate::PasslockBuilder::recovery).
//!
//! ```text
//! POST {prefix}/recovery/start  {"email"}             -> 202 {"challenge","expires_at"}  (always the same shape)
//! POST {prefix}/recovery/verify {"challenge","code"}  -> 200 {"user_id","expires_at"}    (a recovery session)
//! POST {prefix}/registration/authorize, then /register -> 201: a new passkey and a full session
//! ```
//!
//! * The app tells passlock which user an address belongs to
//!   ([`RecoveryDirectory`]) and sends the code ([`Mailer`]; [`LogMailer`]
//!   writes it to the log for development).
//! * `start` answers `202` with a fresh challenge id whether or not the
//!   address has an account: a challenge is stored either way (for an
//!   unknown address one whose code nobody knows), the mail is sent and the
//!   audit event emitted in a background task, so neither the body, the
//!   status nor the time of the answer tells the two apart.
//! * Codes are [`RecoveryOptions::code_digits`] decimal digits from the OS
//!   CSPRNG, stored only as HMAC-SHA256 under a key derived from the
//!   [sealing key](crate::PasslockBuilder::sealing_key) (every instance
//!   derives the same key; a fast keyed hash is enough because a stolen
//!   table without the key gives nothing to guess against, and the online
//!   guesses are bounded by the attempt limits), bound to their challenge,
//!   compared in constant time, single use, and expire after
//!   [`RecoveryOptions::code_ttl_secs`].
//! * Every attempt is counted atomically against its challenge before the
//!   code is compared ([`RecoveryChallenges::attempt`]); after
//!   [`RecoveryOptions::attempts_per_challenge`] the challenge answers `429
//!   code_attempts_exceeded` even to the right code. Failed attempts also
//!   count per address and per client ([`crate::throttle`]), and requests
//!   per address are limited.
//! * A verified code gives a *recovery session*: not a sign-in (no
//!   extractor accepts it, `GET {prefix}/session` answers `401`), only
//!   allowed to authorize and register one new passkey for its user within
//!   [`RecoveryOptions::session_secs`]. The registration turns it into a full
//!   session (new session id, new session family); the challenge is taken
//!   out of the store then, so a recovery enrolls at most one passkey.
//! * Audited as [`AuditKind::RecoveryRequested`](crate::audit::AuditKind::RecoveryRequested)
//!   (only for an address with an account), [`AuditKind::RecoveryUsed`](crate::audit::AuditKind::RecoveryUsed)
//!   and [`AuditKind::PasskeyEnrolledByRecovery`](crate::audit::AuditKind::PasskeyEnrolledByRecovery),
//!   so the app can tell the user.
//!
//! The challenges live in the app's stores ([`MemoryRecoveryChallenges`] by
//! default, `SqliteRecoveryChallenges` / `PgRecoveryChallenges` for several
//! instances), whatever the passkey provider: recovery works the same with
//! the embedded, the hosted Passlock and the Passage providers.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hmac;

use crate::clock::UnixMillis;
use crate::error::{BoxError, ConfigError, StoreError};
use crate::id::ChallengeId;
use crate::secret::RecoveryCode;
use crate::store::UserId;
use crate::throttle::Limit;

pub(crate) mod flow;

pub use flow::{RecoveryStartBody, RecoveryStarted, RecoveryVerified, RecoveryVerifyBody};

/// Longest accepted email address, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

/// An email address as the user typed it, trimmed and checked for shape
/// (one `@` with something on both sides, no whitespace or control
/// characters, at most [`MAX_EMAIL_BYTES`]). Compared and looked up as the
/// app stores it: passlock does not change its case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses `raw`; `None` when it is not shaped like an address.
    pub fn parse(raw: &str) -> Option<Self> {
        let s = raw.trim();
        let (local, domain) = s.split_once('@')?;
        let ok = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && s.len() <= MAX_EMAIL_BYTES
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then(|| Self(s.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An address is personal data: logs get its domain only.
        let domain = self.0.rsplit_once('@').map_or("", |(_, d)| d);
        write!(f, "EmailAddress(…@{domain})")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sending the code failed.
#[derive(Debug, thiserror::Error)]
#[error("the recovery mail could not be sent")]
pub struct MailError(#[source] pub BoxError);

/// Sends recovery codes: the app implements it on its mail service.
///
/// Called in a background task after `POST {prefix}/recovery/start` has
/// answered (so the answer's timing does not tell whether an account
/// exists); a failure is logged at `warn` and the user simply gets no mail.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + fmt::Debug + 'static {
    /// Sends `code` to `to`; the code is valid until `expires_at` (epoch ms).
    async fn send_recovery_code(
        &self,
        to: &EmailAddress,
        code: &RecoveryCode,
        expires_at: UnixMillis,
    ) -> Result<(), MailError>;
}

/// A [`Mailer`] for development: writes the code to the log (`warn`,
/// target `passlock::recovery`). Anyone who reads the log can recover any
/// account: never use it in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailer;

#[async_trait::async_trait]
impl Mailer for LogMailer {
    async fn send_recovery_code(
        &self,
        to: &EmailAddress,
        code: &RecoveryCode,
        expires_at: UnixMillis,
    ) -> Result<(), MailError> {
        tracing::warn!(
            target: "passlock::recovery",
            to = to.as_str(),
            code = code.expose_secret(),
            expires_at,
            "passlock: DEVELOPMENT mailer: recovery code written to the log instead of mailed; \
             configure a real Mailer in production"
        );
        Ok(())
    }
}

/// Which user an email address belongs to: the address the app has on
/// file for the user (only such an address can receive a code).
#[async_trait::async_trait]
pub trait RecoveryDirectory<U: UserId>: Send + Sync + fmt::Debug + 'static {
    /// The user whose address is `email`, if any. A failure answers `503`.
    async fn user_by_email(&self, email: &EmailAddress) -> Result<Option<U>, StoreError>;
}

/// The limits of recovery; every default is the safe one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryOptions {
    /// Digits of a code (default 8; 6 to 12).
    pub code_digits: u8,
    /// How long a code is valid, in seconds (default 600).
    pub code_ttl_secs: u64,
    /// Attempts (right or wrong) per challenge (default 5); then the
    /// challenge answers `429 code_attempts_exceeded`.
    pub attempts_per_challenge: u32,
    /// `POST {prefix}/recovery/start` calls per address (default 3 per 15
    /// minutes); then `429 throttled`, whether or not the address has an
    /// account.
    pub requests_per_address: Limit,
    /// Failed codes per address, over all its challenges (default 10 per
    /// hour); then `429 throttled`.
    pub failures_per_address: Limit,
    /// How long a recovery session may enroll its passkey, in seconds
    /// (default 600).
    pub session_secs: u64,
}

impl Default for RecoveryOptions {
    fn default() -> Self {
        Self {
            code_digits: 8,
            code_ttl_secs: 600,
            attempts_per_challenge: 5,
            requests_per_address: Limit::new(3, std::time::Duration::from_secs(900)),
            failures_per_address: Limit::new(10, std::time::Duration::from_secs(3600)),
            session_secs: 600,
        }
    }
}

impl RecoveryOptions {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(6..=12).contains(&self.code_digits) {
            return Err(ConfigError::new(
                "recovery.code_digits",
                "must be between 6 and 12",
            ));
        }
        if self.code_ttl_secs == 0 || self.session_secs == 0 {
            return Err(ConfigError::new(
                "recovery.code_ttl_secs",
                "code and session lifetimes must be at least 1 second",
            ));
        }
        if self.attempts_per_challenge == 0 {
            return Err(ConfigError::new(
                "recovery.attempts_per_challenge",
                "must be at least 1",
            ));
        }
        let limits = [self.requests_per_address, self.failures_per_address];
        if limits
            .iter()
            .any(|l| l.max_failures == 0 || l.window.is_zero())
        {
            return Err(ConfigError::new(
                "recovery.limits",
                "limits need at least one attempt and a non-zero window",
            ));
        }
        Ok(())
    }
}

/// Recovery as the app configures it: its mailer, its directory of
/// addresses, where the challenges live and the limits.
///
/// ```
/// use std::sync::Arc;
/// use passlock_core::recovery::{EmailAddress, LogMailer, Recovery, RecoveryDirectory};
/// use passlock_core::StoreError;
///
/// #[derive(Debug)]
/// struct Users;
///
/// #[passlock_core::async_trait]
/// impl RecoveryDirectory<i64> for Users {
///     async fn user_by_email(&self, email: &EmailAddress) -> Result<Option<i64>, StoreError> {
///         Ok((email.as_str() == "alice@example.com").then_some(1))
///     }
/// }
///
/// let recovery: Recovery<i64> = Recovery::new(Arc::new(LogMailer), Arc::new(Users));
/// assert_eq!(recovery.options().code_digits, 8);
/// ```
pub struct Recovery<U: UserId> {
    mailer: Arc<dyn Mailer>,
    directory: Arc<dyn RecoveryDirectory<U>>,
    challenges: Option<Arc<dyn RecoveryChallenges>>,
    options: RecoveryOptions,
}

impl<U: UserId> fmt::Debug for Recovery<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recovery")
            .field("mailer", &self.mailer)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<U: UserId> Recovery<U> {
    /// Recovery through `mailer` for the users of `directory`, with the
    /// default options and challenges in memory (one instance; see
    /// [`challenges`](Self::challenges)).
    pub fn new(mailer: Arc<dyn Mailer>, directory: Arc<dyn RecoveryDirectory<U>>) -> Self {
        Self {
            mailer,
            directory,
            challenges: None,
            options: RecoveryOptions::default(),
        }
    }

    /// Keeps the challenges in `store`: several instances of the app must
    /// share one (`SqliteRecoveryChallenges`, `PgRecoveryChallenges`), or a
    /// code mailed by one instance is unknown to the others.
    #[must_use]
    pub fn challenges(mut self, store: Arc<dyn RecoveryChallenges>) -> Self {
        self.challenges = Some(store);
        self
    }

    /// Sets the limits.
    #[must_use]
    pub fn with_options(mut self, options: RecoveryOptions) -> Self {
        self.options = options;
        self
    }

    /// The limits.
    pub fn options(&self) -> &RecoveryOptions {
        &self.options
    }
}

/// The purpose the code and address hash key is derived for from the
/// sealing key.
pub(crate) const RECOVERY_KEY_LABEL: &str = "passlock recovery codes v1";

/// Recovery as [`Passlock`](crate::Passlock) holds it: the configuration
/// with its challenge store and the key of the code hashes.
pub(crate) struct RecoverySetup<U: UserId> {
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) directory: Arc<dyn RecoveryDirectory<U>>,
    pub(crate) challenges: Arc<dyn RecoveryChallenges>,
    pub(crate) options: RecoveryOptions,
    pub(crate) key: hmac::Key,
}

impl<U: UserId> RecoverySetup<U> {
    /// The setup of `recovery`; `key` hashes codes and addresses (the
    /// sealing key's [`RECOVERY_KEY_LABEL`] subkey).
    pub(crate) fn new(
        recovery: Recovery<U>,
        key: hmac::Key,
        clock: crate::clock::SharedClock,
    ) -> Result<Self, ConfigError> {
        recovery.options.validate()?;
        Ok(Self {
            mailer: recovery.mailer,
            directory: recovery.directory,
            challenges: recovery
                .challenges
                .unwrap_or_else(|| Arc::new(MemoryRecoveryChallenges::new(clock))),
            options: recovery.options,
            key,
        })
    }

    /// The keyed hash of `code` for challenge `id`, hex.
    pub(crate) fn code_hash(&self, id: &ChallengeId, code: &str) -> String {
        let msg = format!("code\0{}\0{}", id.as_str(), code);
        hex(hmac::sign(&self.key, msg.as_bytes()).as_ref())
    }

    /// The keyed hash of an address: the name its counters and challenges
    /// are kept under (the address itself is never stored by passlock).
    pub(crate) fn address_key(&self, email: &EmailAddress) -> String {
        let msg = format!("address\0{}", email.as_str().to_lowercase());
        hex(&hmac::sign(&self.key, msg.as_bytes()).as_ref()[..16])
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A new random code of `digits` decimal digits from the OS CSPRNG
/// (uniform: rejection sampling). `None` if the OS has no randomness.
pub(crate) fn random_code(digits: u8) -> Option<RecoveryCode> {
    use aws_lc_rs::rand::SecureRandom as _;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut code = String::with_capacity(usize::from(digits));
    while code.len() < usize::from(digits) {
        let mut byte = [0u8; 1];
        rng.fill(&mut byte).ok()?;
        // 250 = 25 * 10: bytes above it would bias the digits.
        if byte[0] < 250 {
            code.push(char::from(b'0' + byte[0] % 10));
        }
    }
    Some(RecoveryCode::new(code))
}

// The challenge store moved to `crate::store`; the old paths keep working.
#[doc(no_inline)]
pub use crate::store::{Attempt, MemoryRecoveryChallenges, NewChallenge, RecoveryChallenges};

/// A recovery session: the user who proved their address, allowed to
/// enroll one passkey until `expires_at`. Kept in the session record
/// ([`SessionRecord::recovery`](crate::SessionRecord::recovery)); it is
/// not a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RecoveryGrant<U> {
    /// The user being recovered.
    pub user_id: U,
    /// The verified challenge, taken out of the store at enrollment.
    pub challenge: ChallengeId,
    /// When the recovery session ends (epoch ms).
    pub expires_at: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_digits_of_the_asked_length_and_differ() {
        let a = random_code(8).unwrap();
        let b = random_code(8).unwrap();
        assert_eq!(a.len(), 8);
        assert!(a.expose_secret().bytes().all(|c| c.is_ascii_digit()));
        assert!(!a.ct_eq(&b) || random_code(8).is_some_and(|c| !c.ct_eq(&a)));
        assert_eq!(random_code(12).unwrap().len(), 12);
    }

    #[test]
    fn addresses_are_checked_and_debug_hides_the_local_part() {
        assert!(EmailAddress::parse("alice@example.com").is_some());
        assert_eq!(
            EmailAddress::parse("  alice@example.com ")
                .unwrap()
                .as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a b@example.com",
            "a@b@c",
        ] {
            assert!(EmailAddress::parse(bad).is_none(), "{bad:?}");
        }
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(250))).is_none());
        let dbg = format!("{:?}", EmailAddress::parse("alice@example.com").unwrap());
        assert!(!dbg.contains("alice"), "{dbg}");
    }

    #[test]
    fn options_are_validated() {
        assert!(RecoveryOptions::default().validate().is_ok());
        let o = RecoveryOptions {
            code_digits: 4,
            ..RecoveryOptions::default()
        };
        assert_eq!(o.validate().unwrap_err().field, "recovery.code_digits");
        let o = RecoveryOptions {
            attempts_per_challenge: 0,
            ..RecoveryOptions::default()
        };
        assert_eq!(
            o.validate().unwrap_err().field,
            "recovery.attempts_per_challenge"
        );
    }
}

//! The recovery routes' flows (re-exported in [`crate::flow`]).

use crate::audit::AuditKind;
use crate::config::Passlock;
use crate::error::FlowError;
use crate::flow::{guarded, observed, record_subject, throttle_ceremony};
use crate::id::ChallengeId;
use crate::recovery::{EmailAddress, RecoveryGrant, random_code};
use crate::secret::RecoveryCode;
use crate::state::{Outcome, SessionChange, SessionRecord};
use crate::store::UserId;
use crate::store::{Attempt, NewChallenge};
use crate::throttle::{ClientInfo, Guard, ThrottleKey};

/// Body of `POST {prefix}/recovery/start`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RecoveryStartBody {
    /// The address the user gave.
    pub email: String,
}

/// Body of `POST {prefix}/recovery/verify`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RecoveryVerifyBody {
    /// The challenge id `start` answered.
    pub challenge: String,
    /// The code from the mail.
    pub code: RecoveryCode,
}

/// `202` answer of `POST {prefix}/recovery/start`: the same shape whether
/// or not the address has an account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RecoveryStarted {
    /// The challenge to verify the code against.
    pub challenge: ChallengeId,
    /// When the code expires (epoch ms).
    pub expires_at: i64,
}

/// `200` answer of `POST {prefix}/recovery/verify`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RecoveryVerified {
    /// The user being recovered, as text.
    pub user_id: String,
    /// When the recovery session ends unless a passkey was enrolled
    /// (epoch ms).
    pub expires_at: i64,
}

fn millis(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

/// `POST {prefix}/recovery/start`: stores a challenge for the address and,
/// when the [directory](crate::recovery::RecoveryDirectory) knows it, mails
/// a code in the background. Answers the same way either way (see
/// [`crate::recovery`]). `404` when recovery is off; `400 invalid_email`
/// for something that is not an address; `429 throttled` past the
/// per-client or per-address limit (counted for every address alike).
pub async fn recovery_start<U: UserId>(
    pl: &Passlock<U>,
    body: &RecoveryStartBody,
    client: &ClientInfo,
) -> Result<Outcome<RecoveryStarted, U>, FlowError> {
    let run = async {
        let setup = pl.recovery().ok_or(FlowError::NotFound)?;
        throttle_ceremony(pl, client).await?;
        let email = EmailAddress::parse(&body.email).ok_or(FlowError::InvalidEmail)?;
        let address = setup.address_key(&email);
        if let Some(throttle) = pl.throttle() {
            let key = ThrottleKey::new(
                format!("recovery-request:{address}"),
                setup.options.requests_per_address,
            );
            throttle.try_acquire(&key).await?;
        }
        let user = setup.directory.user_by_email(&email).await?;
        let id = ChallengeId::new(crate::secret::random_token(16))
            .map_err(|_| FlowError::Misconfigured("no randomness available"))?;
        let code = random_code(setup.options.code_digits)
            .ok_or(FlowError::Misconfigured("no randomness available"))?;
        let now = pl.now();
        let expires_at = now.saturating_add(millis(setup.options.code_ttl_secs));
        let challenge = NewChallenge::new(
            id.clone(),
            address,
            user.as_ref().map(ToString::to_string),
            setup.code_hash(&id, code.expose_secret()),
            now,
            expires_at,
            setup.options.attempts_per_challenge,
        );
        setup.challenges.create(&challenge).await?;
        match user {
            Some(user) => {
                record_subject(&user, None);
                // Mail and audit after the answer: their time must not tell
                // an address with an account from one without.
                let pl = pl.clone();
                let mailer = setup.mailer.clone();
                let client = client.address;
                tokio::spawn(async move {
                    pl.emit(AuditKind::RecoveryRequested, user, None, client)
                        .await;
                    if let Err(e) = mailer.send_recovery_code(&email, &code, expires_at).await {
                        tracing::warn!(error = %e, "passlock: the recovery code could not be mailed");
                    }
                });
            }
            None => tracing::debug!("passlock: recovery asked for an address without an account"),
        }
        Ok(Outcome::new(
            RecoveryStarted {
                challenge: id,
                expires_at,
            },
            SessionChange::Unchanged,
        ))
    };
    observed(pl, "recovery_start", Some(client), run).await
}

/// `POST {prefix}/recovery/verify`: checks the code and, when it is the
/// right one, replaces the session by a recovery session (new id, new
/// family) that may enroll one passkey within
/// [`RecoveryOptions::session_secs`](crate::recovery::RecoveryOptions::session_secs).
///
/// A wrong, expired, used or unknown code or challenge is `401
/// invalid_code`; a challenge whose attempts are spent is `429
/// code_attempts_exceeded`; failures also count per client and per
/// address (`429 throttled`). Audited as [`AuditKind::RecoveryUsed`].
pub async fn recovery_verify<U: UserId>(
    pl: &Passlock<U>,
    body: &RecoveryVerifyBody,
    client: &ClientInfo,
) -> Result<Outcome<RecoveryVerified, U>, FlowError> {
    let guard = Guard::new(&pl.policy().throttle, client, None, false);
    let run = guarded(pl, guard, verify_unthrottled(pl, body, client));
    observed(pl, "recovery_verify", Some(client), run).await
}

async fn verify_unthrottled<U: UserId>(
    pl: &Passlock<U>,
    body: &RecoveryVerifyBody,
    client: &ClientInfo,
) -> Result<Outcome<RecoveryVerified, U>, FlowError> {
    let setup = pl.recovery().ok_or(FlowError::NotFound)?;
    let id = ChallengeId::new(body.challenge.as_str()).map_err(|_| FlowError::InvalidCode)?;
    let now = pl.now();
    // The attempt is counted (atomically) before the code is compared.
    let (code_hash, user, address) = match setup.challenges.attempt(&id, now).await? {
        Attempt::Open {
            code_hash,
            user,
            address,
        } => (code_hash, user, address),
        Attempt::Exhausted => return Err(FlowError::CodeAttemptsExceeded),
        _ => return Err(FlowError::InvalidCode),
    };
    let address_key = ThrottleKey::new(
        format!("recovery-failure:{address}"),
        setup.options.failures_per_address,
    );
    if let Some(throttle) = pl.throttle() {
        throttle.try_acquire(&address_key).await?;
    }
    let given = setup.code_hash(&id, body.code.expose_secret());
    let right =
        aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), code_hash.as_bytes())
            .is_ok();
    let grant_until = now.saturating_add(millis(setup.options.session_secs));
    // Single use: of concurrent right codes exactly one marks it used.
    let verified = match (right, user) {
        (true, Some(user)) if setup.challenges.mark_used(&id, now, grant_until).await? => {
            Some(user)
        }
        _ => None,
    };
    if let Some(throttle) = pl.throttle() {
        // A failure keeps its reservation on the address counter.
        if verified.is_some()
            && let Err(e) = throttle.release(&address_key).await
        {
            tracing::warn!(error = %e, "throttle: could not release an attempt");
        }
    }
    let user: U = verified
        .ok_or(FlowError::InvalidCode)?
        .parse()
        .map_err(|_| {
            FlowError::Store(crate::error::StoreError::backend(
                "a recovery challenge's user id does not parse",
            ))
        })?;
    record_subject(&user, None);
    pl.emit(AuditKind::RecoveryUsed, user.clone(), None, client.address)
        .await;
    let grant = RecoveryGrant {
        user_id: user.clone(),
        challenge: id,
        expires_at: grant_until,
    };
    Ok(Outcome::new(
        RecoveryVerified {
            user_id: user.to_string(),
            expires_at: grant_until,
        },
        SessionChange::Set {
            record: SessionRecord::recovering(grant, now),
            renew: true,
        },
    ))
}

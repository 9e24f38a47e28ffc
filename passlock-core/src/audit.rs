//! Observability: what passlock tells the app about what happened.
//!
//! * **Spans**: every flow runs in one `tracing` span named `passlock.{flow}`
//!   (`passlock.login`, `passlock.register`, ...) with the fields `user`,
//!   `authenticator`, `provider` and `client` (filled in as they become
//!   known). Never a secret: codes, id_tokens, session ids, keys and
//!   tickets are not recorded anywhere.
//! * **Events**: an `info` event (target `passlock::audit`) for each
//!   [`AuditKind`], with the same fields and `event` naming the kind.
//! * **The audit hook**: an [`AuditHook`] the app sets with
//!   [`PasslockBuilder::audit`](crate::PasslockBuilder::audit) receives the
//!   same events as typed [`AuditEvent`]s, for example to email a user
//!   when a passkey was added to their account. The default does nothing.
//! * **Counters**: a [`Metrics`] hook set with
//!   [`PasslockBuilder::metrics`](crate::PasslockBuilder::metrics) is told
//!   of every event and every failed flow; the names are in
//!   [`metric_names`]. It maps directly onto the `metrics` crate facade
//!   (see [`Metrics`]); passlock itself depends on no metrics crate.
//!
//! ## When the hook runs, and what a failing hook does
//!
//! The hook is called by the flow once its work is done (the passkey
//! verified, linked or unlinked, the sessions revoked), before the route
//! answers, and is awaited for at most [`AUDIT_HOOK_TIMEOUT`]. Its result
//! never changes the flow's: an error or a timeout is logged at `warn`
//! (target `passlock::audit`) and counted
//! (`passlock_audit_hook_failures_total`), and the sign-in, the new
//! passkey or the revocation stands. An app that must not lose an event
//! (an email it owes the user) should queue it durably inside the hook and
//! send it from there.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::clock::UnixMillis;
use crate::error::BoxError;
use crate::id::AuthenticatorId;

/// The longest the flows wait for the [`AuditHook`] of one event.
pub const AUDIT_HOOK_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a user's sessions were revoked ([`AuditKind::SessionsRevoked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationReason {
    /// A passkey was removed: the sessions signed in with it ended.
    PasskeyRemoved,
    /// The user ended their other sessions
    /// (`POST {prefix}/logout/everywhere`).
    LogoutEverywhere,
    /// The app ended every session of the user (it disabled or deleted
    /// them: [`Passlock::end_sessions_of`](crate::Passlock::end_sessions_of)).
    UserDisabled,
}

impl RevocationReason {
    /// The reason as a short name (`passkey_removed`, `logout_everywhere`,
    /// `user_disabled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasskeyRemoved => "passkey_removed",
            Self::LogoutEverywhere => "logout_everywhere",
            Self::UserDisabled => "user_disabled",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditKind {
    /// A new user signed up with a passkey (`POST {prefix}/register`
    /// without a session).
    SignedUp,
    /// A passkey login (`POST {prefix}/login`).
    LoggedIn,
    /// A passkey step-up in a signed-in (or MFA pending) session
    /// (`POST {prefix}/step-up`).
    SteppedUp,
    /// The app recorded its own first factor
    /// ([`flow::first_factor`](crate::flow::first_factor)).
    FirstFactor {
        /// The factor's name as the app gave it (`"password"`).
        method: String,
        /// Whether a passkey step-up must follow.
        second_factor_required: bool,
    },
    /// A signed-in user added a passkey to their account.
    PasskeyAdded,
    /// A signed-in user removed one of their passkeys.
    PasskeyRemoved,
    /// A signed-in user renamed one of their passkeys.
    PasskeyRenamed,
    /// Sessions of the user were ended.
    SessionsRevoked {
        /// Why.
        reason: RevocationReason,
    },
    /// A recovery code was requested for the user's address
    /// (`POST {prefix}/recovery/start`; never emitted for an address
    /// without an account). Tell the user: if they did not ask, someone
    /// knows their address.
    RecoveryRequested,
    /// A recovery code of the user was verified
    /// (`POST {prefix}/recovery/verify`): a recovery session may now enroll
    /// a passkey for them.
    RecoveryUsed,
    /// A passkey was enrolled through recovery (`POST {prefix}/register`
    /// from a recovery session), which then became a full session.
    PasskeyEnrolledByRecovery,
}

impl AuditKind {
    /// The kind as a short name, as in the `event` field of the log and
    /// the `event` label of `passlock_events_total`: `sign_up`, `login`,
    /// `step_up`, `first_factor`, `passkey_added`, `passkey_removed`,
    /// `passkey_renamed`, `sessions_revoked`, `recovery_requested`,
    /// `recovery_used`, `passkey_enrolled_by_recovery`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SignedUp => "sign_up",
            Self::LoggedIn => "login",
            Self::SteppedUp => "step_up",
            Self::FirstFactor { .. } => "first_factor",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
            Self::PasskeyRenamed => "passkey_renamed",
            Self::SessionsRevoked { .. } => "sessions_revoked",
            Self::RecoveryRequested => "recovery_requested",
            Self::RecoveryUsed => "recovery_used",
            Self::PasskeyEnrolledByRecovery => "passkey_enrolled_by_recovery",
        }
    }
}

/// One audited event: what happened, to whom, with which passkey, through
/// which provider, from which client address and when. It holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent<U> {
    /// What happened.
    pub kind: AuditKind,
    /// The app's user id.
    pub user: U,
    /// The passkey involved: the one verified (sign-up, login, step-up),
    /// added or removed; for revoked sessions, the removed passkey. `None`
    /// for the app's own first factor and for sessions ended by user.
    pub authenticator_id: Option<AuthenticatorId>,
    /// The provider's name (`"embedded"`, `"passlock"`, `"passage"`).
    pub provider: &'static str,
    /// The client's address as passlock throttles it (`None` when unknown,
    /// and for an app's own call outside a request).
    pub client: Option<IpAddr>,
    /// When (epoch ms, from the `Passlock`'s clock).
    pub at: UnixMillis,
}

/// Receives every [`AuditEvent`]; set with
/// [`PasslockBuilder::audit`](crate::PasslockBuilder::audit). The default
/// does nothing. See the [module](self) for when it runs and why its
/// failure never undoes a sign-in.
///
/// ```
/// use passlock_core::audit::{AuditEvent, AuditHook, AuditKind};
/// use passlock_core::error::BoxError;
///
/// #[derive(Debug)]
/// struct Mailer;
///
/// #[async_trait::async_trait]
/// impl AuditHook<i64> for Mailer {
///     async fn record(&self, event: &AuditEvent<i64>) -> Result<(), BoxError> {
///         if event.kind == AuditKind::PasskeyAdded {
///             // queue "a passkey was added to your account" for event.user
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait AuditHook<U>: Send + Sync + fmt::Debug + 'static {
    /// Called once per event, in the order the flows complete them.
    async fn record(&self, event: &AuditEvent<U>) -> Result<(), BoxError>;
}

/// The default hook: does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAudit;

#[async_trait::async_trait]
impl<U: Send + Sync + 'static> AuditHook<U> for NoAudit {
    async fn record(&self, _: &AuditEvent<U>) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The counter names passlock reports to a [`Metrics`] hook (all
/// monotonically increasing counters).
pub mod metric_names {
    /// Every audited event, label `event` ([`AuditKind::name`](super::AuditKind::name)).
    pub const EVENTS: &str = "passlock_events_total";
    /// Every failed flow, labels `flow` (`register`, `login`, `step_up`,
    /// `first_factor`, `unlink`, `logout`, `logout_everywhere`,
    /// `end_sessions`) and `error` (the error code of the answer, e.g.
    /// `invalid_proof`, `throttled`).
    pub const FAILURES: &str = "passlock_flow_failures_total";
    /// Audit hook calls that failed or timed out.
    pub const AUDIT_HOOK_FAILURES: &str = "passlock_audit_hook_failures_total";
}

/// Counters; set with [`PasslockBuilder::metrics`](crate::PasslockBuilder::metrics).
/// Called synchronously on the request's task: keep it cheap (an atomic
/// add). The counter names and labels are in [`metric_names`].
///
/// With the `metrics` crate in the app, the whole implementation is:
///
/// ```ignore
/// #[derive(Debug)]
/// struct Facade;
///
/// impl passlock_core::audit::Metrics for Facade {
///     fn increment(&self, name: &'static str, labels: &[(&'static str, &'static str)]) {
///         let labels: Vec<metrics::Label> =
///             labels.iter().map(|(k, v)| metrics::Label::new(*k, *v)).collect();
///         metrics::counter!(name, labels).increment(1);
///     }
/// }
/// ```
pub trait Metrics: Send + Sync + fmt::Debug + 'static {
    /// Adds one to the counter `name` with these labels.
    fn increment(&self, name: &'static str, labels: &[(&'static str, &'static str)]);
}

/// The default counters: none.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn increment(&self, _: &'static str, _: &[(&'static str, &'static str)]) {}
}

/// Logs `event` at info (target `passlock::audit`), counts it, and hands
/// it to `hook`, bounded by [`AUDIT_HOOK_TIMEOUT`]; the hook's failure is
/// logged and counted, never returned.
pub(crate) async fn emit<U: crate::store::UserId>(
    hook: &dyn AuditHook<U>,
    metrics: &dyn Metrics,
    event: AuditEvent<U>,
) {
    let name = event.kind.name();
    let aid = event.authenticator_id.as_ref().map(AuthenticatorId::as_str);
    let client = event.client.map(|c| c.to_string());
    match &event.kind {
        AuditKind::FirstFactor {
            method,
            second_factor_required,
        } => tracing::info!(
            target: "passlock::audit",
            event = name,
            user = %event.user,
            provider = event.provider,
            client = client.as_deref(),
            method = method.as_str(),
            second_factor_required,
            "passlock: {name}"
        ),
        AuditKind::SessionsRevoked { reason } => tracing::info!(
            target: "passlock::audit",
            event = name,
            user = %event.user,
            authenticator = aid,
            provider = event.provider,
            client = client.as_deref(),
            reason = reason.as_str(),
            "passlock: {name}"
        ),
        _ => tracing::info!(
            target: "passlock::audit",
            event = name,
            user = %event.user,
            authenticator = aid,
            provider = event.provider,
            client = client.as_deref(),
            "passlock: {name}"
        ),
    }
    metrics.increment(metric_names::EVENTS, &[("event", name)]);
    let failure = match tokio::time::timeout(AUDIT_HOOK_TIMEOUT, hook.record(&event)).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {AUDIT_HOOK_TIMEOUT:?}"),
    };
    tracing::warn!(
        target: "passlock::audit",
        event = name,
        error = %failure,
        "passlock: the audit hook failed; the {name} stands"
    );
    metrics.increment(metric_names::AUDIT_HOOK_FAILURES, &[("event", name)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable() {
        assert_eq!(AuditKind::SignedUp.name(), "sign_up");
        assert_eq!(
            AuditKind::SessionsRevoked {
                reason: RevocationReason::LogoutEverywhere
            }
            .name(),
            "sessions_revoked"
        );
        assert_eq!(RevocationReason::UserDisabled.as_str(), "user_disabled");
    }
}

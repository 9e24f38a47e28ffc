//! What a session holds ([`AuthState`], [`SessionRecord`]) and the freshness
//! checks on it.

use serde::{Deserialize, Serialize};

use crate::clock::UnixMillis;
use crate::error::FlowError;
use crate::id::{AuthenticatorId, UserHandle};
use crate::recovery::RecoveryGrant;
use crate::revocation::SessionFamily;

/// The former name of [`AuthMethod`] (it clashed with HTTP verbs).
#[deprecated(since = "0.2.0", note = "renamed to AuthMethod")]
pub type Method = AuthMethod;

/// An authentication method recorded in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "name")]
#[non_exhaustive]
pub enum AuthMethod {
    /// A passkey ceremony.
    Passkey,
    /// The app's own factor (for example `"password"`), recorded by the app.
    App(String),
}

/// The signed-in state of one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthState<U> {
    /// The app's user id.
    pub user_id: U,
    /// The passkey last used in this session, if any.
    pub authenticator_id: Option<AuthenticatorId>,
    /// When the session was signed in (epoch ms).
    pub authenticated_at: UnixMillis,
    /// When a passkey was last verified in this session (epoch ms).
    pub verified_at: Option<UnixMillis>,
    /// The methods used, in order.
    pub amr: Vec<AuthMethod>,
    /// Set when the app's first factor was recorded for a user who must
    /// still verify a passkey (MFA pending; see [`AuthState::is_partial`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub second_factor_pending: bool,
    /// The provider-side user id of the passkeys this session proved, kept so
    /// that a passkey added later is created for the same provider user (one
    /// Passlock `userId` / Passage external id per account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<UserHandle>,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

impl<U> AuthState<U> {
    /// A state right after a passkey login or sign-up.
    pub fn passkey(user_id: U, authenticator_id: AuthenticatorId, now: UnixMillis) -> Self {
        Self {
            user_id,
            authenticator_id: Some(authenticator_id),
            authenticated_at: now,
            verified_at: Some(now),
            amr: vec![AuthMethod::Passkey],
            second_factor_pending: false,
            user_handle: None,
        }
    }

    /// A partial state after the app's own first factor (MFA pending): only
    /// a passkey step-up by the same user completes it. Apps normally let
    /// [`flow::first_factor`](crate::flow::first_factor) decide between this
    /// and [`AuthState::app_factor`].
    pub fn first_factor(user_id: U, method: impl Into<String>, now: UnixMillis) -> Self {
        Self {
            second_factor_pending: true,
            ..Self::app_factor(user_id, method, now)
        }
    }

    /// A complete sign-in by the app's own factor alone (no passkey in it,
    /// so never a [`has_passkey`](Self::has_passkey) state).
    pub fn app_factor(user_id: U, method: impl Into<String>, now: UnixMillis) -> Self {
        Self {
            user_id,
            authenticator_id: None,
            authenticated_at: now,
            verified_at: None,
            amr: vec![AuthMethod::App(method.into())],
            second_factor_pending: false,
            user_handle: None,
        }
    }

    /// Whether the session waits for a passkey as a second factor: a first
    /// factor is recorded and only a step-up by the same user completes it.
    pub fn is_partial(&self) -> bool {
        self.second_factor_pending && !self.has_passkey()
    }

    /// Whether a passkey was used in this session (a full passkey session).
    pub fn has_passkey(&self) -> bool {
        self.amr.contains(&AuthMethod::Passkey)
    }

    /// Ok when a passkey was verified within `max_age_secs` of `now`.
    pub fn require_fresh(&self, now: UnixMillis, max_age_secs: u64) -> Result<(), FlowError> {
        let window = i64::try_from(max_age_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        match self.verified_at {
            Some(at)
                if self.has_passkey() && now.saturating_sub(at) <= window && at <= now + 5_000 =>
            {
                Ok(())
            }
            _ => Err(FlowError::StepUpRequired {
                max_age: max_age_secs,
            }),
        }
    }

    /// Records the provider-side user id of the passkey just proved, unless
    /// the session already has one.
    #[must_use]
    pub fn with_user_handle(mut self, handle: UserHandle) -> Self {
        self.user_handle.get_or_insert(handle);
        self
    }

    /// The provider-side user id to authorize new ceremonies for: the one
    /// this session proved, else one derived from the app's user id.
    pub fn provider_handle(&self) -> UserHandle
    where
        U: std::fmt::Display,
    {
        match &self.user_handle {
            Some(h) => h.clone(),
            None => {
                UserHandle::new(self.user_id.to_string()).unwrap_or_else(|_| UserHandle::random())
            }
        }
    }

    /// Records a passkey verification now.
    pub fn verified(mut self, authenticator_id: AuthenticatorId, now: UnixMillis) -> Self {
        self.authenticator_id = Some(authenticator_id);
        self.verified_at = Some(now);
        self.second_factor_pending = false;
        if !self.has_passkey() {
            self.amr.push(AuthMethod::Passkey);
        }
        self
    }
}

/// A registration authorized for this browser and not yet completed: in
/// the session when a signed-in user adds a passkey, in the sealed
/// [sign-up ticket](crate::SealingKey) for an anonymous sign-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingRegistration<U> {
    /// The provider-side user id reserved for the ceremony.
    pub user_handle: UserHandle,
    /// The username the passkey is created under.
    pub username: String,
    /// `Some` when a signed-in user adds a passkey; `None` for a sign-up.
    pub for_user: Option<U>,
    /// When the authorization expires (epoch ms).
    pub expires_at: UnixMillis,
}

/// Everything passlock keeps in one session, under one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "U: serde::de::DeserializeOwned"))]
pub struct SessionRecord<U> {
    /// The signed-in state.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthState<U>>,
    /// A pending registration.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingRegistration<U>>,
    /// The sign-in this session belongs to: set by every new sign-in
    /// (passkey login, sign-up, the app's first factor) and kept by what
    /// follows (step-up, new passkey, id cycles); a logout revokes it (see
    /// [`crate::revocation`]). A signed-in record without one (written
    /// before families existed) reads as signed out.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub family: Option<SessionFamily>,
    /// When this session's family started (epoch ms): a revocation of the
    /// user or of the session's passkey at or after this instant ends it
    /// (see [`crate::revocation`]). Set with the family; a record without
    /// one (written before this field existed) starts at its sign-in,
    /// [`AuthState::authenticated_at`].
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub since: Option<UnixMillis>,
    /// When the session was last used (epoch ms), for the idle lifetime
    /// ([`Policy::idle_lifetime_secs`](crate::Policy::idle_lifetime_secs));
    /// `None` until first written back, which counts from [`Self::since`].
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub active_at: Option<UnixMillis>,
    /// A recovery session (see [`crate::recovery`]): the user proved their
    /// address with a one-time code and may enroll one passkey until it
    /// expires. Not a sign-in: [`Self::auth`] stays `None`, so no extractor
    /// accepts it.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryGrant<U>>,
}

fn none<T>() -> Option<T> {
    None
}

impl<U> Default for SessionRecord<U> {
    fn default() -> Self {
        Self {
            auth: None,
            pending: None,
            family: None,
            since: None,
            active_at: None,
            recovery: None,
        }
    }
}

impl<U> SessionRecord<U> {
    /// The session key adapters store the record under.
    pub const KEY: &'static str = "passlock";

    /// A record for a new sign-in: `auth`, no pending registration, and a
    /// new [`SessionFamily`].
    pub fn signed_in(auth: AuthState<U>) -> Self {
        let since = auth.authenticated_at;
        Self {
            auth: Some(auth),
            pending: None,
            family: Some(SessionFamily::random()),
            since: Some(since),
            active_at: None,
            recovery: None,
        }
    }

    /// A record for a new recovery session (see [`crate::recovery`]): no
    /// sign-in, `grant`, and a new [`SessionFamily`] starting at `now` (a
    /// logout or [`end_sessions_of`](crate::Passlock::end_sessions_of)
    /// ends it like a sign-in).
    pub fn recovering(grant: RecoveryGrant<U>, now: UnixMillis) -> Self {
        Self {
            auth: None,
            pending: None,
            family: Some(SessionFamily::random()),
            since: Some(now),
            active_at: None,
            recovery: Some(grant),
        }
    }

    /// The same sign-in under a new [`SessionFamily`] starting at `since`
    /// (which must be later than any revocation it is to survive): what a
    /// session keeps when it ends every other session of its user.
    #[must_use]
    pub fn refamilied(mut self, since: UnixMillis) -> Self {
        self.family = Some(SessionFamily::random());
        self.since = Some(since);
        self.active_at = None;
        self
    }

    /// When this session's family started: [`Self::since`], else the
    /// sign-in time of a record written before it existed.
    pub fn started_at(&self) -> Option<UnixMillis> {
        self.since
            .or_else(|| self.auth.as_ref().map(|a| a.authenticated_at))
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.auth.is_none() && self.pending.is_none() && self.recovery.is_none()
    }

    /// The record as read from a session under [`Self::KEY`]: none is an
    /// empty record, and so is one that no longer deserializes (for example
    /// after the app's user id type changed), which is logged. Both adapters
    /// read the record this way.
    pub fn or_empty<E: std::fmt::Display>(read: Result<Option<Self>, E>) -> Self {
        read.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable passlock session record; treated as empty");
            None
        })
        .unwrap_or_default()
    }
}

/// What a flow asks the adapter to do with the session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
// One per request, moved once into the adapter: boxing the record would
// only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum SessionChange<U> {
    /// Leave the session as it is.
    Unchanged,
    /// Store `record`; when `renew` is set, cycle the session id first (a
    /// privilege change: login, user switch, step-up, MFA completion).
    Set {
        /// The new record.
        record: SessionRecord<U>,
        /// Cycle the session id.
        renew: bool,
    },
    /// Delete the session server-side (logout).
    Purge,
}

/// A flow's result: a value for the response and a session change.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outcome<T, U> {
    /// What the route answers.
    pub value: T,
    /// What happens to the session.
    pub session: SessionChange<U>,
    /// A `Set-Cookie` header value the adapter adds to the response (the
    /// [sign-up ticket](crate::SealingKey), set or removed).
    pub set_cookie: Option<String>,
}

impl<T, U> Outcome<T, U> {
    /// An outcome.
    pub fn new(value: T, session: SessionChange<U>) -> Self {
        Self {
            value,
            session,
            set_cookie: None,
        }
    }

    /// The outcome with a `Set-Cookie` header for the response.
    pub fn with_cookie(mut self, set_cookie: String) -> Self {
        self.set_cookie = Some(set_cookie);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aid() -> AuthenticatorId {
        AuthenticatorId::new("a1").unwrap()
    }

    #[test]
    fn freshness_window() {
        let s = AuthState::passkey(7_i64, aid(), 1_000_000);
        assert!(s.require_fresh(1_000_000 + 60_000, 60).is_ok());
        assert!(matches!(
            s.require_fresh(1_000_000 + 60_001, 60),
            Err(FlowError::StepUpRequired { max_age: 60 })
        ));
    }

    #[test]
    fn first_factor_is_never_fresh() {
        let s = AuthState::first_factor(7_i64, "password", 1_000);
        assert!(!s.has_passkey());
        assert!(s.is_partial());
        assert!(s.require_fresh(1_000, 60).is_err());
        let s = s.verified(aid(), 2_000);
        assert!(s.has_passkey());
        assert!(!s.is_partial());
        assert!(s.require_fresh(2_000, 60).is_ok());
    }

    #[test]
    fn app_factor_is_complete_but_not_passkey() {
        let s = AuthState::app_factor(7_i64, "password", 1_000);
        assert!(!s.is_partial());
        assert!(!s.has_passkey());
        assert!(s.require_fresh(1_000, 60).is_err());
        // An old record without the field reads as not pending.
        let json = r#"{"user_id":7,"authenticator_id":null,"authenticated_at":1,"verified_at":null,"amr":[{"type":"app","name":"password"}]}"#;
        let back: AuthState<i64> = serde_json::from_str(json).unwrap();
        assert_eq!(back, AuthState::app_factor(7, "password", 1));
        let partial =
            serde_json::to_string(&AuthState::first_factor(7_i64, "password", 1)).unwrap();
        assert!(partial.contains("\"second_factor_pending\":true"));
    }

    #[test]
    fn record_round_trips() {
        let r = SessionRecord::signed_in(AuthState::passkey(7_i64, aid(), 5));
        let json = serde_json::to_string(&r).unwrap();
        let back: SessionRecord<i64> = serde_json::from_str(&json).unwrap();
        assert_eq!(r, back);
        assert!(back.family.is_some());
        // A record written before families existed still reads.
        let old: SessionRecord<i64> = serde_json::from_str(r#"{"auth":null}"#).unwrap();
        assert_eq!(old, SessionRecord::default());
    }

    #[test]
    fn a_verification_dated_more_than_five_seconds_ahead_is_not_fresh() {
        // Up to 5 s of clock skew between instances is tolerated.
        let s = AuthState::passkey(7_i64, aid(), 1_005_000);
        assert!(s.require_fresh(1_000_000, 60).is_ok());
        let s = AuthState::passkey(7_i64, aid(), 1_005_001);
        assert!(matches!(
            s.require_fresh(1_000_000, 60),
            Err(FlowError::StepUpRequired { max_age: 60 })
        ));
    }

    #[test]
    fn a_record_is_empty_only_when_it_holds_nothing() {
        assert!(SessionRecord::<i64>::default().is_empty());
        assert!(!SessionRecord::signed_in(AuthState::passkey(7_i64, aid(), 5)).is_empty());
        let pending = SessionRecord::<i64> {
            pending: Some(PendingRegistration {
                user_handle: UserHandle::random(),
                username: "ada".into(),
                for_user: None,
                expires_at: 10,
            }),
            ..SessionRecord::default()
        };
        assert!(!pending.is_empty());
    }
}

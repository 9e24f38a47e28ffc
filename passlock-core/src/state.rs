//! What a session holds ([`AuthState`], [`SessionRecord`]) and the freshness
//! checks on it.

use serde::{Deserialize, Serialize};

use crate::clock::UnixMillis;
use crate::error::FlowError;
use crate::id::{AuthenticatorId, UserHandle};

/// An authentication method recorded in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "name")]
#[non_exhaustive]
pub enum Method {
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
    pub amr: Vec<Method>,
}

impl<U> AuthState<U> {
    /// A state right after a passkey login or sign-up.
    pub fn passkey(user_id: U, authenticator_id: AuthenticatorId, now: UnixMillis) -> Self {
        Self {
            user_id,
            authenticator_id: Some(authenticator_id),
            authenticated_at: now,
            verified_at: Some(now),
            amr: vec![Method::Passkey],
        }
    }

    /// A partial state after the app's own first factor (MFA pending).
    pub fn first_factor(user_id: U, method: impl Into<String>, now: UnixMillis) -> Self {
        Self {
            user_id,
            authenticator_id: None,
            authenticated_at: now,
            verified_at: None,
            amr: vec![Method::App(method.into())],
        }
    }

    /// Whether a passkey was used in this session (a full passkey session).
    pub fn has_passkey(&self) -> bool {
        self.amr.contains(&Method::Passkey)
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

    /// Records a passkey verification now.
    pub fn verified(mut self, authenticator_id: AuthenticatorId, now: UnixMillis) -> Self {
        self.authenticator_id = Some(authenticator_id);
        self.verified_at = Some(now);
        if !self.has_passkey() {
            self.amr.push(Method::Passkey);
        }
        self
    }
}

/// A registration authorized in this session and not yet completed.
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
}

fn none<T>() -> Option<T> {
    None
}

impl<U> Default for SessionRecord<U> {
    fn default() -> Self {
        Self {
            auth: None,
            pending: None,
        }
    }
}

impl<U> SessionRecord<U> {
    /// The session key adapters store the record under.
    pub const KEY: &'static str = "passlock";

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.auth.is_none() && self.pending.is_none()
    }
}

/// What a flow asks the adapter to do with the session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
}

impl<T, U> Outcome<T, U> {
    /// An outcome.
    pub fn new(value: T, session: SessionChange<U>) -> Self {
        Self { value, session }
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
        assert!(s.require_fresh(1_000, 60).is_err());
        let s = s.verified(aid(), 2_000);
        assert!(s.has_passkey());
        assert!(s.require_fresh(2_000, 60).is_ok());
    }

    #[test]
    fn record_round_trips() {
        let r = SessionRecord {
            auth: Some(AuthState::passkey(7_i64, aid(), 5)),
            pending: None,
        };
        let json = serde_json::to_string(&r).unwrap();
        let back: SessionRecord<i64> = serde_json::from_str(&json).unwrap();
        assert_eq!(r, back);
    }
}

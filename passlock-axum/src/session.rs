//! Reading the [`SessionRecord`] from a tower-sessions [`Session`] and
//! applying a [`SessionChange`] to it.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use passlock_core::FirstFactor;
use passlock_core::adapter::ClientInfo;
use passlock_core::adapter::flow;
use passlock_core::{FlowError, Passlock, SessionChange, SessionRecord, UserId};
use serde_json::Value;
use tower_sessions::Session;
use tower_sessions::session::Error as SessionError;

use crate::rejection::PasslockRejection;

const NO_SESSION_LAYER: &str = "no session layer of tower-sessions 0.14: add \
     passlock_axum::tower_sessions::SessionManagerLayer around the passlock routes (a \
     SessionManagerLayer of another tower-sessions version is invisible to passlock)";

/// The session of a request with the passlock record loaded from it.
///
/// The record is checked as it is loaded
/// ([`flow::validate_session`](passlock_core::adapter::flow::validate_session)): a
/// session whose sign-in was logged out, or is older than the absolute
/// session lifetime, reads as empty, even if a request in flight wrote it
/// back after the logout. The [`Passlock`] is found in the router state
/// through [`FromRef`].
///
/// Every store failure is [`FlowError::SessionUnavailable`] (a JSON `503`);
/// a missing `SessionManagerLayer` is [`FlowError::Misconfigured`] (a JSON
/// `500`). A record that no longer deserializes (for example after the
/// app's user id type changed) is treated as empty and logged.
///
/// Apps use it for MFA: after their own first factor succeeded, they
/// record it; the policy decides whether a passkey step-up must follow:
///
/// ```
/// use passlock_axum::{PasslockRejection, PasslockSession};
/// use passlock_axum::passlock_core::Passlock;
///
/// async fn password_ok(
///     passlock: Passlock<i64>,
///     session: PasslockSession<i64>,
///     user: i64,
/// ) -> Result<String, PasslockRejection> {
///     let recorded = session.record_first_factor(&passlock, user, "password").await?;
///     Ok(match recorded.second_factor_required {
///         true => "verify with your passkey".to_owned(),
///         false => "signed in".to_owned(),
///     })
/// }
/// ```
#[derive(Clone)]
pub struct PasslockSession<U> {
    session: Session,
    record: SessionRecord<U>,
    client: ClientInfo,
}

/// Prints the record, never the session (its id is the cookie's secret).
impl<U: std::fmt::Debug> std::fmt::Debug for PasslockSession<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasslockSession")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: SessionError) -> FlowError {
    FlowError::SessionUnavailable(Box::new(e))
}

impl<U: UserId> PasslockSession<U> {
    /// Loads the record of `session` and checks it against `passlock`'s
    /// revocations and session lifetime.
    ///
    /// The record is kept as one compact JSON string value (as actix-session
    /// keeps every value): loading a session then clones one string instead
    /// of a tree of JSON values. A record stored as a JSON object (passlock
    /// 0.1 before this change) still reads.
    ///
    /// With an idle lifetime, a record whose last use is due to move on is
    /// written back into the session (saved with the response, same id).
    pub async fn load(session: Session, passlock: &Passlock<U>) -> Result<Self, FlowError> {
        let parsed = match session.get_value(SessionRecord::<U>::KEY).await {
            Ok(None) => Ok(SessionRecord::default()),
            Ok(Some(Value::String(json))) => serde_json::from_str(&json),
            Ok(Some(value)) => serde_json::from_value(value),
            Err(e) => return Err(unavailable(e)),
        };
        let record = parsed.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable passlock session record; treated as empty");
            SessionRecord::default()
        });
        let checked = flow::check_session(passlock, record).await?;
        if checked.write_back {
            let json = serde_json::to_string(&checked.record)
                .map_err(|e| FlowError::SessionUnavailable(Box::new(e)))?;
            session
                .insert_value(SessionRecord::<U>::KEY, Value::String(json))
                .await
                .map_err(unavailable)?;
        }
        Ok(Self {
            session,
            record: checked.record,
            client: ClientInfo::default(),
        })
    }

    /// The session with the client it came from, for the audit events of
    /// [`record_first_factor`](Self::record_first_factor) and the routes.
    #[must_use]
    pub fn with_client(mut self, client: ClientInfo) -> Self {
        self.client = client;
        self
    }

    /// The client of the request (its address unknown when the session
    /// was loaded without one).
    pub fn client(&self) -> &ClientInfo {
        &self.client
    }

    /// The record (empty when the session holds none).
    pub fn record(&self) -> &SessionRecord<U> {
        &self.record
    }

    /// The record, by value.
    pub fn into_record(self) -> SessionRecord<U> {
        self.record
    }

    /// Records the app's own first factor (e.g. `"password"`) for `user`,
    /// already verified by the app, through
    /// [`flow::first_factor`](passlock_core::adapter::flow::first_factor): a partial
    /// state when the user must add a passkey, else a complete sign-in;
    /// the session id is cycled either way.
    pub async fn record_first_factor(
        &self,
        passlock: &Passlock<U>,
        user: U,
        method: &str,
    ) -> Result<FirstFactor, FlowError> {
        let outcome =
            flow::first_factor(passlock, &self.record, user, method, &self.client).await?;
        self.apply(outcome.session).await?;
        Ok(outcome.value)
    }

    /// Logs out through [`flow::logout`](passlock_core::adapter::flow::logout): the
    /// sign-in is revoked first, then the session is deleted. A revocation
    /// store failure is a `503` and leaves the session as it was.
    pub async fn logout(&self, passlock: &Passlock<U>) -> Result<(), FlowError> {
        let outcome = flow::logout(passlock, &self.record).await?;
        self.apply(outcome.session).await
    }

    /// Ends every other session of the signed-in user through
    /// [`flow::logout_everywhere`](passlock_core::adapter::flow::logout_everywhere)
    /// and keeps this one under a new id.
    pub async fn logout_everywhere(&self, passlock: &Passlock<U>) -> Result<(), FlowError> {
        let outcome = flow::logout_everywhere(passlock, &self.record, &self.client).await?;
        self.apply(outcome.session).await
    }

    /// Applies a flow's session change and saves it before the response is
    /// written, so that a store failure is a `503` and nothing is issued:
    /// `Set { renew: true }` cycles the session id first (no fixation),
    /// `Purge` deletes the session server-side.
    pub async fn apply(&self, change: SessionChange<U>) -> Result<(), FlowError> {
        match change {
            SessionChange::Unchanged => Ok(()),
            SessionChange::Set { record, renew } => {
                if renew {
                    self.session.cycle_id().await.map_err(unavailable)?;
                }
                let json = serde_json::to_string(&record)
                    .map_err(|e| FlowError::SessionUnavailable(Box::new(e)))?;
                self.session
                    .insert_value(SessionRecord::<U>::KEY, Value::String(json))
                    .await
                    .map_err(unavailable)?;
                self.session.save().await.map_err(unavailable)
            }
            SessionChange::Purge => self.session.flush().await.map_err(unavailable),
            _ => Err(FlowError::Misconfigured("unknown session change")),
        }
    }
}

/// The client of a request as passlock throttles and audits it: the peer
/// from `ConnectInfo` (serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`) or the trusted
/// proxy header.
pub(crate) fn client_of<U: UserId>(parts: &Parts, pl: &Passlock<U>) -> ClientInfo {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    pl.client_info(peer, header)
}

/// The tower-sessions [`Session`] of a request, or a JSON `500` hint.
pub(crate) fn session_of(parts: &Parts) -> Result<Session, FlowError> {
    parts
        .extensions
        .get::<Session>()
        .cloned()
        .ok_or(FlowError::Misconfigured(NO_SESSION_LAYER))
}

/// The checked record of the request's session, without the client and
/// the session handle: what the user extractors keep (the same checks,
/// the same write-back as [`PasslockSession::load`]).
pub(crate) async fn record_of<U: UserId>(
    parts: &Parts,
    passlock: &Passlock<U>,
) -> Result<SessionRecord<U>, FlowError> {
    Ok(PasslockSession::load(session_of(parts)?, passlock)
        .await?
        .into_record())
}

impl<S, U> FromRequestParts<S> for PasslockSession<U>
where
    S: Send + Sync,
    U: UserId,
    Passlock<U>: FromRef<S>,
{
    type Rejection = PasslockRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let passlock = Passlock::<U>::from_ref(state);
        let client = client_of(parts, &passlock);
        Ok(Self::load(session_of(parts)?, &passlock)
            .await?
            .with_client(client))
    }
}

//! actix-session glue: the [`PasslockSessions`] middleware (actix-session's
//! `SessionMiddleware` whose store failures become JSON `503`s), reading the
//! [`SessionRecord`] and applying a [`SessionChange`].

use std::fmt;

use actix_session::storage::{SaveError, SessionStore, UpdateError};
use actix_session::{Session, SessionExt as _, SessionMiddleware};
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::error::InternalError;
use actix_web::{Error, FromRequest, HttpMessage as _, HttpRequest};
use futures_util::future::LocalBoxFuture;
use passlock_core::FirstFactor;
use passlock_core::adapter::ClientInfo;
use passlock_core::adapter::flow;
use passlock_core::{FlowError, Passlock, SessionChange, SessionRecord, UserId};

use crate::error::PasslockError;
use crate::extract::passlock_ref;

const NO_SESSIONS: &str = "no session middleware: wrap the app in passlock_actix::PasslockSessions";

/// Marks a request that went through [`PasslockSessions`].
#[derive(Debug, Clone, Copy)]
struct SessionsMounted;

/// actix-session's [`SessionMiddleware`] with two additions the passlock
/// routes and extractors rely on: a session store failure (load, save,
/// renew, purge) becomes a JSON `503 session_unavailable` with no cookie
/// instead of actix-session's empty `500`, and the extractors can tell a
/// missing middleware (a JSON `500 misconfigured`) from an empty session.
///
/// Use a server-side store: [`RedisSessionStore`](actix_session::storage::RedisSessionStore)
/// or this crate's `SqlSessionStore`. actix-session's cookie-only store keeps
/// the whole session in the browser, so logout cannot revoke it: do not use
/// it for passkey sessions.
///
/// ```no_run
/// # async fn demo(passlock: passlock_actix::passlock_core::Passlock<i64>) -> Result<(), Box<dyn std::error::Error>> {
/// use actix_session::storage::RedisSessionStore;
/// use actix_web::{App, cookie::Key, web};
/// use passlock_actix::PasslockSessions;
///
/// let store = RedisSessionStore::new("redis://127.0.0.1:6379").await?;
/// let key = Key::generate(); // load a fixed key in production
/// let app = App::new()
///     .app_data(web::Data::new(passlock.clone()))
///     .service(passlock_actix::scope(passlock.clone()))
///     .wrap(PasslockSessions::new(store, key, &passlock));
/// # let _ = app; Ok(()) }
/// ```
pub struct PasslockSessions<St: SessionStore> {
    inner: SessionMiddleware<St>,
}

impl<St: SessionStore + 'static> PasslockSessions<St> {
    /// Sessions in `store` with cookies signed and encrypted by `key`:
    /// `HttpOnly`, `SameSite=Lax`, and `Secure` unless every allowed origin
    /// of `passlock` is `http://localhost`.
    pub fn new<U: UserId>(store: St, key: Key, passlock: &Passlock<U>) -> Self {
        Self::from_middleware(
            SessionMiddleware::builder(store, key)
                .cookie_secure(passlock.secure_cookies())
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .build(),
        )
    }

    /// Wraps a `SessionMiddleware` configured by the app (keep cookies
    /// `HttpOnly`, `Secure` and `SameSite=Lax` or stricter).
    pub fn from_middleware(middleware: SessionMiddleware<St>) -> Self {
        Self { inner: middleware }
    }
}

impl<St: SessionStore> fmt::Debug for PasslockSessions<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasslockSessions").finish_non_exhaustive()
    }
}

impl<S, B, St> Transform<S, ServiceRequest> for PasslockSessions<St>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
    St: SessionStore + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform =
        PasslockSessionsService<<SessionMiddleware<St> as Transform<S, ServiceRequest>>::Transform>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let inner = self.inner.new_transform(service);
        Box::pin(async move {
            Ok(PasslockSessionsService {
                inner: inner.await?,
            })
        })
    }
}

/// The service of [`PasslockSessions`].
pub struct PasslockSessionsService<T> {
    inner: T,
}

impl<T> fmt::Debug for PasslockSessionsService<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasslockSessionsService")
            .finish_non_exhaustive()
    }
}

impl<T, B> Service<ServiceRequest> for PasslockSessionsService<T>
where
    T: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    T::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Error>>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        req.extensions_mut().insert(SessionsMounted);
        let response = self.inner.call(req);
        Box::pin(async move {
            response.await.map_err(|e| match store_failure(&e) {
                // Rendered by `PasslockError::error_response` where actix
                // turns errors into responses: a JSON 503, no cookie.
                Some(cause) => PasslockError(FlowError::SessionUnavailable(cause.into())).into(),
                None => e,
            })
        })
    }
}

/// actix-session reports every store failure as an `InternalError` around
/// the store's error (`anyhow::Error`, `SaveError` or `UpdateError`).
fn store_failure(e: &Error) -> Option<String> {
    if let Some(e) = e.as_error::<InternalError<anyhow::Error>>() {
        return Some(format!("{e:?}"));
    }
    if let Some(e) = e.as_error::<InternalError<SaveError>>() {
        return Some(format!("{e:?}"));
    }
    (e.as_error::<InternalError<UpdateError>>()).map(|e| format!("{e:?}"))
}

/// The session of a request with the passlock record loaded from it.
///
/// The record lives under [`SessionRecord::KEY`] and is checked as it is
/// loaded ([`flow::validate_session`](passlock_core::adapter::flow::validate_session)):
/// a session whose sign-in was logged out, or is older than the absolute
/// session lifetime, reads as empty, even if a request in flight wrote it
/// back after the logout. The [`Passlock`] is found as
/// `web::Data<Passlock<U>>` (a JSON `500 misconfigured` without it); a
/// revocation store failure is a JSON `503`. A record that no longer
/// deserializes (for example after the app's user id type changed) is
/// treated as empty and logged. Without [`PasslockSessions`] around the app
/// this is a JSON `500` (`misconfigured`).
#[derive(Clone)]
pub struct PasslockSession<U> {
    session: Session,
    record: SessionRecord<U>,
    client: ClientInfo,
}

impl<U: fmt::Debug> fmt::Debug for PasslockSession<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasslockSession")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl<U: UserId> PasslockSession<U> {
    /// Loads the record of the request's session and checks it against
    /// the app's [`Passlock`] (revocations, session lifetimes). With an idle
    /// lifetime, a record whose last use is due to move on is written back
    /// into the session (saved with the response, same key).
    pub async fn load(req: &HttpRequest) -> Result<Self, FlowError> {
        let record = Self::load_record(req).await?;
        Ok(Self {
            session: req.get_session(),
            record,
            client: client_of(passlock_ref::<U>(req)?, req),
        })
    }

    /// [`Self::load`] without the client and the session handle: what the
    /// user extractors keep (the same checks, the same write-back).
    pub(crate) async fn load_record(req: &HttpRequest) -> Result<SessionRecord<U>, FlowError> {
        if req.extensions().get::<SessionsMounted>().is_none() {
            return Err(FlowError::Misconfigured(NO_SESSIONS));
        }
        let passlock = passlock_ref::<U>(req)?;
        let session = req.get_session();
        let record = SessionRecord::or_empty(session.get(SessionRecord::<U>::KEY));
        let checked = flow::check_session(passlock, record).await?;
        if checked.write_back {
            session
                .insert(SessionRecord::<U>::KEY, &checked.record)
                .map_err(|e| FlowError::SessionUnavailable(Box::new(e)))?;
        }
        Ok(checked.record)
    }

    /// The client of the request (peer address or trusted proxy header),
    /// as passlock throttles and audits it.
    pub fn client(&self) -> &ClientInfo {
        &self.client
    }

    /// The record (empty when the session holds none).
    pub fn record(&self) -> &SessionRecord<U> {
        &self.record
    }

    /// Records the app's own first factor (e.g. `"password"`) for `user`,
    /// already verified by the app, through
    /// [`flow::first_factor`](passlock_core::adapter::flow::first_factor): a partial
    /// state when the user must add a passkey, else a complete sign-in; the
    /// session id is renewed either way.
    ///
    /// ```
    /// use actix_web::web::Data;
    /// use passlock_actix::{PasslockError, PasslockSession};
    /// use passlock_actix::passlock_core::Passlock;
    ///
    /// async fn password_ok(
    ///     passlock: Data<Passlock<i64>>,
    ///     session: PasslockSession<i64>,
    /// ) -> Result<String, PasslockError> {
    ///     let user = 7; // the user whose password the app just verified
    ///     let recorded = session.record_first_factor(&passlock, user, "password").await?;
    ///     Ok(match recorded.second_factor_required {
    ///         true => "verify with your passkey".to_owned(),
    ///         false => "signed in".to_owned(),
    ///     })
    /// }
    /// ```
    pub async fn record_first_factor(
        &self,
        passlock: &Passlock<U>,
        user: U,
        method: &str,
    ) -> Result<FirstFactor, FlowError> {
        let outcome =
            flow::first_factor(passlock, &self.record, user, method, &self.client).await?;
        self.apply(outcome.session)?;
        Ok(outcome.value)
    }

    /// Logs out through [`flow::logout`](passlock_core::adapter::flow::logout): the
    /// sign-in is revoked first, then the session is purged. A revocation
    /// store failure is a `503` and leaves the session as it was.
    pub async fn logout(&self, passlock: &Passlock<U>) -> Result<(), FlowError> {
        let outcome = flow::logout(passlock, &self.record).await?;
        self.apply(outcome.session)
    }

    /// Ends every other session of the signed-in user through
    /// [`flow::logout_everywhere`](passlock_core::adapter::flow::logout_everywhere)
    /// and keeps this one under a new key.
    pub async fn logout_everywhere(&self, passlock: &Passlock<U>) -> Result<(), FlowError> {
        let outcome = flow::logout_everywhere(passlock, &self.record, &self.client).await?;
        self.apply(outcome.session)
    }

    /// Applies a flow's session change: `Set { renew: true }` gives the
    /// session a new id (no fixation), `Purge` deletes it server-side. The
    /// store is written by [`PasslockSessions`] before the response leaves;
    /// if that fails the response is replaced by a JSON `503` and no cookie
    /// is issued.
    pub fn apply(&self, change: SessionChange<U>) -> Result<(), FlowError> {
        match change {
            SessionChange::Unchanged => Ok(()),
            SessionChange::Set { record, renew } => {
                if renew {
                    self.session.renew();
                }
                self.session
                    .insert(SessionRecord::<U>::KEY, record)
                    .map_err(|e| FlowError::SessionUnavailable(Box::new(e)))
            }
            SessionChange::Purge => {
                self.session.purge();
                Ok(())
            }
            _ => Err(FlowError::Misconfigured("unknown session change")),
        }
    }
}

/// The client for throttling and audit: the peer address or the trusted
/// proxy header (neither, as in some test requests: unknown).
pub(crate) fn client_of<U: UserId>(pl: &Passlock<U>, req: &HttpRequest) -> ClientInfo {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    pl.client_info(req.peer_addr().map(|a| a.ip()), header)
}

impl<U: UserId> FromRequest for PasslockSession<U> {
    type Error = PasslockError;
    type Future = LocalBoxFuture<'static, Result<Self, PasslockError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Self::load(&req).await.map_err(PasslockError) })
    }
}

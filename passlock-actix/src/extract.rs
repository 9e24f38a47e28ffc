//! Extractors: who is signed in ([`PasskeyUser`], [`MaybePasskeyUser`]), a
//! recent passkey verification ([`StepUp`]), and the request bodies of the
//! passlock routes.

use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::http::header::{CONTENT_TYPE, ORIGIN};
use actix_web::web::{Bytes, BytesMut, Data};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt as _;
use futures_util::future::{LocalBoxFuture, Ready, ready};
use passlock_core::adapter::flow;
use passlock_core::adapter::{MAX_BODY_BYTES, check_json_body, parse_optional_json, parse_proof};
use passlock_core::{AuthState, FlowError, Passlock, Proof, UserId};

use crate::error::PasslockError;
use crate::session::PasslockSession;

const NO_PASSLOCK: &str = "no Passlock: add App::app_data(web::Data::new(passlock.clone()))";

/// The app's [`Passlock<U>`], registered as `web::Data<Passlock<U>>`.
pub(crate) fn passlock_of<U: UserId>(req: &HttpRequest) -> Result<Passlock<U>, FlowError> {
    passlock_ref(req).cloned()
}

/// [`passlock_of`] borrowed from the request (no reference count touched:
/// what the guard uses on every request).
pub(crate) fn passlock_ref<U: UserId>(req: &HttpRequest) -> Result<&Passlock<U>, FlowError> {
    req.app_data::<Data<Passlock<U>>>()
        .map(|data| &***data)
        .ok_or(FlowError::Misconfigured(NO_PASSLOCK))
}

/// A user signed in with a passkey in this session; rejects with a JSON
/// `401 not_authenticated` otherwise (a first-factor-only MFA session is not
/// enough, nor a logged-out or expired one). A session store failure is a
/// `503`.
///
/// Like every passlock extractor, it needs the app's `Passlock<U>` as
/// `web::Data<Passlock<U>>` (its revocations and session lifetime decide
/// whether a session still counts); without it, a JSON `500 misconfigured`.
///
/// ```
/// use passlock_actix::PasskeyUser;
///
/// async fn account(user: PasskeyUser<i64>) -> String {
///     format!("user {}", user.user_id)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct PasskeyUser<U>(pub AuthState<U>);

/// Anyone whose first factor is recorded in this session, including a
/// partial (MFA pending) state; JSON `401 not_authenticated` otherwise. The
/// MFA page uses it to know who is half signed in ([`AuthState::is_partial`]).
///
/// ```
/// use passlock_actix::FirstFactorUser;
///
/// async fn mfa_page(user: FirstFactorUser<i64>) -> String {
///     match user.is_partial() {
///         true => format!("{}: verify with your passkey", user.user_id),
///         false => format!("signed in as {}", user.user_id),
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct FirstFactorUser<U>(pub AuthState<U>);

/// A complete sign-in: a passkey session, or the app's own factor alone when
/// the policy asks no passkey of this user ("password *or* passkey"). A
/// partial (MFA pending) state is a JSON `401 not_authenticated`.
#[derive(Debug, Clone)]
pub struct SignedInUser<U>(pub AuthState<U>);

/// Deref to the state, and extraction through one of the core's checks.
macro_rules! user_extractor {
    ($name:ident, $check:path) => {
        impl<U> Deref for $name<U> {
            type Target = AuthState<U>;

            fn deref(&self) -> &AuthState<U> {
                &self.0
            }
        }

        impl<U: UserId> $name<U> {
            pub(crate) async fn extract(req: &HttpRequest) -> Result<Self, FlowError> {
                let record = PasslockSession::<U>::load_record(req).await?;
                flow::into_checked(record, $check).map(Self)
            }
        }

        impl<U: UserId> FromRequest for $name<U> {
            type Error = PasslockError;
            type Future = LocalBoxFuture<'static, Result<Self, PasslockError>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let req = req.clone();
                Box::pin(async move { Self::extract(&req).await.map_err(PasslockError) })
            }
        }
    };
}

user_extractor!(PasskeyUser, flow::require_user);
user_extractor!(FirstFactorUser, flow::require_first_factor);
user_extractor!(SignedInUser, flow::require_signed_in);

/// The signed-in passkey user, or `None` when nobody is signed in.
///
/// actix-web's `Option<T>` extractor turns *every* error into `None`, so
/// `Option<PasskeyUser<U>>` would treat a misconfiguration as "anonymous".
/// `MaybePasskeyUser` is `None` only for "not signed in" and still rejects
/// with a JSON `500` when the session middleware is missing (a store that is
/// down is a `503` from [`PasslockSessions`](crate::PasslockSessions)).
///
/// ```
/// use passlock_actix::MaybePasskeyUser;
///
/// async fn home(MaybePasskeyUser(user): MaybePasskeyUser<i64>) -> String {
///     match user {
///         Some(user) => format!("hello {}", user.user_id),
///         None => "hello stranger".to_owned(),
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct MaybePasskeyUser<U>(pub Option<PasskeyUser<U>>);

impl<U: UserId> FromRequest for MaybePasskeyUser<U> {
    type Error = PasslockError;
    type Future = LocalBoxFuture<'static, Result<Self, PasslockError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match PasskeyUser::<U>::extract(&req).await {
                Ok(user) => Ok(Self(Some(user))),
                Err(FlowError::NotSignedIn) => Ok(Self(None)),
                Err(e) => Err(PasslockError(e)),
            }
        })
    }
}

/// A passkey verification within the last `SECS` seconds in this session.
/// Otherwise a JSON `401 {"error":"step_up_required","max_age":SECS}` with a
/// `WWW-Authenticate` header (RFC 9470 style); the browser client answers it
/// with `stepUp()` and retries.
///
/// `U` is the app's user id type (default `i64`). The [`Passlock<U>`] is
/// found as `web::Data<Passlock<U>>` (its clock decides); without it this is
/// a JSON `500` (`misconfigured`).
///
/// ```
/// use passlock_actix::{PasskeyUser, StepUp};
///
/// async fn delete_account(_: StepUp<300>, user: PasskeyUser<i64>) -> String {
///     format!("deleting {}", user.user_id)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct StepUp<const SECS: u64, U = i64>(pub AuthState<U>);

impl<U: UserId, const SECS: u64> FromRequest for StepUp<SECS, U> {
    type Error = PasslockError;
    type Future = LocalBoxFuture<'static, Result<Self, PasslockError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let step_up = async {
                let passlock = passlock_ref::<U>(&req)?;
                let record = PasslockSession::<U>::load_record(&req).await?;
                flow::into_checked(record, |r| flow::require_step_up(passlock, r, SECS)).map(Self)
            };
            step_up.await.map_err(PasslockError)
        })
    }
}

/// The scope's [`Passlock`], after the login-CSRF check: every
/// state-changing request needs an allowed `Origin`.
#[derive(Debug)]
pub(crate) struct Checked<U: UserId>(pub(crate) Passlock<U>);

impl<U: UserId> FromRequest for Checked<U> {
    type Error = PasslockError;
    type Future = Ready<Result<Self, PasslockError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let check = || {
            let passlock = passlock_of::<U>(req)?;
            if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
                let origin = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok());
                passlock.check_origin(origin)?;
            }
            Ok(Self(passlock))
        };
        ready(check().map_err(PasslockError))
    }
}

/// What a route body parses into.
pub(crate) trait BodyKind: Sized + 'static {
    /// An empty body without a `Content-Type` is accepted (as `None`).
    const ALLOW_EMPTY: bool;
    /// Parses the checked body.
    fn parse(bytes: Option<Bytes>) -> Result<Self, FlowError>;
}

/// A JSON body, or `T::default()` for an empty body sent without a
/// `Content-Type` (bodiless authorize and logout requests).
#[derive(Debug)]
pub(crate) struct Optional<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned + Default + 'static> BodyKind for Optional<T> {
    const ALLOW_EMPTY: bool = true;

    fn parse(bytes: Option<Bytes>) -> Result<Self, FlowError> {
        Ok(Self(parse_optional_json(bytes.as_deref())?))
    }
}

/// A `{"code"}`, `{"id_token"}` or `{"nonce"}` body.
impl BodyKind for Proof {
    const ALLOW_EMPTY: bool = false;

    fn parse(bytes: Option<Bytes>) -> Result<Self, FlowError> {
        parse_proof(&bytes.unwrap_or_default())
    }
}

/// A required JSON body (the recovery routes).
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned + 'static> BodyKind for Json<T> {
    const ALLOW_EMPTY: bool = false;

    fn parse(bytes: Option<Bytes>) -> Result<Self, FlowError> {
        Ok(Self(passlock_core::adapter::parse_json(
            &bytes.unwrap_or_default(),
        )?))
    }
}

/// The raw JSON bytes of an embedded-provider browser call.
impl BodyKind for Bytes {
    const ALLOW_EMPTY: bool = false;

    fn parse(bytes: Option<Bytes>) -> Result<Self, FlowError> {
        Ok(bytes.unwrap_or_default())
    }
}

/// A route body: read up to 16 KiB (`413` beyond), then its `Content-Type`
/// checked (`415` unless JSON), then parsed (`400`).
#[derive(Debug)]
pub(crate) struct Body<T>(pub(crate) T);

impl<T: BodyKind> FromRequest for Body<T> {
    type Error = PasslockError;
    type Future = LocalBoxFuture<'static, Result<Self, PasslockError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("invalid").to_owned());
        let mut payload = payload.take();
        Box::pin(async move {
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|_| FlowError::BadRequest("the body could not be read".to_owned()))?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(PasslockError(FlowError::PayloadTooLarge));
                }
                body.extend_from_slice(&chunk);
            }
            let body = body.freeze();
            let present =
                check_json_body(content_type.as_deref(), &body, T::ALLOW_EMPTY)?.is_some();
            Ok(Self(T::parse(present.then_some(body))?))
        })
    }
}

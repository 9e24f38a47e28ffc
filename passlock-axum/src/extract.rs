//! Extractors: who is signed in ([`PasskeyUser`], [`MaybePasskeyUser`],
//! `Option<PasskeyUser<U>>`), a recent passkey verification ([`StepUp`]),
//! and the request bodies of the passlock routes.

use std::ops::Deref;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use passlock_core::adapter::flow;
use passlock_core::adapter::{check_json_body, parse_optional_json, parse_proof};
use passlock_core::{AuthState, FlowError, Passlock, Proof, UserId};

use crate::rejection::PasslockRejection;
use crate::session::record_of;

/// A user signed in with a passkey in this session; rejects with a JSON
/// `401 not_authenticated` otherwise (a first-factor-only MFA session is not
/// enough, nor a logged-out or expired one). A session store failure is a
/// `503`.
///
/// Like every passlock extractor, it finds the [`Passlock<U>`] in the
/// router state through [`FromRef`], as its revocations and session
/// lifetime decide whether a session still counts.
///
/// ```
/// use passlock_axum::PasskeyUser;
///
/// async fn account(user: PasskeyUser<i64>) -> String {
///     format!("user {}", user.user_id)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct PasskeyUser<U>(pub AuthState<U>);

impl<U> Deref for PasskeyUser<U> {
    type Target = AuthState<U>;

    fn deref(&self) -> &AuthState<U> {
        &self.0
    }
}

impl<S, U> FromRequestParts<S> for PasskeyUser<U>
where
    S: Send + Sync,
    U: UserId,
    Passlock<U>: FromRef<S>,
{
    type Rejection = PasslockRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let record = record_of(parts, &Passlock::<U>::from_ref(state)).await?;
        Ok(Self(flow::into_checked(record, flow::require_user)?))
    }
}

/// `Option<PasskeyUser<U>>` is `None` only when nobody is signed in; a
/// failing session store still rejects with a `503`.
impl<S, U> OptionalFromRequestParts<S> for PasskeyUser<U>
where
    S: Send + Sync,
    U: UserId,
    Passlock<U>: FromRef<S>,
{
    type Rejection = PasslockRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Self as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(user) => Ok(Some(user)),
            Err(PasslockRejection(FlowError::NotSignedIn)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The same as `Option<PasskeyUser<U>>`, named for symmetry with the actix
/// adapter (where `Option<T>` would swallow a session store failure).
#[derive(Debug, Clone)]
pub struct MaybePasskeyUser<U>(pub Option<PasskeyUser<U>>);

impl<S, U> FromRequestParts<S> for MaybePasskeyUser<U>
where
    S: Send + Sync,
    U: UserId,
    Passlock<U>: FromRef<S>,
{
    type Rejection = PasslockRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user =
            <PasskeyUser<U> as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
                .await?;
        Ok(Self(user))
    }
}

/// Anyone whose first factor is recorded in this session, including a
/// partial (MFA pending) state; JSON `401 not_authenticated` otherwise. The
/// MFA page uses it to know who is half signed in ([`AuthState::is_partial`]).
///
/// ```
/// use passlock_axum::FirstFactorUser;
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

macro_rules! user_extractor {
    ($name:ident, $check:path) => {
        impl<U> Deref for $name<U> {
            type Target = AuthState<U>;

            fn deref(&self) -> &AuthState<U> {
                &self.0
            }
        }

        impl<S, U> FromRequestParts<S> for $name<U>
        where
            S: Send + Sync,
            U: UserId,
            Passlock<U>: FromRef<S>,
        {
            type Rejection = PasslockRejection;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                let record = record_of(parts, &Passlock::<U>::from_ref(state)).await?;
                Ok(Self(flow::into_checked(record, $check)?))
            }
        }
    };
}

user_extractor!(FirstFactorUser, flow::require_first_factor);
user_extractor!(SignedInUser, flow::require_signed_in);

/// A passkey verification within the last `SECS` seconds in this session.
/// Otherwise a JSON `401 {"error":"step_up_required","max_age":SECS}` with a
/// `WWW-Authenticate` header (RFC 9470 style); the browser client answers it
/// with `stepUp()` and retries.
///
/// `U` is the app's user id type (default `i64`); the [`Passlock<U>`] is found
/// in the router state through [`FromRef`], as its clock decides.
///
/// ```
/// use passlock_axum::{PasskeyUser, StepUp};
///
/// async fn delete_account(_: StepUp<300>, user: PasskeyUser<i64>) -> String {
///     format!("deleting {}", user.user_id)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct StepUp<const SECS: u64, U = i64>(pub AuthState<U>);

impl<S, U, const SECS: u64> FromRequestParts<S> for StepUp<SECS, U>
where
    S: Send + Sync,
    U: UserId,
    Passlock<U>: FromRef<S>,
{
    type Rejection = PasslockRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let passlock = Passlock::<U>::from_ref(state);
        let record = record_of(parts, &passlock).await?;
        let auth = flow::into_checked(record, |r| flow::require_step_up(&passlock, r, SECS))?;
        Ok(Self(auth))
    }
}

/// Buffers a body (capped by the router's `DefaultBodyLimit`) after checking
/// its `Content-Type`. With `allow_empty`, an empty body without a
/// `Content-Type` is accepted as `None`; any non-empty body must be JSON.
async fn json_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
    allow_empty: bool,
) -> Result<Option<Bytes>, FlowError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("invalid"))
        .map(str::to_owned);
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        match rejection.into_response().status().as_u16() {
            413 => FlowError::PayloadTooLarge,
            _ => FlowError::BadRequest("the body could not be read".to_owned()),
        }
    })?;
    let present = check_json_body(content_type.as_deref(), &bytes, allow_empty)?.is_some();
    Ok(present.then_some(bytes))
}

/// A JSON body, or `T::default()` for an empty body sent without a
/// `Content-Type` (bodiless authorize and logout requests).
#[derive(Debug)]
pub(crate) struct OptionalJsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Default> FromRequest<S>
    for OptionalJsonBody<T>
{
    type Rejection = PasslockRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(req, state, true).await?;
        Ok(Self(parse_optional_json(bytes.as_deref())?))
    }
}

/// A required JSON body (the recovery routes).
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = PasslockRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(req, state, false).await?.unwrap_or_default();
        Ok(Self(passlock_core::adapter::parse_json(&bytes)?))
    }
}

/// The raw JSON bytes of an embedded-provider browser call.
#[cfg(feature = "embedded")]
#[derive(Debug)]
pub(crate) struct RawJson(pub(crate) Bytes);

#[cfg(feature = "embedded")]
impl<S: Send + Sync> FromRequest<S> for RawJson {
    type Rejection = PasslockRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            json_bytes(req, state, false).await?.unwrap_or_default(),
        ))
    }
}

/// A `{"code"}`, `{"id_token"}` or `{"nonce"}` body.
#[derive(Debug)]
pub(crate) struct ProofBody(pub(crate) Proof);

impl<S: Send + Sync> FromRequest<S> for ProofBody {
    type Rejection = PasslockRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(req, state, false).await?.unwrap_or_default();
        Ok(Self(parse_proof(&bytes)?))
    }
}

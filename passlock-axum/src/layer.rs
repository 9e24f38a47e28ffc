//! A route layer that requires a passkey session for a whole sub-router.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::header::ACCEPT;
use axum::response::{IntoResponse, Redirect, Response};
use passlock_core::{ConfigError, FlowError, Passlock, UserId};
use tower::{Layer, Service};

use crate::extract::PasskeyUser;
use crate::rejection::PasslockRejection;

/// Requires a passkey session (as [`PasskeyUser`]) for every route it wraps;
/// anything else gets the extractor's JSON rejection, or, with
/// [`redirect_to`](RequirePasskey::redirect_to), a `303` to a local login
/// page for signed-out requests that accept `text/html`.
///
/// ```
/// use axum::{Router, routing::get};
/// # fn demo(passlock: passlock_axum::passlock_core::Passlock<i64>) {
///
/// let admin: Router = Router::new()
///     .route("/admin", get(|| async { "secret" }))
///     .route_layer(passlock_axum::require_passkey(passlock).redirect_to("/login").unwrap());
/// # }
/// ```
pub struct RequirePasskey<U: UserId> {
    passlock: Passlock<U>,
    redirect: Option<String>,
}

/// A [`RequirePasskey`] layer checking sessions against `passlock` (its
/// revocations and session lifetime).
pub fn require_passkey<U: UserId>(passlock: Passlock<U>) -> RequirePasskey<U> {
    RequirePasskey {
        passlock,
        redirect: None,
    }
}

impl<U: UserId> RequirePasskey<U> {
    /// Redirects signed-out HTML requests to `path`, which must be a local
    /// path (`/login`), never another site.
    pub fn redirect_to(mut self, path: &str) -> Result<Self, ConfigError> {
        let local = path.starts_with('/')
            && !path.starts_with("//")
            && !path.contains('\\')
            && !path.chars().any(char::is_control);
        if !local {
            return Err(ConfigError::new(
                "redirect_to",
                "must be a local path such as /login",
            ));
        }
        self.redirect = Some(path.to_owned());
        Ok(self)
    }
}

impl<U: UserId> Clone for RequirePasskey<U> {
    fn clone(&self) -> Self {
        Self {
            passlock: self.passlock.clone(),
            redirect: self.redirect.clone(),
        }
    }
}

impl<U: UserId> fmt::Debug for RequirePasskey<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequirePasskey")
            .field("redirect", &self.redirect)
            .finish()
    }
}

impl<S, U: UserId> Layer<S> for RequirePasskey<U> {
    type Service = RequirePasskeyService<S, U>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePasskeyService {
            inner,
            config: self.clone(),
        }
    }
}

/// The service of [`RequirePasskey`].
pub struct RequirePasskeyService<S, U: UserId> {
    inner: S,
    config: RequirePasskey<U>,
}

impl<S: Clone, U: UserId> Clone for RequirePasskeyService<S, U> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S, U: UserId> fmt::Debug for RequirePasskeyService<S, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequirePasskeyService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn accepts_html(req: &axum::http::request::Parts) -> bool {
    req.headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

impl<S, U> Service<Request> for RequirePasskeyService<S, U>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    U: UserId,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let redirect = self.config.redirect.clone();
        let passlock = self.config.passlock.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            match PasskeyUser::<U>::from_request_parts(&mut parts, &passlock).await {
                Ok(_) => inner.call(Request::from_parts(parts, body)).await,
                Err(PasslockRejection(FlowError::NotSignedIn))
                    if redirect.is_some() && accepts_html(&parts) =>
                {
                    Ok(Redirect::to(redirect.as_deref().unwrap_or("/")).into_response())
                }
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}

//! A middleware that requires a passkey session for a whole scope.

use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{ACCEPT, LOCATION};
use actix_web::{Error, HttpResponse, ResponseError as _};
use futures_util::future::{LocalBoxFuture, Ready, ready};
use passlock_core::{ConfigError, FlowError, UserId};

use crate::error::PasslockError;
use crate::extract::PasskeyUser;

/// Requires a passkey session (as [`PasskeyUser`]) for every route it wraps;
/// anything else gets the extractor's JSON error, or, with
/// [`redirect_to`](RequirePasskey::redirect_to), a `303` to a local login
/// page for signed-out requests that accept `text/html`.
///
/// ```
/// use actix_web::{HttpResponse, web};
///
/// let admin = web::scope("/admin")
///     .wrap(passlock_actix::require_passkey::<i64>().redirect_to("/login").unwrap())
///     .route("", web::get().to(|| async { HttpResponse::Ok().body("secret") }));
/// ```
#[derive(Clone)]
pub struct RequirePasskey<U> {
    redirect: Option<Rc<str>>,
    _user: PhantomData<fn() -> U>,
}

/// A [`RequirePasskey`] middleware for the app's user id type `U`.
pub fn require_passkey<U: UserId>() -> RequirePasskey<U> {
    RequirePasskey {
        redirect: None,
        _user: PhantomData,
    }
}

impl<U> RequirePasskey<U> {
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
        self.redirect = Some(path.into());
        Ok(self)
    }
}

impl<U> fmt::Debug for RequirePasskey<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequirePasskey")
            .field("redirect", &self.redirect)
            .finish()
    }
}

impl<S, B, U> Transform<S, ServiceRequest> for RequirePasskey<U>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    U: UserId,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequirePasskeyService<S, U>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequirePasskeyService {
            inner: Rc::new(service),
            config: self.clone(),
        }))
    }
}

/// The service of [`RequirePasskey`].
pub struct RequirePasskeyService<S, U> {
    inner: Rc<S>,
    config: RequirePasskey<U>,
}

impl<S, U> fmt::Debug for RequirePasskeyService<S, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequirePasskeyService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, B, U> Service<ServiceRequest> for RequirePasskeyService<S, U>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    U: UserId,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Error>>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let rejection = match PasskeyUser::<U>::extract(req.request()) {
            Ok(_) => None,
            Err(FlowError::NotSignedIn) if accepts_html(&req) && self.config.redirect.is_some() => {
                let to = self.config.redirect.as_deref().unwrap_or("/");
                Some(
                    HttpResponse::SeeOther()
                        .insert_header((LOCATION, to))
                        .finish(),
                )
            }
            Err(e) => Some(PasslockError(e).error_response()),
        };
        if let Some(response) = rejection {
            return Box::pin(async move { Ok(req.into_response(response).map_into_right_body()) });
        }
        let inner = Rc::clone(&self.inner);
        Box::pin(async move { Ok(inner.call(req).await?.map_into_left_body()) })
    }
}

fn accepts_html(req: &ServiceRequest) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

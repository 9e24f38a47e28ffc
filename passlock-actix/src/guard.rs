//! Middleware (for [`from_fn`](actix_web::middleware::from_fn)) that
//! requires a passkey session for a whole scope.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{ACCEPT, LOCATION};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError as _};
use passlock_core::{ConfigError, FlowError, UserId};

use crate::error::PasslockError;
use crate::extract::PasskeyUser;

/// Requires a passkey session (as [`PasskeyUser`]) for every route it wraps;
/// anything else gets the extractor's JSON error (`401`, `503`, `500`).
///
/// ```
/// use actix_web::{HttpResponse, middleware::from_fn, web};
///
/// let admin = web::scope("/admin")
///     .wrap(from_fn(passlock_actix::require_passkey::<i64>))
///     .route("", web::get().to(|| async { HttpResponse::Ok().body("secret") }));
/// ```
pub async fn require_passkey<U: UserId>(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    guard::<U>(req, next, None).await
}

/// As [`require_passkey`], but signed-out requests that accept `text/html`
/// are redirected (`303`) to a local login page.
///
/// ```
/// use actix_web::{HttpResponse, middleware::from_fn, web};
/// use passlock_actix::{LoginPage, require_passkey_or_redirect};
///
/// let login = LoginPage::new("/login").unwrap();
/// let admin = web::scope("/admin")
///     .wrap(from_fn(move |req, next| {
///         require_passkey_or_redirect::<i64>(req, next, login.clone())
///     }))
///     .route("", web::get().to(|| async { HttpResponse::Ok().body("secret") }));
/// ```
pub async fn require_passkey_or_redirect<U: UserId>(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    login: LoginPage,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    guard::<U>(req, next, Some(login)).await
}

/// A local path to send signed-out browsers to, such as `/login`; never
/// another site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPage(String);

impl LoginPage {
    /// Checks that `path` is local (`/login`, not `//evil.example`).
    pub fn new(path: &str) -> Result<Self, ConfigError> {
        let local = path.starts_with('/')
            && !path.starts_with("//")
            && !path.contains('\\')
            && !path.chars().any(char::is_control);
        match local {
            true => Ok(Self(path.to_owned())),
            false => Err(ConfigError::new(
                "login_page",
                "must be a local path such as /login",
            )),
        }
    }
}

async fn guard<U: UserId>(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    login: Option<LoginPage>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let response = match (PasskeyUser::<U>::extract(req.request()).await, login) {
        (Ok(_), _) => return Ok(next.call(req).await?.map_into_left_body()),
        (Err(FlowError::NotSignedIn), Some(LoginPage(to))) if accepts_html(&req) => {
            HttpResponse::SeeOther()
                .insert_header((LOCATION, to))
                .finish()
        }
        (Err(e), _) => PasslockError(e).error_response(),
    };
    Ok(req.into_response(response).map_into_right_body())
}

fn accepts_html(req: &ServiceRequest) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

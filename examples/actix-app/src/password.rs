//! The password routes on actix-web, the same as the axum example's:
//! `POST /api/password/signup {username,password}` creates a user with a
//! password and signs them in; `POST /api/password/login {username,password}`
//! verifies the password and records it with
//! [`PasslockSession::record_first_factor`]. For a user who has a passkey
//! (and the policy's `passkey_required_as_second_factor` on), that is a
//! partial session: the page then asks for the passkey (`stepUp()`). The
//! passwords themselves are [`example_support::password`]'s.

use actix_web::http::StatusCode;
use actix_web::http::header::ORIGIN;
use actix_web::{HttpRequest, HttpResponse, web};
use example_support::password::{self, Credentials, PasswordError};
use passlock_actix::passlock_core::Passlock;
use passlock_actix::{PasslockError, PasslockSession};
use serde_json::json;
use sqlx::SqlitePool;

/// The routes; the pool is their `web::Data`.
pub(crate) fn routes(pool: SqlitePool) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(pool))
            .route("/api/password/signup", web::post().to(signup))
            .route("/api/password/login", web::post().to(login));
    }
}

/// A JSON `{"error","message"}` answer, like the passlock routes'.
fn refuse(e: PasswordError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(json!({ "error": e.code(), "message": e.message() }))
}

/// A same-origin check (login CSRF).
fn check_origin(passlock: &Passlock<i64>, req: &HttpRequest) -> Result<(), PasslockError> {
    let origin = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok());
    Ok(passlock.check_origin(origin)?)
}

/// `POST /api/password/signup`: a new user with a password (no passkey yet,
/// so the password alone signs them in).
async fn signup(
    passlock: web::Data<Passlock<i64>>,
    pool: web::Data<SqlitePool>,
    session: PasslockSession<i64>,
    req: HttpRequest,
    c: web::Json<Credentials>,
) -> Result<HttpResponse, PasslockError> {
    check_origin(&passlock, &req)?;
    let user = match password::sign_up(&pool, c.into_inner()).await {
        Ok(user) => user,
        Err(e) => return Ok(refuse(e)),
    };
    let recorded = session
        .record_first_factor(&passlock, user, "password")
        .await?;
    Ok(HttpResponse::Created().json(recorded))
}

/// `POST /api/password/login`: records the password as the first factor;
/// the answer's `second_factor_required` tells the page to ask for the
/// passkey.
async fn login(
    passlock: web::Data<Passlock<i64>>,
    pool: web::Data<SqlitePool>,
    session: PasslockSession<i64>,
    req: HttpRequest,
    c: web::Json<Credentials>,
) -> Result<HttpResponse, PasslockError> {
    check_origin(&passlock, &req)?;
    let user = match password::log_in(&pool, c.into_inner()).await {
        Ok(user) => user,
        Err(e) => return Ok(refuse(e)),
    };
    let recorded = session
        .record_first_factor(&passlock, user, "password")
        .await?;
    Ok(HttpResponse::Ok().json(recorded))
}

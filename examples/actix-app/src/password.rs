//! The app's own first factor: passwords (argon2) in its `users` table, the
//! same routes as the axum example's.
//!
//! `POST /api/password/signup {username,password}` creates a user with a
//! password and signs them in; `POST /api/password/login {username,password}`
//! verifies the password and records it with
//! [`PasslockSession::record_first_factor`]. For a user who has a passkey
//! (and the policy's `passkey_required_as_second_factor` on), that is a
//! partial session: the page then asks for the passkey (`stepUp()`).

use std::sync::LazyLock;

use actix_web::http::header::ORIGIN;
use actix_web::{HttpRequest, HttpResponse, web};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use passlock_actix::passlock_core::Passlock;
use passlock_actix::{PasslockError, PasslockSession};
use serde::Deserialize;
use serde_json::json;
use sqlx::SqlitePool;

/// `{username, password}`.
#[derive(Debug, Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// The routes; the pool is their `web::Data`.
pub(crate) fn routes(pool: SqlitePool) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(pool))
            .route("/api/password/signup", web::post().to(signup))
            .route("/api/password/login", web::post().to(login));
    }
}

/// A JSON `{"error","message"}` answer, like the passlock routes'.
fn refuse(status: u16, code: &str, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(json!({ "error": code, "message": message }))
}

fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "users table");
    refuse(503, "unavailable", "the user store is unavailable")
}

/// A same-origin check (login CSRF), then the checked username.
fn check(
    passlock: &Passlock<i64>,
    req: &HttpRequest,
    c: &Credentials,
) -> Result<Result<String, HttpResponse>, PasslockError> {
    let origin = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok());
    passlock.check_origin(origin)?;
    let username = c.username.trim();
    if username.is_empty() || username.chars().count() > 64 {
        let why = "the username needs 1 to 64 characters";
        return Ok(Err(refuse(400, "invalid_credentials", why)));
    }
    if c.password.chars().count() < 8 || c.password.len() > 1024 {
        let why = "the password needs at least 8 characters";
        return Ok(Err(refuse(400, "invalid_credentials", why)));
    }
    Ok(Ok(username.to_owned()))
}

fn hash(password: &str) -> Option<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .ok()
}

/// Verifies `password` against `stored`; with no stored hash, burns the same
/// time against a dummy one (no user enumeration by timing).
fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: LazyLock<String> =
        LazyLock::new(|| hash("not anyone's password").unwrap_or_default());
    let Ok(parsed) = PasswordHash::new(stored.unwrap_or(&DUMMY)) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && stored.is_some()
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
    let username = match check(&passlock, &req, &c)? {
        Ok(username) => username,
        Err(refused) => return Ok(refused),
    };
    let password = c.into_inner().password;
    let Ok(Some(hashed)) = web::block(move || hash(&password)).await else {
        return Ok(unavailable("hashing failed"));
    };
    let row: Result<(i64,), sqlx::Error> =
        sqlx::query_as("INSERT INTO users (username, password_hash) VALUES (?, ?) RETURNING id")
            .bind(&username)
            .bind(hashed)
            .fetch_one(pool.get_ref())
            .await;
    let user = match row {
        Ok((id,)) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Ok(refuse(409, "username_taken", "this username is taken"));
        }
        Err(e) => return Ok(unavailable(e)),
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
    let username = match check(&passlock, &req, &c)? {
        Ok(username) => username,
        Err(refused) => return Ok(refused),
    };
    let row: Result<Option<(i64, Option<String>)>, sqlx::Error> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE username = ?")
            .bind(&username)
            .fetch_optional(pool.get_ref())
            .await;
    let (user, stored) = match row {
        Ok(Some((id, stored))) => (Some(id), stored),
        Ok(None) => (None, None),
        Err(e) => return Ok(unavailable(e)),
    };
    let password = c.into_inner().password;
    let ok = web::block(move || verify(&password, stored.as_deref()))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        let why = "unknown username or wrong password";
        return Ok(refuse(401, "wrong_credentials", why));
    };
    let recorded = session
        .record_first_factor(&passlock, user, "password")
        .await?;
    Ok(HttpResponse::Ok().json(recorded))
}

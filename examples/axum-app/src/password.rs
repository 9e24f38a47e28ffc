//! The app's own first factor: passwords (argon2) in its `users` table.
//!
//! `POST /api/password/signup {username,password}` creates a user with a
//! password and signs them in; `POST /api/password/login {username,password}`
//! verifies the password and records it with
//! [`PasslockSession::record_first_factor`]. For a user who has a passkey
//! (and the policy's `passkey_required_as_second_factor` on), that is a
//! partial session: the page then asks for the passkey (`stepUp()`).

use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::post};
use passlock_axum::passlock_core::{FlowError, Passlock};
use passlock_axum::{PasslockRejection, PasslockSession};
use serde::Deserialize;
use serde_json::json;
use sqlx::SqlitePool;

/// The password routes' state: the passlock and the app's database.
#[derive(Debug, Clone)]
pub(crate) struct PasswordState {
    pub(crate) passlock: Passlock<i64>,
    pub(crate) pool: SqlitePool,
}

/// `{username, password}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Credentials {
    username: String,
    password: String,
}

/// What goes wrong, as JSON `{"error","message"}` like the passlock routes.
#[derive(Debug)]
pub(crate) enum PasswordError {
    Invalid(&'static str),
    Taken,
    WrongCredentials,
    Internal,
    Passlock(PasslockRejection),
}

impl From<FlowError> for PasswordError {
    fn from(e: FlowError) -> Self {
        Self::Passlock(e.into())
    }
}

impl From<sqlx::Error> for PasswordError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "users table");
        Self::Internal
    }
}

impl IntoResponse for PasswordError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::Passlock(rejection) => return rejection.into_response(),
            Self::Invalid(why) => (StatusCode::BAD_REQUEST, "invalid_credentials", why),
            Self::Taken => (
                StatusCode::CONFLICT,
                "username_taken",
                "this username is taken",
            ),
            Self::WrongCredentials => (
                StatusCode::UNAUTHORIZED,
                "wrong_credentials",
                "unknown username or wrong password",
            ),
            Self::Internal => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the user store is unavailable",
            ),
        };
        (status, Json(json!({ "error": code, "message": message }))).into_response()
    }
}

/// The routes, on a state of their own.
pub(crate) fn routes<S>(state: PasswordState) -> Router<S> {
    Router::new()
        .route("/api/password/signup", post(signup))
        .route("/api/password/login", post(login))
        .with_state(state)
}

/// A same-origin check (login CSRF), then the checked credentials.
fn check(
    state: &PasswordState,
    headers: &HeaderMap,
    c: &Credentials,
) -> Result<String, PasswordError> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    state.passlock.check_origin(origin)?;
    let username = c.username.trim();
    if username.is_empty() || username.chars().count() > 64 {
        return Err(PasswordError::Invalid(
            "the username needs 1 to 64 characters",
        ));
    }
    if c.password.chars().count() < 8 || c.password.len() > 1024 {
        return Err(PasswordError::Invalid(
            "the password needs at least 8 characters",
        ));
    }
    Ok(username.to_owned())
}

/// Runs argon2 off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PasswordError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| PasswordError::Internal)
}

fn hash(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Internal)
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
    State(state): State<PasswordState>,
    session: PasslockSession<i64>,
    headers: HeaderMap,
    Json(c): Json<Credentials>,
) -> Result<Response, PasswordError> {
    let username = check(&state, &headers, &c)?;
    let password = c.password;
    let hashed = blocking(move || hash(&password)).await??;
    let row: Result<(i64,), sqlx::Error> =
        sqlx::query_as("INSERT INTO users (username, password_hash) VALUES (?, ?) RETURNING id")
            .bind(&username)
            .bind(hashed)
            .fetch_one(&state.pool)
            .await;
    let user = match row {
        Ok((id,)) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(PasswordError::Taken);
        }
        Err(e) => return Err(e.into()),
    };
    let recorded = session
        .record_first_factor(&state.passlock, user, "password")
        .await?;
    Ok((StatusCode::CREATED, Json(recorded)).into_response())
}

/// `POST /api/password/login`: records the password as the first factor;
/// the answer's `second_factor_required` tells the page to ask for the
/// passkey.
async fn login(
    State(state): State<PasswordState>,
    session: PasslockSession<i64>,
    headers: HeaderMap,
    Json(c): Json<Credentials>,
) -> Result<Response, PasswordError> {
    let username = check(&state, &headers, &c)?;
    let row: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE username = ?")
            .bind(&username)
            .fetch_optional(&state.pool)
            .await?;
    let (user, stored) = match row {
        Some((id, stored)) => (Some(id), stored),
        None => (None, None),
    };
    let password = c.password;
    let ok = blocking(move || verify(&password, stored.as_deref())).await?;
    let user = match (ok, user) {
        (true, Some(user)) => user,
        _ => return Err(PasswordError::WrongCredentials),
    };
    let recorded = session
        .record_first_factor(&state.passlock, user, "password")
        .await?;
    Ok(Json(recorded).into_response())
}

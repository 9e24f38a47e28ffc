//! The examples' own first factor: passwords (argon2) in the `users` table.
//!
//! The frameworks' handlers check the origin, call [`sign_up`] or [`log_in`]
//! and record the user with `PasslockSession::record_first_factor`; a
//! [`PasswordError`] becomes a JSON `{"error","message"}` answer with
//! [`PasswordError::status`], [`PasswordError::code`] and
//! [`PasswordError::message`].

use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use serde::Deserialize;
use sqlx::SqlitePool;

/// `{username, password}`.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    /// The username (trimmed, 1 to 64 characters).
    pub username: String,
    /// The password (8 characters to 1024 bytes).
    pub password: String,
}

/// What goes wrong with a password sign-up or login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordError {
    /// The username or password does not fit the rules (the reason).
    Invalid(&'static str),
    /// The username is taken.
    Taken,
    /// Unknown username or wrong password.
    WrongCredentials,
    /// The users table or the hashing failed (logged).
    Internal,
}

impl PasswordError {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::Taken => 409,
            Self::WrongCredentials => 401,
            Self::Internal => 503,
        }
    }

    /// The JSON `error` code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_credentials",
            Self::Taken => "username_taken",
            Self::WrongCredentials => "wrong_credentials",
            Self::Internal => "unavailable",
        }
    }

    /// The JSON `message`.
    pub fn message(self) -> &'static str {
        match self {
            Self::Invalid(why) => why,
            Self::Taken => "this username is taken",
            Self::WrongCredentials => "unknown username or wrong password",
            Self::Internal => "the user store is unavailable",
        }
    }
}

impl From<sqlx::Error> for PasswordError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "users table");
        Self::Internal
    }
}

/// The checked username of `c`.
fn check(c: &Credentials) -> Result<String, PasswordError> {
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

/// Creates a user with a password; their id.
pub async fn sign_up(pool: &SqlitePool, c: Credentials) -> Result<i64, PasswordError> {
    let username = check(&c)?;
    let password = c.password;
    let hashed = blocking(move || hash(&password)).await??;
    let row: Result<(i64,), sqlx::Error> =
        sqlx::query_as("INSERT INTO users (username, password_hash) VALUES (?, ?) RETURNING id")
            .bind(&username)
            .bind(hashed)
            .fetch_one(pool)
            .await;
    match row {
        Ok((id,)) => Ok(id),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(PasswordError::Taken),
        Err(e) => Err(e.into()),
    }
}

/// The id of the user `c` names, if the password is theirs.
pub async fn log_in(pool: &SqlitePool, c: Credentials) -> Result<i64, PasswordError> {
    let username = check(&c)?;
    let row: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE username = ?")
            .bind(&username)
            .fetch_optional(pool)
            .await?;
    let (user, stored) = match row {
        Some((id, stored)) => (Some(id), stored),
        None => (None, None),
    };
    let password = c.password;
    let ok = blocking(move || verify(&password, stored.as_deref())).await?;
    match (ok, user) {
        (true, Some(user)) => Ok(user),
        _ => Err(PasswordError::WrongCredentials),
    }
}

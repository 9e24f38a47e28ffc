//! The password routes on axum, the same as the actix example's:
//! `POST /api/password/signup {username,password}` creates a user with a
//! password and signs them in; `POST /api/password/login {username,password}`
//! verifies the password and records it with
//! [`PasslockSession::record_first_factor`]. For a user who has a passkey
//! (and the policy's `passkey_required_as_second_factor` on), that is a
//! partial session: the page then asks for the passkey (`stepUp()`). The
//! passwords themselves are [`example_support::password`]'s.

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::post};
use example_support::password::{self, Credentials, PasswordError};
use passlock_axum::passlock_core::{FlowError, Passlock};
use passlock_axum::{PasslockRejection, PasslockSession};
use serde_json::json;
use sqlx::SqlitePool;

/// The password routes' state: the passlock and the app's database.
#[derive(Debug, Clone)]
pub(crate) struct PasswordState {
    pub(crate) passlock: Passlock<i64>,
    pub(crate) pool: SqlitePool,
}

/// The passlock extractors find the [`Passlock`] in the state.
impl FromRef<PasswordState> for Passlock<i64> {
    fn from_ref(state: &PasswordState) -> Self {
        state.passlock.clone()
    }
}

/// What goes wrong, as JSON `{"error","message"}` like the passlock routes.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The password part refused.
    Password(PasswordError),
    /// The origin check or the session refused.
    Passlock(PasslockRejection),
}

impl From<FlowError> for Refusal {
    fn from(e: FlowError) -> Self {
        Self::Passlock(e.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Passlock(rejection) => rejection.into_response(),
            Self::Password(e) => {
                let status =
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let body = json!({ "error": e.code(), "message": e.message() });
                (status, Json(body)).into_response()
            }
        }
    }
}

/// The routes, on a state of their own.
pub(crate) fn routes<S>(state: PasswordState) -> Router<S> {
    Router::new()
        .route("/api/password/signup", post(signup))
        .route("/api/password/login", post(login))
        .with_state(state)
}

/// A same-origin check (login CSRF).
fn check_origin(passlock: &Passlock<i64>, headers: &HeaderMap) -> Result<(), Refusal> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    Ok(passlock.check_origin(origin)?)
}

/// `POST /api/password/signup`: a new user with a password (no passkey yet,
/// so the password alone signs them in).
async fn signup(
    State(state): State<PasswordState>,
    session: PasslockSession<i64>,
    headers: HeaderMap,
    Json(c): Json<Credentials>,
) -> Result<Response, Refusal> {
    check_origin(&state.passlock, &headers)?;
    let user = password::sign_up(&state.pool, c)
        .await
        .map_err(Refusal::Password)?;
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
) -> Result<Response, Refusal> {
    check_origin(&state.passlock, &headers)?;
    let user = password::log_in(&state.pool, c)
        .await
        .map_err(Refusal::Password)?;
    let recorded = session
        .record_first_factor(&state.passlock, user, "password")
        .await?;
    Ok(Json(recorded).into_response())
}

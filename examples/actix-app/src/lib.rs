//! The actix-web example app: passkey sign-in with the embedded provider,
//! SQLite for passkeys, ceremonies, sessions ([`SqlSessionStore`]) and the
//! app's own users table. The same page and API as the axum example.
//!
//! The page shows the three sign-in patterns (see `docs/patterns.md`):
//! passkey only, password or passkey, password then passkey (a user who has
//! a passkey signs in with the password and then verifies the passkey).
//!
//! `cargo run -p actix-app` serves <http://localhost:3001>. Tests build the
//! same app with [`build`] and [`Example::app`].

mod password;

use actix_web::body::MessageBody;
use actix_web::cookie::Key;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error, HttpResponse, web};
use std::sync::Arc;

use example_support::{INDEX_HTML, RECOVERY_JS, Stores, build_passlock, open_database};
use passlock_actix::passlock_core::recovery::{LogMailer, Mailer};
use passlock_actix::passlock_core::{Passlock, Policy};
use passlock_actix::{PasskeyUser, PasslockSessions, SignedInUser, SqlSessionStore, StepUp};
use serde_json::json;
use sqlx::SqlitePool;

pub use example_support::{BoxError, HostedSettings};

/// Where the app runs and what it stores into.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The origin browsers use, e.g. `http://localhost:3001` (the RP ID is
    /// its host).
    pub origin: String,
    /// The SQLite database, e.g. `sqlite://passlock-actix-example.db`;
    /// created if missing.
    pub database_url: String,
    /// Use hosted Passlock instead of the embedded provider.
    pub hosted: Option<HostedSettings>,
    /// Sends account recovery codes; [`LogMailer`] (the code in the
    /// log, for development) by default. The browser tests put a capturing
    /// mailer here.
    pub recovery_mailer: Arc<dyn Mailer>,
}

impl AppConfig {
    /// `http://localhost:{port}` with the database at `database_url`.
    pub fn localhost(port: u16, database_url: impl Into<String>) -> Self {
        Self {
            origin: format!("http://localhost:{port}"),
            database_url: database_url.into(),
            hosted: None,
            recovery_mailer: Arc::new(LogMailer),
        }
    }
}

/// The built parts of the app, shared by every worker.
#[derive(Clone)]
pub struct Example {
    /// The passlock configuration.
    pub passlock: Passlock<i64>,
    /// Sessions, in the same SQLite database.
    pub sessions: SqlSessionStore,
    /// The key that signs and encrypts session cookies.
    pub key: Key,
    /// The app's database (users and their password hashes).
    pub pool: SqlitePool,
}

impl std::fmt::Debug for Example {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Example")
            .field("passlock", &self.passlock)
            .field("sessions", &self.sessions)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Opens and migrates the database (users, passlock stores, sessions) and
/// builds the provider (embedded, or hosted Passlock when
/// [`AppConfig::hosted`] is set) and the [`Passlock`].
pub async fn build(config: AppConfig) -> Result<Example, BoxError> {
    let pool = open_database(&config.database_url).await?;
    let sessions = SqlSessionStore::sqlite(pool.clone());
    sessions.migrate().await?;
    let passlock = build_passlock(
        &Stores::sqlite(pool.clone()),
        &config.origin,
        config.hosted.as_ref(),
        Policy::default(),
        config.recovery_mailer.clone(),
    )
    .await?;
    // A new key per start signs everyone out on restart; load a fixed
    // 64-byte key from your secrets in a real deployment.
    Ok(Example {
        passlock,
        sessions,
        key: Key::generate(),
        pool,
    })
}

/// The app's routes: the page at `/`, `GET /api/me` (any complete sign-in),
/// `POST /api/sensitive` (a step-up within 60 seconds) and the passlock
/// scope at `/passkey`. [`Example::app`] adds the password routes
/// `POST /api/password/signup` and `POST /api/password/login`.
pub fn configure(passlock: Passlock<i64>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(passlock.clone()))
            .route("/", web::get().to(index))
            .route("/recovery.js", web::get().to(recovery_js))
            .route("/api/me", web::get().to(me))
            .route("/api/sensitive", web::post().to(sensitive))
            .service(passlock_actix::well_known(&passlock))
            .service(passlock_actix::scope(passlock));
    }
}

impl Example {
    /// The whole app for one worker (call it on a clone per worker): [`configure`] inside the session
    /// middleware.
    pub fn app(
        self,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody>,
            Error = Error,
            InitError = (),
        >,
    > {
        App::new()
            .configure(configure(self.passlock.clone()))
            .configure(password::routes(self.pool))
            .wrap(PasslockSessions::new(
                self.sessions,
                self.key,
                &self.passlock,
            ))
    }
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(INDEX_HTML)
}

async fn recovery_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(RECOVERY_JS)
}

async fn me(user: SignedInUser<i64>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "user_id": user.user_id }))
}

async fn sensitive(_: StepUp<60>, user: PasskeyUser<i64>) -> HttpResponse {
    tracing::info!(user_id = user.user_id, "sensitive action");
    HttpResponse::Ok().json(json!({ "done": true, "user_id": user.user_id }))
}

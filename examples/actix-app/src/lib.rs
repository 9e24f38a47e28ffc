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

use std::str::FromStr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::cookie::Key;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error, HttpResponse, web};
use passlock_actix::passlock_core::clock;
use passlock_actix::passlock_core::provider::PasskeyProvider;
use passlock_actix::passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
use passlock_actix::passlock_core::provider::passlock::{PasslockConfig, PasslockHosted};
use passlock_actix::passlock_core::secret::ApiKey;
use passlock_actix::passlock_core::store::sqlite::{
    SqliteAuthenticatorStore, SqliteCeremonyStore, SqliteCredentialStore, migrate,
};
use passlock_actix::passlock_core::{Passlock, SignUpError, SignUpHook, TenancyId};
use passlock_actix::{PasskeyUser, PasslockSessions, SignedInUser, SqlSessionStore, StepUp};
use serde_json::json;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// Any start-up failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

const RP_NAME: &str = "passlock example";

/// The page, shared with the axum example.
const INDEX_HTML: &str = include_str!("../../assets/index.html");

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
}

impl AppConfig {
    /// `http://localhost:{port}` with the database at `database_url`.
    pub fn localhost(port: u16, database_url: impl Into<String>) -> Self {
        Self {
            origin: format!("http://localhost:{port}"),
            database_url: database_url.into(),
            hosted: None,
        }
    }
}

/// The hosted Passlock tenancy to use instead of the embedded provider.
#[derive(Debug, Clone)]
pub struct HostedSettings {
    /// `PASSLOCK_TENANCY_ID`.
    pub tenancy_id: String,
    /// `PASSLOCK_API_KEY` (its `Debug` is redacted).
    pub api_key: ApiKey,
    /// `PASSLOCK_ENDPOINT`, default `https://api.passlock.dev`.
    pub endpoint: Option<String>,
}

impl HostedSettings {
    /// Reads `PASSLOCK_TENANCY_ID`, `PASSLOCK_API_KEY` and the optional
    /// `PASSLOCK_ENDPOINT`; `None` unless both of the first two are set.
    pub fn from_env() -> Option<Self> {
        let tenancy_id = std::env::var("PASSLOCK_TENANCY_ID").ok()?;
        let api_key = std::env::var("PASSLOCK_API_KEY").ok()?;
        Some(Self {
            tenancy_id,
            api_key: ApiKey::new(api_key),
            endpoint: std::env::var("PASSLOCK_ENDPOINT").ok(),
        })
    }
}

/// Creates users at sign-up in the app's own `users` table.
#[derive(Debug, Clone)]
struct Users(SqlitePool);

#[async_trait::async_trait]
impl SignUpHook<i64> for Users {
    async fn create_user(&self, username: &str) -> Result<i64, SignUpError> {
        let row: Result<(i64,), sqlx::Error> =
            sqlx::query_as("INSERT INTO users (username) VALUES (?) RETURNING id")
                .bind(username)
                .fetch_one(&self.0)
                .await;
        match row {
            Ok((id,)) => Ok(id),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(SignUpError::Refused("this username is taken".to_owned()))
            }
            Err(e) => Err(SignUpError::Backend(Box::new(e))),
        }
    }

    async fn abandon_user(&self, user: &i64) -> Result<(), SignUpError> {
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(user)
            .execute(&self.0)
            .await
            .map(|_| ())
            .map_err(|e| SignUpError::Backend(Box::new(e)))
    }
}

async fn open_pool(url: &str) -> Result<SqlitePool, BoxError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .foreign_keys(true);
    // An in-memory database lives in one connection: keep exactly one.
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let pool = SqlitePoolOptions::new()
        .max_connections(if in_memory { 1 } else { 8 })
        .min_connections(u32::from(in_memory))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await?;
    Ok(pool)
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
    let pool = open_pool(&config.database_url).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT
        )",
    )
    .execute(&pool)
    .await?;
    // Databases made before the password column: add it.
    let (has_hash,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM pragma_table_info('users') WHERE name = 'password_hash'",
    )
    .fetch_one(&pool)
    .await?;
    if has_hash == 0 {
        sqlx::query("ALTER TABLE users ADD COLUMN password_hash TEXT")
            .execute(&pool)
            .await?;
    }
    migrate(&pool).await?;
    let sessions = SqlSessionStore::sqlite(pool.clone());
    sessions.migrate().await?;

    let rp_id = url_host(&config.origin)?;
    let provider: Arc<dyn PasskeyProvider> = match &config.hosted {
        None => Arc::new(
            EmbeddedProvider::new(
                EmbeddedConfig::new(rp_id, RP_NAME, [config.origin.clone()]),
                Arc::new(SqliteCredentialStore::new(pool.clone())),
                Arc::new(SqliteCeremonyStore::new(pool.clone())),
            )
            .await?,
        ),
        Some(hosted) => {
            let mut settings =
                PasslockConfig::new(TenancyId::new(&hosted.tenancy_id)?, hosted.api_key.clone());
            if let Some(endpoint) = &hosted.endpoint {
                settings = settings.with_endpoint(endpoint.clone());
            }
            tracing::info!(tenancy_id = %hosted.tenancy_id, "using hosted Passlock");
            Arc::new(PasslockHosted::new(
                settings,
                rp_id,
                RP_NAME,
                clock::system(),
            )?)
        }
    };
    let passlock: Passlock<i64> = Passlock::builder(
        provider,
        Arc::new(SqliteAuthenticatorStore::<i64>::new(pool.clone())),
    )
    .origins([config.origin.clone()])
    .sign_up(Arc::new(Users(pool.clone())))
    .build()?;
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
            .route("/api/me", web::get().to(me))
            .route("/api/sensitive", web::post().to(sensitive))
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

fn url_host(origin: &str) -> Result<String, BoxError> {
    let rest = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or("the origin has no scheme")?;
    let host = rest.split([':', '/']).next().unwrap_or_default();
    if host.is_empty() {
        return Err("the origin has no host".into());
    }
    Ok(host.to_owned())
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(INDEX_HTML)
}

async fn me(user: SignedInUser<i64>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "user_id": user.user_id }))
}

async fn sensitive(_: StepUp<60>, user: PasskeyUser<i64>) -> HttpResponse {
    tracing::info!(user_id = user.user_id, "sensitive action");
    HttpResponse::Ok().json(json!({ "done": true, "user_id": user.user_id }))
}

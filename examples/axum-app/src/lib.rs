//! The axum example app: passkey sign-in with the embedded provider, SQLite
//! for passkeys, ceremonies, sessions and the app's own users table.
//!
//! The page shows the three sign-in patterns (see `docs/patterns.md`):
//! passkey only; password *or* passkey (a password user without a passkey,
//! or every user with [`AppConfig::passkey_required_as_second_factor`] off);
//! password *then* passkey (a user who has a passkey and signs in with the
//! password: the page asks for the passkey as a second factor).
//!
//! `cargo run -p axum-app` serves <http://localhost:3000>
//! (`PASSWORD_OR_PASSKEY=1` turns the second-factor requirement off). Tests
//! build the same app with [`build_app`] on any port.
//!
//! With a `postgres://` database URL every store (passkeys, ceremonies, the
//! users table and, unless Redis is given, sessions) is in PostgreSQL; with
//! [`AppConfig::redis_url`] sessions are in Redis. Several instances over
//! the same PostgreSQL and Redis serve the same users (see `scripts/soak`).
//! The password routes are mounted on SQLite only.

mod password;

use std::str::FromStr;
use std::sync::Arc;

use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use passlock_axum::passlock_core::clock;
use passlock_axum::passlock_core::provider::PasskeyProvider;
use passlock_axum::passlock_core::provider::embedded::{CeremonyStore, CredentialStore};
use passlock_axum::passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
use passlock_axum::passlock_core::provider::passlock::{PasslockConfig, PasslockHosted};
use passlock_axum::passlock_core::secret::ApiKey;
use passlock_axum::passlock_core::store::postgres::{
    self, PgAuthenticatorStore, PgCeremonyStore, PgCredentialStore,
};
use passlock_axum::passlock_core::store::sqlite::{
    SqliteAuthenticatorStore, SqliteCeremonyStore, SqliteCredentialStore, migrate,
};
use passlock_axum::passlock_core::{
    AuthenticatorStore, Passlock, Policy, SignUpError, SignUpHook, TenancyId,
};
use passlock_axum::{PasskeyUser, SignedInUser, StepUp};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration;
use tower_sessions::{Expiry, SessionManagerLayer, SessionStore};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config as RedisConfig, Pool};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// Any start-up failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

const RP_NAME: &str = "passlock example";

/// The page, shared with the actix example.
const INDEX_HTML: &str = include_str!("../../assets/index.html");

/// Where the app runs and what it stores into.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The origin browsers use, e.g. `http://localhost:3000` (the RP ID is
    /// its host).
    pub origin: String,
    /// The database: SQLite (e.g. `sqlite://passlock-example.db`, created
    /// if missing) or PostgreSQL (`postgres://...`, the database must exist).
    pub database_url: String,
    /// Keep sessions in Redis (e.g. `redis://127.0.0.1:6379`) instead of
    /// the database.
    pub redis_url: Option<String>,
    /// Use hosted Passlock instead of the embedded provider.
    pub hosted: Option<HostedSettings>,
    /// Users who have a passkey must use it after their password (the
    /// policy switch of the same name; default `true`).
    pub passkey_required_as_second_factor: bool,
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

impl AppConfig {
    /// `http://localhost:{port}` with the database at `database_url`.
    pub fn localhost(port: u16, database_url: impl Into<String>) -> Self {
        Self {
            origin: format!("http://localhost:{port}"),
            database_url: database_url.into(),
            redis_url: None,
            hosted: None,
            passkey_required_as_second_factor: true,
        }
    }
}

/// The app's database.
#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Creates users at sign-up in the app's own `users` table.
#[derive(Debug, Clone)]
struct Users(Db);

#[async_trait::async_trait]
impl SignUpHook<i64> for Users {
    async fn create_user(&self, username: &str) -> Result<i64, SignUpError> {
        let row: Result<(i64,), sqlx::Error> = match &self.0 {
            Db::Sqlite(pool) => {
                sqlx::query_as("INSERT INTO users (username) VALUES (?) RETURNING id")
                    .bind(username)
                    .fetch_one(pool)
                    .await
            }
            Db::Postgres(pool) => {
                sqlx::query_as("INSERT INTO users (username) VALUES ($1) RETURNING id")
                    .bind(username)
                    .fetch_one(pool)
                    .await
            }
        };
        match row {
            Ok((id,)) => Ok(id),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(SignUpError::Refused("this username is taken".to_owned()))
            }
            Err(e) => Err(SignUpError::Backend(Box::new(e))),
        }
    }

    async fn abandon_user(&self, user: &i64) -> Result<(), SignUpError> {
        let done = match &self.0 {
            Db::Sqlite(pool) => sqlx::query("DELETE FROM users WHERE id = ?")
                .bind(user)
                .execute(pool)
                .await
                .map(|_| ()),
            Db::Postgres(pool) => sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user)
                .execute(pool)
                .await
                .map(|_| ()),
        };
        done.map_err(|e| SignUpError::Backend(Box::new(e)))
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

/// The stores of one database, migrated; sessions are built separately.
struct Stores {
    users: Db,
    credentials: Arc<dyn CredentialStore>,
    ceremonies: Arc<dyn CeremonyStore>,
    authenticators: Arc<dyn AuthenticatorStore<i64>>,
}

async fn open_stores(url: &str) -> Result<Stores, BoxError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await?;
        postgres::migrate(&pool).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS users (
                id BIGSERIAL PRIMARY KEY,
                username TEXT NOT NULL UNIQUE,
                password_hash TEXT
            )",
        )
        .execute(&pool)
        .await?;
        return Ok(Stores {
            users: Db::Postgres(pool.clone()),
            credentials: Arc::new(PgCredentialStore::new(pool.clone())),
            ceremonies: Arc::new(PgCeremonyStore::new(pool.clone())),
            authenticators: Arc::new(PgAuthenticatorStore::<i64>::new(pool)),
        });
    }
    let pool = open_pool(url).await?;
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
    Ok(Stores {
        users: Db::Sqlite(pool.clone()),
        credentials: Arc::new(SqliteCredentialStore::new(pool.clone())),
        ceremonies: Arc::new(SqliteCeremonyStore::new(pool.clone())),
        authenticators: Arc::new(SqliteAuthenticatorStore::<i64>::new(pool)),
    })
}

/// Builds the whole app: stores (migrated), provider (embedded, or hosted
/// Passlock when [`AppConfig::hosted`] is set), passlock routes under
/// `/passkey`, the page at `/`, `GET /api/me` (any complete sign-in),
/// `POST /api/sensitive` (a passkey step-up within 60 seconds), the password
/// routes `POST /api/password/signup` and `POST /api/password/login` (on
/// SQLite), and the session layer.
pub async fn build_app(config: AppConfig) -> Result<Router, BoxError> {
    let stores = open_stores(&config.database_url).await?;

    let rp_id = url_host(&config.origin)?;
    let provider: Arc<dyn PasskeyProvider> = match &config.hosted {
        None => Arc::new(
            EmbeddedProvider::new(
                EmbeddedConfig::new(rp_id, RP_NAME, [config.origin.clone()]),
                stores.credentials.clone(),
                stores.ceremonies.clone(),
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
    let mut policy = Policy::default();
    policy.passkey_required_as_second_factor = config.passkey_required_as_second_factor;
    let passlock: Passlock<i64> = Passlock::builder(provider, stores.authenticators.clone())
        .origins([config.origin.clone()])
        .sign_up(Arc::new(Users(stores.users.clone())))
        .policy(policy)
        .build()?;

    let mut routes = Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route("/api/me", get(me))
        .route("/api/sensitive", post(sensitive));
    if let Db::Sqlite(pool) = &stores.users {
        routes = routes.merge(password::routes(password::PasswordState {
            passlock: passlock.clone(),
            pool: pool.clone(),
        }));
    }
    let routes = routes
        .merge(passlock_axum::router(passlock.clone()))
        .with_state(passlock.clone());
    match (&config.redis_url, stores.users) {
        (Some(url), _) => {
            let pool = Pool::new(RedisConfig::from_url(url)?, None, None, None, 4)?;
            let _connection = pool.connect();
            pool.wait_for_connect().await?;
            Ok(with_sessions(routes, RedisStore::new(pool), &passlock))
        }
        (None, Db::Postgres(pool)) => {
            let store = PostgresStore::new(pool);
            store.migrate().await?;
            Ok(with_sessions(routes, store, &passlock))
        }
        (None, Db::Sqlite(pool)) => {
            let store = SqliteStore::new(pool);
            store.migrate().await?;
            Ok(with_sessions(routes, store, &passlock))
        }
    }
}

fn with_sessions<S: SessionStore + Clone>(
    routes: Router,
    store: S,
    passlock: &Passlock<i64>,
) -> Router {
    let layer = SessionManagerLayer::new(store)
        .with_secure(passlock.secure_cookies())
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(Duration::hours(12)));
    routes.layer(layer)
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

async fn me(user: SignedInUser<i64>) -> Json<Value> {
    Json(json!({ "user_id": user.user_id }))
}

async fn sensitive(_: StepUp<60>, user: PasskeyUser<i64>) -> Json<Value> {
    tracing::info!(user_id = user.user_id, "sensitive action");
    Json(json!({ "done": true, "user_id": user.user_id }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use passlock_core::testing::authenticator::SoftAuthenticator;
    use tower::ServiceExt;

    use super::*;

    const ORIGIN: &str = "http://localhost:3000";

    /// One browser: sends JSON with the origin and keeps the session cookie.
    struct Browser {
        app: Router,
        cookie: Option<String>,
    }

    impl Browser {
        async fn send(&mut self, method: &str, path: &str, body: Value) -> (u16, Value) {
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .header("origin", ORIGIN)
                .header("content-type", "application/json");
            if let Some(c) = &self.cookie {
                req = req.header("cookie", c);
            }
            let req = req.body(Body::from(body.to_string())).unwrap();
            let res = self.app.clone().oneshot(req).await.unwrap();
            if let Some(set) = res.headers().get("set-cookie") {
                let set = set.to_str().unwrap();
                self.cookie = Some(set.split(';').next().unwrap().to_owned());
            }
            let status = res.status().as_u16();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }

        async fn sign_up(&mut self, auth: &mut SoftAuthenticator, username: &str) -> (u16, Value) {
            let (_, a) = self
                .send(
                    "POST",
                    "/passkey/registration/authorize",
                    json!({ "username": username }),
                )
                .await;
            let base = format!(
                "{}/v2/{}/passkey",
                a["endpoint"].as_str().unwrap(),
                a["tenancyId"].as_str().unwrap()
            );
            let (_, o) = self
                .send(
                    "POST",
                    &format!("{base}/registration/options"),
                    json!({ "registrationToken": a["registrationToken"] }),
                )
                .await;
            let response = auth.create(&o["optionsJSON"]).await.unwrap();
            let (_, v) = self
                .send(
                    "POST",
                    &format!("{base}/registration/verification"),
                    json!({ "response": response, "sessionToken": o["sessionToken"] }),
                )
                .await;
            self.send("POST", "/passkey/register", json!({ "code": v["code"] }))
                .await
        }

        async fn step_up(&mut self, auth: &mut SoftAuthenticator) -> (u16, Value) {
            let (_, a) = self
                .send(
                    "POST",
                    "/passkey/authentication/authorize",
                    json!({ "purpose": "step_up" }),
                )
                .await;
            let base = format!(
                "{}/v2/{}/passkey",
                a["endpoint"].as_str().unwrap(),
                a["tenancyId"].as_str().unwrap()
            );
            let (_, o) = self
                .send(
                    "POST",
                    &format!("{base}/authentication/options"),
                    json!({ "authenticationToken": a["authenticationToken"] }),
                )
                .await;
            let response = auth.get(&o["optionsJSON"]).await.unwrap();
            let (_, v) = self
                .send(
                    "POST",
                    &format!("{base}/authentication/verification"),
                    json!({ "response": response, "sessionToken": o["sessionToken"] }),
                )
                .await;
            self.send("POST", "/passkey/step-up", json!({ "code": v["code"] }))
                .await
        }
    }

    /// Password sign-up signs in a user without a passkey; once they have a
    /// passkey, the password is only a first factor and a step-up completes
    /// it.
    #[tokio::test]
    async fn password_then_passkey() {
        let app = build_app(AppConfig::localhost(3000, "sqlite::memory:"))
            .await
            .unwrap();
        let mut b = Browser {
            app: app.clone(),
            cookie: None,
        };
        let creds = json!({ "username": "carol", "password": "correct horse" });
        let (status, r) = b.send("POST", "/api/password/signup", creds.clone()).await;
        assert_eq!(status, 201, "{r}");
        assert_eq!(r["second_factor_required"], false);
        let user = r["user_id"].as_str().unwrap().to_owned();
        let (status, me) = b.send("GET", "/api/me", Value::Null).await;
        assert_eq!((status, me["user_id"].to_string()), (200, user.clone()));
        let (status, r) = b.send("POST", "/api/password/signup", creds.clone()).await;
        assert_eq!((status, r["error"].clone()), (409, json!("username_taken")));

        // Add a passkey (allowed without a step-up: the user has none yet).
        let mut key = SoftAuthenticator::new(ORIGIN);
        let (status, added) = b.sign_up(&mut key, "carol").await;
        assert_eq!(status, 201, "{added}");
        assert_eq!(added["user_id"], user.as_str());

        let mut later = Browser {
            app: app.clone(),
            cookie: None,
        };
        let wrong = json!({ "username": "carol", "password": "wrong horse" });
        let (status, r) = later.send("POST", "/api/password/login", wrong).await;
        assert_eq!(
            (status, r["error"].clone()),
            (401, json!("wrong_credentials"))
        );
        let nobody = json!({ "username": "nobody", "password": "correct horse" });
        assert_eq!(
            later.send("POST", "/api/password/login", nobody).await.0,
            401
        );
        let (status, r) = later.send("POST", "/api/password/login", creds).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["second_factor_required"], true);
        assert_eq!(later.send("GET", "/api/me", Value::Null).await.0, 401);
        let (status, s) = later.send("GET", "/passkey/session", Value::Null).await;
        assert_eq!(
            (status, s["second_factor_pending"].clone()),
            (200, json!(true))
        );
        let (status, r) = later.step_up(&mut key).await;
        assert_eq!(status, 200, "{r}");
        let (status, me) = later.send("GET", "/api/me", Value::Null).await;
        assert_eq!((status, me["user_id"].to_string()), (200, user));
        let (status, done) = later.send("POST", "/api/sensitive", json!({})).await;
        assert_eq!((status, done["done"].clone()), (200, json!(true)));
    }

    #[tokio::test]
    async fn the_example_signs_up_users_into_its_own_table() {
        let app = build_app(AppConfig::localhost(3000, "sqlite::memory:"))
            .await
            .unwrap();
        let mut alice = Browser {
            app: app.clone(),
            cookie: None,
        };
        let page = app
            .clone()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(alice.send("GET", "/api/me", Value::Null).await.0, 401);

        let (status, signed_in) = alice
            .sign_up(&mut SoftAuthenticator::new(ORIGIN), "alice")
            .await;
        assert_eq!(status, 201, "{signed_in}");
        let (status, me) = alice.send("GET", "/api/me", Value::Null).await;
        assert_eq!(status, 200);
        assert_eq!(
            me["user_id"].to_string(),
            signed_in["user_id"].as_str().unwrap()
        );
        let (status, done) = alice.send("POST", "/api/sensitive", json!({})).await;
        assert_eq!((status, done["done"].clone()), (200, json!(true)));

        let mut mallory = Browser { app, cookie: None };
        let (status, refused) = mallory
            .sign_up(&mut SoftAuthenticator::new(ORIGIN), "alice")
            .await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["error"], "sign_up_refused");
        assert_eq!(mallory.send("GET", "/api/me", Value::Null).await.0, 401);
    }
}

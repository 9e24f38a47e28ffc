//! What the axum and actix-web example apps share, free of either framework:
//! the database (SQLite, or PostgreSQL: the app's `users` table and the
//! passlock stores, see [`open_stores`]), the sign-up hook that creates
//! users, the provider (embedded, or hosted Passlock) and [`Passlock`], and
//! password sign-up and login ([`password`]). Each example keeps only its
//! routes, handlers and session wiring (sessions in the database or, for the
//! axum example, in Redis).

#![forbid(unsafe_code)]

pub mod password;

use std::sync::Arc;

use passlock_core::clock;
use passlock_core::provider::PasskeyProvider;
use passlock_core::provider::embedded::{
    CeremonyStore, CredentialStore, EmbeddedConfig, EmbeddedProvider,
};
use passlock_core::provider::passlock::{PasslockConfig, PasslockHosted};
use passlock_core::recovery::{
    EmailAddress, Mailer, Recovery, RecoveryChallenges, RecoveryDirectory,
};
use passlock_core::secret::ApiKey;
use passlock_core::store::ReplayCache;
use passlock_core::store::RevocationStore;
use passlock_core::store::postgres::{
    self, PgAuthenticatorStore, PgCeremonyStore, PgCredentialStore, PgRecoveryChallenges,
    PgReplayCache, PgRevocationStore,
};
use passlock_core::store::sqlite::{
    SqliteAuthenticatorStore, SqliteCeremonyStore, SqliteCredentialStore, SqliteRecoveryChallenges,
    SqliteReplayCache, SqliteRevocationStore, migrate,
};
use passlock_core::{
    AuthenticatorStore, Passlock, Policy, SignUpError, SignUpHook, StoreError, TenancyId,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, SqlitePool};

/// Any start-up failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The relying party's display name.
pub const RP_NAME: &str = "passlock example";

/// The page both examples serve at `/`.
pub const INDEX_HTML: &str = include_str!("../../assets/index.html");

/// The account recovery view the page loads from `/recovery.js`.
pub const RECOVERY_JS: &str = include_str!("../../assets/recovery.js");

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

/// The app's database.
#[derive(Debug, Clone)]
pub enum Db {
    /// SQLite (`sqlite:...` URLs).
    Sqlite(SqlitePool),
    /// PostgreSQL (`postgres://` or `postgresql://` URLs).
    Postgres(PgPool),
}

/// Creates users at sign-up in the app's own `users` table.
#[derive(Debug, Clone)]
pub struct Users(pub Db);

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

    /// A taken name is refused before the browser creates a passkey.
    async fn username_available(&self, username: &str) -> Result<bool, SignUpError> {
        let taken: Result<Option<(i64,)>, sqlx::Error> = match &self.0 {
            Db::Sqlite(pool) => {
                sqlx::query_as("SELECT id FROM users WHERE username = ?")
                    .bind(username)
                    .fetch_optional(pool)
                    .await
            }
            Db::Postgres(pool) => {
                sqlx::query_as("SELECT id FROM users WHERE username = $1")
                    .bind(username)
                    .fetch_optional(pool)
                    .await
            }
        };
        taken
            .map(|row| row.is_none())
            .map_err(|e| SignUpError::Backend(Box::new(e)))
    }

    /// The username the authenticator shows for a passkey the user adds.
    async fn username_of(&self, user: &i64) -> Result<Option<String>, SignUpError> {
        let row: Result<Option<(String,)>, sqlx::Error> = match &self.0 {
            Db::Sqlite(pool) => {
                sqlx::query_as("SELECT username FROM users WHERE id = ?")
                    .bind(user)
                    .fetch_optional(pool)
                    .await
            }
            Db::Postgres(pool) => {
                sqlx::query_as("SELECT username FROM users WHERE id = $1")
                    .bind(user)
                    .fetch_optional(pool)
                    .await
            }
        };
        row.map(|r| r.map(|(name,)| name))
            .map_err(|e| SignUpError::Backend(Box::new(e)))
    }
}

/// Finds users by address for account recovery. The example has no email
/// column: a user who wants recovery signs up with their address as the
/// username.
#[derive(Debug, Clone)]
pub struct UsersByEmail(pub Db);

#[async_trait::async_trait]
impl RecoveryDirectory<i64> for UsersByEmail {
    async fn user_by_email(&self, email: &EmailAddress) -> Result<Option<i64>, StoreError> {
        let row: Result<Option<(i64,)>, sqlx::Error> = match &self.0 {
            Db::Sqlite(pool) => {
                sqlx::query_as("SELECT id FROM users WHERE username = ?")
                    .bind(email.as_str())
                    .fetch_optional(pool)
                    .await
            }
            Db::Postgres(pool) => {
                sqlx::query_as("SELECT id FROM users WHERE username = $1")
                    .bind(email.as_str())
                    .fetch_optional(pool)
                    .await
            }
        };
        row.map(|r| r.map(|(id,)| id)).map_err(StoreError::backend)
    }
}

/// The stores of one database, migrated (sessions are the caller's).
#[derive(Clone)]
pub struct Stores {
    /// The app's database, which holds its `users` table.
    pub users: Db,
    /// The embedded provider's passkeys.
    pub credentials: Arc<dyn CredentialStore>,
    /// The embedded provider's pending ceremonies.
    pub ceremonies: Arc<dyn CeremonyStore>,
    /// Which authenticator belongs to which user.
    pub authenticators: Arc<dyn AuthenticatorStore<i64>>,
    /// The hosted provider's id_token replay cache, in the shared database:
    /// every instance on this database refuses an id_token (or the code of
    /// its ceremony) another one already accepted.
    pub replay: Arc<dyn ReplayCache>,
    /// Logout markers, in the database every instance shares (a logout
    /// on one instance ends the session on all, and survives restarts).
    pub revocations: Arc<dyn RevocationStore>,
    /// Account recovery challenges, shared by every instance.
    pub recovery: Arc<dyn RecoveryChallenges>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

impl Stores {
    /// The stores on a SQLite database [`open_database`] opened.
    pub fn sqlite(pool: SqlitePool) -> Self {
        Self {
            users: Db::Sqlite(pool.clone()),
            credentials: Arc::new(SqliteCredentialStore::new(pool.clone())),
            ceremonies: Arc::new(SqliteCeremonyStore::new(pool.clone())),
            replay: Arc::new(SqliteReplayCache::new(pool.clone())),
            revocations: Arc::new(SqliteRevocationStore::new(pool.clone())),
            recovery: Arc::new(SqliteRecoveryChallenges::new(pool.clone())),
            authenticators: Arc::new(SqliteAuthenticatorStore::<i64>::new(pool)),
        }
    }

    /// The stores on a PostgreSQL database [`open_postgres`] opened.
    pub fn postgres(pool: PgPool) -> Self {
        Self {
            users: Db::Postgres(pool.clone()),
            credentials: Arc::new(PgCredentialStore::new(pool.clone())),
            ceremonies: Arc::new(PgCeremonyStore::new(pool.clone())),
            replay: Arc::new(PgReplayCache::new(pool.clone())),
            revocations: Arc::new(PgRevocationStore::new(pool.clone())),
            recovery: Arc::new(PgRecoveryChallenges::new(pool.clone())),
            authenticators: Arc::new(PgAuthenticatorStore::<i64>::new(pool)),
        }
    }
}

/// Opens the database at `url`, PostgreSQL for `postgres://` and
/// `postgresql://` URLs ([`open_postgres`]), else SQLite
/// ([`open_database`]), and its stores.
pub async fn open_stores(url: &str) -> Result<Stores, BoxError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Stores::postgres(open_postgres(url).await?))
    } else {
        Ok(Stores::sqlite(open_database(url).await?))
    }
}

/// Connects to the PostgreSQL database at `url` (it must exist) and migrates
/// the passlock stores and the `users` table. The session store is the
/// caller's to migrate.
pub async fn open_postgres(url: &str) -> Result<PgPool, BoxError> {
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
    Ok(pool)
}

/// Opens the SQLite database at `url` as passlock's production setup does
/// ([`passlock_core::setup::open_sqlite`]: created if missing, WAL, a busy
/// timeout; an in-memory one keeps exactly one connection) and migrates the
/// `users` table and the passlock stores. The session store is the caller's
/// to migrate.
pub async fn open_database(url: &str) -> Result<SqlitePool, BoxError> {
    let pool = passlock_core::setup::open_sqlite(url).await?;
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
    Ok(pool)
}

/// Builds the provider (embedded on `stores`, or hosted Passlock when
/// `hosted` is set, with the database's shared replay cache) and the
/// [`Passlock`] for `origin`, with [`Users`] as its sign-up hook, account recovery through `mailer` ([`UsersByEmail`]) and
/// `policy`. With `PASSLOCK_TRUSTED_PROXY_HEADER` set (for example
/// `x-forwarded-for`, behind a proxy that always sets it), the client
/// address for throttling is taken from that header. With
/// `PASSLOCK_RELATED_ORIGINS` set (comma-separated origins on other
/// domains, e.g. `https://example.co.uk`), the embedded provider accepts
/// ceremonies from them too and lists them at `/.well-known/webauthn`.
pub async fn build_passlock(
    stores: &Stores,
    origin: &str,
    hosted: Option<&HostedSettings>,
    policy: Policy,
    mailer: Arc<dyn Mailer>,
) -> Result<Passlock<i64>, BoxError> {
    let rp_id = url_host(origin)?;
    let provider: Arc<dyn PasskeyProvider> = match hosted {
        None => Arc::new(
            EmbeddedProvider::new(
                EmbeddedConfig::new(rp_id, RP_NAME, [origin.to_owned()]).with_related_origins(
                    std::env::var("PASSLOCK_RELATED_ORIGINS")
                        .unwrap_or_default()
                        .split(',')
                        .map(str::trim)
                        .filter(|o| !o.is_empty())
                        .map(str::to_owned),
                ),
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
            // The instances share the database, so they share the replay
            // cache: an id_token is accepted once across all of them.
            Arc::new(
                PasslockHosted::new(settings, rp_id, RP_NAME, clock::system())?
                    .with_replay_cache(stores.replay.clone()),
            )
        }
    };
    let mut builder = Passlock::builder(provider, stores.authenticators.clone())
        .origins([origin.to_owned()])
        .sign_up(Arc::new(Users(stores.users.clone())))
        .revocations(stores.revocations.clone())
        .recovery(
            Recovery::new(mailer, Arc::new(UsersByEmail(stores.users.clone())))
                .challenges(stores.recovery.clone()),
        )
        .policy(policy);
    if let Ok(header) = std::env::var("PASSLOCK_TRUSTED_PROXY_HEADER") {
        builder = builder.trusted_proxy_header(header);
    }
    let passlock = builder.build()?;
    Ok(passlock)
}

/// The host of `origin` (`http://localhost:3000` → `localhost`): the RP ID.
pub fn url_host(origin: &str) -> Result<String, BoxError> {
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

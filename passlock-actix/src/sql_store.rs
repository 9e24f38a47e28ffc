//! [`SqlSessionStore`]: an actix-session store over SQLite or PostgreSQL.

use std::collections::HashMap;
use std::fmt::Write as _;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use passlock_core::clock::{self, SharedClock};
#[cfg(feature = "postgres")]
use sqlx::PgPool;
#[cfg(feature = "sqlite")]
use sqlx::SqlitePool;

/// A server-side actix-session store in a `passlock_actix_session` table of
/// a SQLite or PostgreSQL database (columns `id`, `state` as JSON text,
/// `expires_at` in epoch milliseconds).
///
/// Session keys are 256 random bits (hex in the cookie); the table holds
/// only their SHA-256, so a leaked table does not hand out sessions. Expired
/// rows are never loaded; [`delete_expired`](Self::delete_expired) removes
/// them. Run [`migrate`](Self::migrate) once at start-up.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use passlock_actix::SqlSessionStore;
///
/// let pool = sqlx::SqlitePool::connect("sqlite://app.db?mode=rwc").await?;
/// let store = SqlSessionStore::sqlite(pool);
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqlSessionStore {
    pool: Pool,
    clock: SharedClock,
}

#[derive(Debug, Clone)]
enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to whichever pool the store has.
macro_rules! on_pool {
    ($self:ident, $p:ident => $body:expr) => {
        match &$self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite($p) => $body,
            #[cfg(feature = "postgres")]
            Pool::Postgres($p) => $body,
        }
    };
}

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS passlock_actix_session (
        id TEXT PRIMARY KEY NOT NULL,
        state TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS passlock_actix_session_expires_at
        ON passlock_actix_session (expires_at)",
];

impl SqlSessionStore {
    /// A store in a SQLite database.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn sqlite(pool: SqlitePool) -> Self {
        Self {
            pool: Pool::Sqlite(pool),
            clock: clock::system(),
        }
    }

    /// A store in a PostgreSQL database.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn postgres(pool: PgPool) -> Self {
        Self {
            pool: Pool::Postgres(pool),
            clock: clock::system(),
        }
    }

    /// Uses `clock` for expiry (tests use a `ManualClock`).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Creates the `passlock_actix_session` table and its index; idempotent.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        for statement in SCHEMA {
            on_pool!(self, p => sqlx::query(statement).execute(p).await.map(|_| ()))?;
        }
        Ok(())
    }

    /// Deletes expired sessions; returns how many.
    pub async fn delete_expired(&self) -> Result<u64, sqlx::Error> {
        let now = self.clock.now_millis();
        on_pool!(self, p => sqlx::query("DELETE FROM passlock_actix_session WHERE expires_at <= $1")
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
    }

    fn expiry(&self, ttl: &Duration) -> i64 {
        let ttl = i64::try_from(ttl.whole_milliseconds()).unwrap_or(i64::MAX);
        self.clock.now_millis().saturating_add(ttl)
    }

    async fn insert(&self, state: &str, ttl: &Duration) -> anyhow::Result<SessionKey> {
        let mut bytes = [0_u8; 32];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        let key = hex(&bytes);
        let expires_at = self.expiry(ttl);
        let id = digest(&key);
        on_pool!(self, p => sqlx::query(
            "INSERT INTO passlock_actix_session (id, state, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&id)
        .bind(state)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(SessionKey::try_from(key)?)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The stored id of a session key: its SHA-256.
fn digest(key: &str) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes()).as_ref())
}

impl SessionStore for SqlSessionStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let id = digest(session_key.as_ref());
        let now = self.clock.now_millis();
        let row: Option<(String,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT state FROM passlock_actix_session WHERE id = $1 AND expires_at > $2",
        )
        .bind(&id)
        .bind(now)
        .fetch_optional(p)
        .await)
        .map_err(|e| LoadError::Other(e.into()))?;
        row.map(|(state,)| serde_json::from_str(&state))
            .transpose()
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let state = serde_json::to_string(&session_state)
            .map_err(|e| SaveError::Serialization(e.into()))?;
        self.insert(&state, ttl).await.map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let state = serde_json::to_string(&session_state)
            .map_err(|e| UpdateError::Serialization(e.into()))?;
        let id = digest(session_key.as_ref());
        let now = self.clock.now_millis();
        let expires_at = self.expiry(ttl);
        let updated = on_pool!(self, p => sqlx::query(
            "UPDATE passlock_actix_session SET state = $2, expires_at = $3
             WHERE id = $1 AND expires_at > $4",
        )
        .bind(&id)
        .bind(&state)
        .bind(expires_at)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| UpdateError::Other(e.into()))?;
        if updated > 0 {
            return Ok(session_key);
        }
        // Expired or deleted meanwhile: start a new session, as actix-session's
        // Redis store does.
        self.insert(&state, ttl).await.map_err(UpdateError::Other)
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        let id = digest(session_key.as_ref());
        let expires_at = self.expiry(ttl);
        on_pool!(self, p => sqlx::query(
            "UPDATE passlock_actix_session SET expires_at = $2 WHERE id = $1",
        )
        .bind(&id)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let id = digest(session_key.as_ref());
        on_pool!(self, p => sqlx::query("DELETE FROM passlock_actix_session WHERE id = $1")
            .bind(&id)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}

//! SQLite stores (feature `sqlite`): [`SqliteAuthenticatorStore`], the
//! embedded provider's [`SqliteCredentialStore`] and [`SqliteCeremonyStore`]
//! (feature `embedded` too), the id_token [`SqliteReplayCache`] and the logout markers' [`SqliteRevocationStore`].
//!
//! Every store takes a [`SqlitePool`]; run [`migrate`] once at start-up to
//! create the `passlock_*` tables (it is idempotent). Timestamps are stored
//! as epoch milliseconds, booleans as `0`/`1`.
//!
//! For several connections writing one database file, open it in WAL mode
//! with a busy timeout:
//!
//! ```no_run
//! use std::str::FromStr;
//! use std::time::Duration;
//! use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
//! use passlock_core::store::sqlite::{self, SqliteAuthenticatorStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = SqliteConnectOptions::from_str("sqlite://app.db")?
//!     .create_if_missing(true)
//!     .journal_mode(SqliteJournalMode::Wal)
//!     .busy_timeout(Duration::from_secs(5));
//! let pool = SqlitePoolOptions::new().connect_with(options).await?;
//! sqlite::migrate(&pool).await?;
//! let store: SqliteAuthenticatorStore<i64> = SqliteAuthenticatorStore::new(pool.clone());
//! # let _ = store;
//! # Ok(())
//! # }
//! ```

use sqlx::SqlitePool;

use super::sql_common::sql_stores;
use super::sql_recovery::sql_recovery_store;

sql_stores! {
    backend: "SQLite",
    module: "crate::store::sqlite",
    pool: SqlitePool,
    authenticator: SqliteAuthenticatorStore,
    credential: SqliteCredentialStore,
    ceremony: SqliteCeremonyStore,
    replay: SqliteReplayCache,
    revocation: SqliteRevocationStore,
}

sql_recovery_store! {
    backend: "SQLite",
    module: "crate::store::sqlite",
    pool: SqlitePool,
    name: SqliteRecoveryChallenges,
}

/// The schema version [`migrate`] brings a database to.
pub const SCHEMA_VERSION: i64 = 4;

/// The recovery schema's version: one line to change if the versions are
/// renumbered.
const RECOVERY_VERSION: i64 = 4;

/// The shipped schema, one script per version.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_revocation.sql"),
    ),
    (
        3,
        include_str!("../../migrations/sqlite/0003_passkey_names.sql"),
    ),
    (
        RECOVERY_VERSION,
        include_str!("../../migrations/sqlite/0004_recovery.sql"),
    ),
];

/// Creates or upgrades the `passlock_*` tables; safe to run on every start.
///
/// Applied versions are recorded in `passlock_schema_version`. The whole
/// migration runs in one `BEGIN IMMEDIATE` transaction, so instances
/// starting at once on one database file migrate one after the other.
pub async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS passlock_schema_version \
         (version INTEGER NOT NULL PRIMARY KEY)",
    )
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM passlock_schema_version")
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
    for (version, script) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        sqlx::raw_sql(script)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("INSERT INTO passlock_schema_version (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}

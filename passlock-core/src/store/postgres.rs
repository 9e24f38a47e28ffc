//! PostgreSQL stores (feature `postgres`): [`PgAuthenticatorStore`], the
//! embedded provider's [`PgCredentialStore`] and [`PgCeremonyStore`]
//! (feature `embedded` too), the id_token [`PgReplayCache`] and the logout markers' [`PgRevocationStore`].
//!
//! Every store takes a [`PgPool`]; run [`migrate`] once at start-up to
//! create the `passlock_*` tables (it is idempotent, and safe when several
//! instances start at once). Timestamps are stored as epoch milliseconds
//! (`BIGINT`).
//!
//! ```no_run
//! use passlock_core::store::postgres::{self, PgAuthenticatorStore, PgReplayCache};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = sqlx::PgPool::connect("postgres://app@localhost/app").await?;
//! postgres::migrate(&pool).await?;
//! let store: PgAuthenticatorStore<i64> = PgAuthenticatorStore::new(pool.clone());
//! let replay = PgReplayCache::new(pool);
//! # let _ = (store, replay);
//! # Ok(())
//! # }
//! ```

use sqlx::PgPool;

use super::sql_common::sql_stores;
use super::sql_recovery::sql_recovery_store;

sql_stores! {
    backend: "PostgreSQL",
    module: "crate::store::postgres",
    pool: PgPool,
    authenticator: PgAuthenticatorStore,
    credential: PgCredentialStore,
    ceremony: PgCeremonyStore,
    replay: PgReplayCache,
    revocation: PgRevocationStore,
}

sql_recovery_store! {
    backend: "PostgreSQL",
    module: "crate::store::postgres",
    pool: PgPool,
    name: PgRecoveryChallenges,
}

/// The schema version [`migrate`] brings a database to.
pub const SCHEMA_VERSION: i64 = 4;

/// The recovery schema's version: one line to change if the versions are
/// renumbered.
const RECOVERY_VERSION: i64 = 4;

/// The shipped schema, one script per version.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_revocation.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_passkey_names.sql"),
    ),
    (
        RECOVERY_VERSION,
        include_str!("../../migrations/postgres/0004_recovery.sql"),
    ),
];

/// The advisory lock key migrations hold (`"passlock"` in ASCII).
const MIGRATION_LOCK: i64 = 0x7061_7373_6c6f_636b;

/// Creates or upgrades the `passlock_*` tables; safe to run on every start.
///
/// Applied versions are recorded in `passlock_schema_version`. The whole
/// migration runs in one transaction holding a transaction-level advisory
/// lock (`pg_advisory_xact_lock`), so instances starting at once migrate one
/// after the other.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS passlock_schema_version \
         (version BIGINT NOT NULL PRIMARY KEY)",
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

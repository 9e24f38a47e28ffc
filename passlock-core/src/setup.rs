//! Production wiring of the embedded provider in one call (features
//! `embedded` and `sqlite` or `postgres`).
//!
//! The embedded provider keeps state that must survive a restart and, with
//! several app instances, be shared by all of them: the passkeys
//! ([`CredentialStore`](crate::store::CredentialStore)), which
//! user each passkey belongs to ([`AuthenticatorStore`](crate::AuthenticatorStore)),
//! the pending ceremonies and the id_token signing key
//! ([`CeremonyStore`](crate::store::CeremonyStore)), and the
//! logout markers ([`RevocationStore`](crate::store::RevocationStore)).
//! [`embedded_sqlite`] and [`embedded_postgres`] migrate the `passlock_*`
//! tables and put all four in the one database you hand them, and return a
//! [`PasslockBuilder`] to finish (`.sign_up(...)`, `.policy(...)`,
//! `.build()`):
//!
//! ```no_run
//! use std::sync::Arc;
//! use passlock_core::provider::embedded::EmbeddedConfig;
//! use passlock_core::{Passlock, SignUpError, SignUpHook, setup};
//!
//! #[derive(Debug)]
//! struct Users;
//!
//! #[passlock_core::async_trait]
//! impl SignUpHook<i64> for Users {
//!     async fn create_user(&self, _username: &str) -> Result<i64, SignUpError> {
//!         Ok(1) // insert into your users table, return the new id
//!     }
//!     async fn abandon_user(&self, _user: &i64) -> Result<(), SignUpError> {
//!         Ok(()) // delete that row again
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = setup::open_sqlite("sqlite://app.db").await?;
//! let config = EmbeddedConfig::new("example.com", "My app", ["https://example.com"]);
//! let passlock: Passlock<i64> = setup::embedded_sqlite(&pool, config)
//!     .await?
//!     .sign_up(Arc::new(Users))
//!     .build()?;
//! # let _ = passlock;
//! # Ok(())
//! # }
//! ```
//!
//! What the database does not hold: the web framework's sessions (use a
//! server-side session store that survives restarts too) and the failed-proof
//! throttle (in memory per instance by default; with several instances share
//! it through [`RedisThrottle`](crate::throttle) with the `redis` feature).

use std::sync::Arc;

use crate::config::{Passlock, PasslockBuilder};
use crate::error::{ConfigError, StoreError};
use crate::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
use crate::store::UserId;

/// Why [`embedded_sqlite`] or [`embedded_postgres`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The database could not be opened or migrated.
    #[error("the passlock database could not be set up")]
    Store(#[from] StoreError),
    /// The embedded provider's configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Opens (creating it if missing) the SQLite database at `url` the way
/// passlock's stores want it: WAL journal, a 5 s busy timeout so concurrent
/// writers wait rather than fail, foreign keys on. An in-memory database
/// (`sqlite::memory:`) lives in one connection, so it gets exactly one (it is
/// for tests: it is gone at restart).
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub async fn open_sqlite(url: &str) -> Result<sqlx::SqlitePool, SetupError> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
    use std::str::FromStr;
    use std::time::Duration;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let mut options = SqliteConnectOptions::from_str(url)
        .map_err(StoreError::backend)?
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    if !in_memory {
        options = options.journal_mode(SqliteJournalMode::Wal);
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(if in_memory { 1 } else { 8 })
        .min_connections(u32::from(in_memory))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await
        .map_err(StoreError::backend)?;
    Ok(pool)
}

/// The embedded provider with its passkeys, ceremonies, signing key, passkey
/// links and logout markers in the SQLite database of `pool`, migrated
/// first. Returns the builder (with `config`'s origins and clock) for the
/// rest: `.sign_up(...)`, `.policy(...)`, `.build()`.
///
/// The `passlock_authenticator` table keeps the user id as text (`U`'s
/// `Display` / `FromStr`).
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub async fn embedded_sqlite<U: UserId>(
    pool: &sqlx::SqlitePool,
    config: EmbeddedConfig,
) -> Result<PasslockBuilder<U>, SetupError> {
    use crate::store::sqlite::{
        SqliteAuthenticatorStore, SqliteCeremonyStore, SqliteCredentialStore,
        SqliteRevocationStore, migrate,
    };
    migrate(pool).await?;
    let clock = config.clock.clone();
    let provider = EmbeddedProvider::new(
        config,
        Arc::new(SqliteCredentialStore::new(pool.clone())),
        Arc::new(SqliteCeremonyStore::new(pool.clone())),
    )
    .await?;
    Ok(Passlock::builder(
        Arc::new(provider),
        Arc::new(SqliteAuthenticatorStore::<U>::new(pool.clone())),
    )
    .clock(clock)
    .revocations(Arc::new(SqliteRevocationStore::new(pool.clone()))))
}

/// The embedded provider with its passkeys, ceremonies, signing key, passkey
/// links and logout markers in the PostgreSQL database of `pool`, migrated
/// first (instances starting together migrate one after the other). Every
/// instance of the app on this database shares them. Returns the builder
/// (with `config`'s origins and clock) for the rest.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub async fn embedded_postgres<U: UserId>(
    pool: &sqlx::PgPool,
    config: EmbeddedConfig,
) -> Result<PasslockBuilder<U>, SetupError> {
    use crate::store::postgres::{
        PgAuthenticatorStore, PgCeremonyStore, PgCredentialStore, PgRevocationStore, migrate,
    };
    migrate(pool).await?;
    let clock = config.clock.clone();
    let provider = EmbeddedProvider::new(
        config,
        Arc::new(PgCredentialStore::new(pool.clone())),
        Arc::new(PgCeremonyStore::new(pool.clone())),
    )
    .await?;
    Ok(Passlock::builder(
        Arc::new(provider),
        Arc::new(PgAuthenticatorStore::<U>::new(pool.clone())),
    )
    .clock(clock)
    .revocations(Arc::new(PgRevocationStore::new(pool.clone()))))
}

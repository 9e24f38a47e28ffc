//! Every storage trait of passlock with its memory, SQL (and Redis)
//! implementations:
//!
//! | trait | what it keeps | memory | SQL table |
//! | --- | --- | --- | --- |
//! | [`AuthenticatorStore`] | which user a passkey belongs to | [`MemoryAuthenticatorStore`] | `passlock_authenticator` |
//! | `CredentialStore` (feature `embedded`) | the embedded provider's passkeys | `MemoryCredentialStore` | `passlock_credential` |
//! | `CeremonyStore` (feature `embedded`) | single-use tokens, ceremony state, codes; the signing key | `MemoryCeremonyStore` | `passlock_ceremony` |
//! | [`ReplayCache`] | the `jti` of redeemed id_tokens, until they expire | [`MemoryReplayCache`] | `passlock_jti` |
//! | [`RevocationStore`] | logout markers ([`crate::revocation`]) | [`MemoryRevocationStore`] | `passlock_revocation` |
//! | [`RecoveryChallenges`] | account recovery challenges ([`crate::recovery`]) | [`MemoryRecoveryChallenges`] | `passlock_recovery_challenge` |
//!
//! The SQL implementations are in `store::sqlite` and `store::postgres`
//! (one `migrate` per backend creates every table); the Redis ones are
//! `RedisReplayCache` and `RedisRevocationStore` (feature `redis`). This
//! module imports no other passlock module above the identifiers and
//! errors: the providers, the flows and the revocation and recovery logic
//! use it, never the reverse.
//!
//! The [`AuthenticatorStore`] trait: which user a passkey belongs to.
//!
//! The reference schema is the seeds' table:
//! `authenticator(authenticator_id PRIMARY KEY, user_id REFERENCES user(id))`,
//! plus `created_at` and `last_used_at`.

use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::UnixMillis;
use crate::error::StoreError;
use crate::id::AuthenticatorId;

mod memory;
pub use memory::MemoryAuthenticatorStore;

#[cfg(feature = "embedded")]
mod embedded;
#[cfg(feature = "embedded")]
#[cfg_attr(docsrs, doc(cfg(feature = "embedded")))]
pub use embedded::{
    CeremonyStore, CredentialStore, CredentialUse, MemoryCeremonyStore, MemoryCredentialStore,
    StoredCredential,
};

mod recovery;
pub use recovery::{Attempt, MemoryRecoveryChallenges, NewChallenge, RecoveryChallenges};

mod replay;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use replay::RedisReplayCache;
pub use replay::{MemoryReplayCache, ReplayCache};

mod revocation;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use revocation::RedisRevocationStore;
pub use revocation::{MEMORY_MAX_MARKERS, MemoryRevocationStore, RevocationStore};

/// One Redis connection for the Redis-backed stores (throttle, replay cache,
/// revocation markers): connecting and each command are bounded (2 s, two
/// retries, at most 500 ms between them), so a Redis outage answers `503`
/// quickly instead of holding requests.
#[cfg(feature = "redis")]
pub(crate) async fn redis_connection(
    url: &str,
) -> Result<redis::aio::ConnectionManager, StoreError> {
    let client = redis::Client::open(url).map_err(StoreError::backend)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(std::time::Duration::from_secs(2))
        .set_response_timeout(std::time::Duration::from_secs(2))
        .set_number_of_retries(2)
        .set_max_delay(500);
    redis::aio::ConnectionManager::new_with_config(client, config)
        .await
        .map_err(StoreError::backend)
}

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql_common;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql_recovery;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

/// What an app's user id must be: `i64`, `String`, `Uuid`, a newtype...
pub trait UserId:
    Clone + Debug + Display + FromStr + Eq + Hash + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<T> UserId for T where
    T: Clone
        + Debug
        + Display
        + FromStr
        + Eq
        + Hash
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// A passkey linked to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkedAuthenticator {
    /// The passkey.
    pub authenticator_id: AuthenticatorId,
    /// When it was linked (epoch ms).
    pub created_at: UnixMillis,
    /// When it was last used (epoch ms).
    pub last_used_at: Option<UnixMillis>,
}

impl LinkedAuthenticator {
    /// A linked authenticator.
    pub fn new(
        authenticator_id: AuthenticatorId,
        created_at: UnixMillis,
        last_used_at: Option<UnixMillis>,
    ) -> Self {
        Self {
            authenticator_id,
            created_at,
            last_used_at,
        }
    }
}

/// Maps authenticators (passkeys) to the app's users.
///
/// Implement it on your own user table, or use [`MemoryAuthenticatorStore`],
/// the SQLite or the PostgreSQL store. Every implementation must pass the
/// conformance suite in the test kit (`passlock_test::conformance`).
///
/// Contract:
/// - [`link`](Self::link) of an authenticator already linked to *another*
///   user fails with [`StoreError::Conflict`] and changes nothing; linking
///   the same pair again is a no-op. Of concurrent links of one
///   authenticator to different users exactly one wins.
/// - [`unlink`](Self::unlink) removes the link only if it belongs to that
///   user, and says whether it did.
///
/// # A complete implementation
///
/// An in-memory store; a real one does the same on a table. One lock (or
/// one SQL statement) must decide a link, so concurrent links of one
/// authenticator cannot both win:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use passlock_core::clock::UnixMillis;
/// use passlock_core::store::{AuthenticatorStore, LinkedAuthenticator};
/// use passlock_core::{AuthenticatorId, StoreError};
///
/// #[derive(Debug, Default)]
/// struct Links(Mutex<HashMap<AuthenticatorId, (i64, LinkedAuthenticator)>>);
///
/// impl Links {
///     fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<AuthenticatorId, (i64, LinkedAuthenticator)>>, StoreError> {
///         self.0.lock().map_err(|_| StoreError::backend("lock poisoned"))
///     }
/// }
///
/// #[async_trait::async_trait]
/// impl AuthenticatorStore<i64> for Links {
///     async fn link(&self, a: &AuthenticatorId, user: &i64, now: UnixMillis) -> Result<(), StoreError> {
///         let mut map = self.map()?;
///         match map.get(a) {
///             Some((owner, _)) if owner == user => Ok(()), // the same pair again: no-op
///             Some(_) => Err(StoreError::Conflict),        // never re-pointed
///             None => {
///                 map.insert(a.clone(), (*user, LinkedAuthenticator::new(a.clone(), now, None)));
///                 Ok(())
///             }
///         }
///     }
///
///     async fn user_of(&self, a: &AuthenticatorId) -> Result<Option<i64>, StoreError> {
///         Ok(self.map()?.get(a).map(|(user, _)| *user))
///     }
///
///     async fn authenticators_of(&self, user: &i64) -> Result<Vec<LinkedAuthenticator>, StoreError> {
///         let mut out: Vec<_> =
///             self.map()?.values().filter(|(u, _)| u == user).map(|(_, l)| l.clone()).collect();
///         out.sort_by(|x, y| (x.created_at, &x.authenticator_id).cmp(&(y.created_at, &y.authenticator_id)));
///         Ok(out)
///     }
///
///     async fn unlink(&self, a: &AuthenticatorId, user: &i64) -> Result<bool, StoreError> {
///         let mut map = self.map()?;
///         if map.get(a).is_some_and(|(owner, _)| owner == user) {
///             map.remove(a);
///             return Ok(true);
///         }
///         Ok(false)
///     }
///
///     async fn touch(&self, a: &AuthenticatorId, now: UnixMillis) -> Result<(), StoreError> {
///         if let Some((_, l)) = self.map()?.get_mut(a) {
///             l.last_used_at = Some(now);
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let links = Links::default();
/// let key = AuthenticatorId::new("cred-1")?;
/// links.link(&key, &7, 1_000).await?;
/// links.link(&key, &7, 2_000).await?; // no-op
/// assert!(matches!(links.link(&key, &8, 3_000).await, Err(StoreError::Conflict)));
/// assert!(!links.unlink(&key, &8).await?);
/// assert_eq!(links.user_of(&key).await?, Some(7));
/// # Ok(())
/// # }
/// ```
///
/// # Implementing it on your own user table
///
/// The shipped SQL stores keep the user id as text in their own table
/// (`passlock_authenticator`). To link passkeys to your user table with a
/// real foreign key, implement the trait yourself; one `INSERT ... ON
/// CONFLICT DO NOTHING` decides concurrent links, and reading the owner
/// afterwards tells a repeated link from a conflict:
///
/// ```no_run
/// # #[cfg(feature = "sqlite")]
/// # mod example {
/// use passlock_core::clock::UnixMillis;
/// use passlock_core::store::{AuthenticatorStore, LinkedAuthenticator};
/// use passlock_core::{AuthenticatorId, StoreError};
/// use sqlx::SqlitePool;
///
/// // CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
/// // CREATE TABLE authenticator (
/// //     authenticator_id TEXT PRIMARY KEY,
/// //     user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
/// //     created_at INTEGER NOT NULL,
/// //     last_used_at INTEGER
/// // );
/// #[derive(Debug)]
/// pub struct MyStore {
///     pool: SqlitePool,
/// }
///
/// fn backend(e: sqlx::Error) -> StoreError {
///     StoreError::backend(e)
/// }
///
/// #[async_trait::async_trait]
/// impl AuthenticatorStore<i64> for MyStore {
///     async fn link(
///         &self,
///         authenticator: &AuthenticatorId,
///         user: &i64,
///         now: UnixMillis,
///     ) -> Result<(), StoreError> {
///         let inserted = sqlx::query(
///             "INSERT INTO authenticator (authenticator_id, user_id, created_at)
///              VALUES (?, ?, ?) ON CONFLICT (authenticator_id) DO NOTHING",
///         )
///         .bind(authenticator.as_str())
///         .bind(user)
///         .bind(now)
///         .execute(&self.pool)
///         .await
///         .map_err(backend)?
///         .rows_affected();
///         if inserted == 1 {
///             return Ok(());
///         }
///         match self.user_of(authenticator).await? {
///             Some(owner) if owner == *user => Ok(()), // the same pair again
///             _ => Err(StoreError::Conflict),          // never re-pointed
///         }
///     }
///
///     async fn user_of(&self, authenticator: &AuthenticatorId) -> Result<Option<i64>, StoreError> {
///         sqlx::query_scalar("SELECT user_id FROM authenticator WHERE authenticator_id = ?")
///             .bind(authenticator.as_str())
///             .fetch_optional(&self.pool)
///             .await
///             .map_err(backend)
///     }
///
///     async fn authenticators_of(&self, user: &i64) -> Result<Vec<LinkedAuthenticator>, StoreError> {
///         let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
///             "SELECT authenticator_id, created_at, last_used_at FROM authenticator
///              WHERE user_id = ? ORDER BY created_at, authenticator_id",
///         )
///         .bind(user)
///         .fetch_all(&self.pool)
///         .await
///         .map_err(backend)?;
///         rows.into_iter()
///             .map(|(id, created_at, last_used_at)| {
///                 let id = AuthenticatorId::new(id).map_err(StoreError::backend)?;
///                 Ok(LinkedAuthenticator::new(id, created_at, last_used_at))
///             })
///             .collect()
///     }
///
///     async fn unlink(&self, authenticator: &AuthenticatorId, user: &i64) -> Result<bool, StoreError> {
///         let deleted = sqlx::query("DELETE FROM authenticator WHERE authenticator_id = ? AND user_id = ?")
///             .bind(authenticator.as_str())
///             .bind(user)
///             .execute(&self.pool)
///             .await
///             .map_err(backend)?
///             .rows_affected();
///         Ok(deleted > 0)
///     }
///
///     async fn touch(&self, authenticator: &AuthenticatorId, now: UnixMillis) -> Result<(), StoreError> {
///         sqlx::query("UPDATE authenticator SET last_used_at = ? WHERE authenticator_id = ?")
///             .bind(now)
///             .bind(authenticator.as_str())
///             .execute(&self.pool)
///             .await
///             .map_err(backend)?;
///         Ok(())
///     }
/// }
/// # }
/// # fn main() {}
/// ```
///
/// Check it with the conformance suite of the test kit (the `passlock-test`
/// crate, a dev-dependency):
/// `passlock_test::conformance::authenticator_store_with(Arc::new(store), |n| first_user_id + n as i64)`,
/// with that many users in your table.
#[async_trait::async_trait]
pub trait AuthenticatorStore<U: UserId>: Send + Sync + Debug + 'static {
    /// Links `authenticator` to `user` at time `now`.
    async fn link(
        &self,
        authenticator: &AuthenticatorId,
        user: &U,
        now: UnixMillis,
    ) -> Result<(), StoreError>;

    /// The user `authenticator` is linked to.
    async fn user_of(&self, authenticator: &AuthenticatorId) -> Result<Option<U>, StoreError>;

    /// Every authenticator linked to `user`, oldest first.
    async fn authenticators_of(&self, user: &U) -> Result<Vec<LinkedAuthenticator>, StoreError>;

    /// Removes the link of `authenticator` to `user`; `false` when there was none.
    async fn unlink(&self, authenticator: &AuthenticatorId, user: &U) -> Result<bool, StoreError>;

    /// Records a use of `authenticator` at `now` (`last_used_at`).
    async fn touch(
        &self,
        authenticator: &AuthenticatorId,
        now: UnixMillis,
    ) -> Result<(), StoreError>;
}

//! Revocation markers' storage: the [`RevocationStore`] trait, the
//! in-process [`MemoryRevocationStore`] and the [`RedisRevocationStore`]
//! (feature `redis`); the SQL stores are `SqliteRevocationStore` and
//! `PgRevocationStore`. What the markers mean is in
//! [`crate::revocation`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use crate::clock::{SharedClock, UnixMillis};
use crate::error::StoreError;

/// Where revocation markers live: a key (such as `family:{id}`) and the
/// time it was revoked, kept until `keep_until`.
///
/// The keys are free-form so that other revocations (every session of a
/// user, of a deleted passkey) can be added as keys such as `user:{id}`
/// without changing the trait. Implementations must make a marker visible
/// to every later [`latest`](RevocationStore::latest) of every instance
/// sharing the store, and must not report a marker past its `keep_until`
/// as missing before that time.
///
/// A complete in-memory implementation:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use passlock_core::StoreError;
/// use passlock_core::clock::UnixMillis;
/// use passlock_core::store::RevocationStore;
///
/// #[derive(Debug, Default)]
/// struct Markers(Mutex<HashMap<String, UnixMillis>>);
///
/// #[async_trait::async_trait]
/// impl RevocationStore for Markers {
///     async fn revoke(&self, key: &str, revoked_at: UnixMillis, _keep_until: UnixMillis)
///         -> Result<(), StoreError> {
///         let mut map = self.0.lock().map_err(|_| StoreError::backend("poisoned"))?;
///         let at = map.entry(key.to_owned()).or_insert(revoked_at);
///         *at = (*at).max(revoked_at);
///         Ok(())
///     }
///
///     async fn latest(&self, keys: &[String]) -> Result<Option<UnixMillis>, StoreError> {
///         let map = self.0.lock().map_err(|_| StoreError::backend("poisoned"))?;
///         Ok(keys.iter().filter_map(|k| map.get(k).copied()).max())
///     }
/// }
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let store = Markers::default();
/// store.revoke("family:a", 5, 10).await.unwrap();
/// assert_eq!(store.latest(&["family:a".into(), "family:b".into()]).await.unwrap(), Some(5));
/// # });
/// ```
#[async_trait::async_trait]
pub trait RevocationStore: Send + Sync + fmt::Debug + 'static {
    /// Records that `key` was revoked at `revoked_at`, keeping the marker
    /// at least until `keep_until` (epoch ms). Revoking a key again keeps
    /// the later of the two times.
    async fn revoke(
        &self,
        key: &str,
        revoked_at: UnixMillis,
        keep_until: UnixMillis,
    ) -> Result<(), StoreError>;

    /// The latest revocation time among `keys`, or `None` when none of
    /// them is revoked.
    async fn latest(&self, keys: &[String]) -> Result<Option<UnixMillis>, StoreError>;
}

/// Markers by key: (revoked at, kept until).
type Markers = HashMap<String, (UnixMillis, UnixMillis)>;

/// Most markers a [`MemoryRevocationStore`] holds by default.
pub const MEMORY_MAX_MARKERS: usize = 1_000_000;

/// Markers in this process (the default): right for one instance. Expired
/// markers are swept; when full, the markers closest to expiry are evicted
/// first and a warning is logged (a marker is at most a key and two
/// numbers, so the default cap of [`MEMORY_MAX_MARKERS`] is some hundred
/// MB at worst).
pub struct MemoryRevocationStore {
    clock: SharedClock,
    max: usize,
    markers: Mutex<Markers>,
}

impl fmt::Debug for MemoryRevocationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRevocationStore")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl MemoryRevocationStore {
    /// An empty store timed by `clock`, holding at most
    /// [`MEMORY_MAX_MARKERS`].
    pub fn new(clock: SharedClock) -> Self {
        Self::with_capacity(clock, MEMORY_MAX_MARKERS)
    }

    /// An empty store holding at most `max` markers (at least one).
    pub fn with_capacity(clock: SharedClock, max: usize) -> Self {
        Self {
            clock,
            max: max.max(1),
            markers: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Markers>, StoreError> {
        self.markers
            .lock()
            .map_err(|_| StoreError::backend("the revocation store's lock is poisoned"))
    }
}

#[async_trait::async_trait]
impl RevocationStore for MemoryRevocationStore {
    async fn revoke(
        &self,
        key: &str,
        revoked_at: UnixMillis,
        keep_until: UnixMillis,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_millis();
        let mut map = self.lock()?;
        if map.len() >= self.max && !map.contains_key(key) {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.max {
                tracing::warn!(
                    max = self.max,
                    "revocation store full: the markers closest to expiry are dropped"
                );
                let mut by_expiry: Vec<(UnixMillis, String)> = map
                    .iter()
                    .map(|(k, (_, until))| (*until, k.clone()))
                    .collect();
                by_expiry.sort_unstable();
                let drop = map.len() + 1 - self.max;
                for (_, k) in by_expiry.into_iter().take(drop) {
                    map.remove(&k);
                }
            }
        }
        let entry = map
            .entry(key.to_owned())
            .or_insert((revoked_at, keep_until));
        entry.0 = entry.0.max(revoked_at);
        entry.1 = entry.1.max(keep_until);
        Ok(())
    }

    async fn latest(&self, keys: &[String]) -> Result<Option<UnixMillis>, StoreError> {
        let now = self.clock.now_millis();
        let map = self.lock()?;
        Ok(keys
            .iter()
            .filter_map(|k| map.get(k))
            .filter(|(_, until)| *until > now)
            .map(|(at, _)| *at)
            .max())
    }
}

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_revocation::RedisRevocationStore;

#[cfg(feature = "redis")]
mod redis_revocation {
    use super::{RevocationStore, StoreError, UnixMillis};

    /// Sets the marker unless a later one is there (a later revocation
    /// also has the later expiry, both following from one policy).
    const REVOKE: &str = "local old = tonumber(redis.call('GET', KEYS[1])) \
        if old == nil or old < tonumber(ARGV[1]) then \
          redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2]) \
        end \
        return 1";

    /// Markers in Redis, shared by every app instance: `SET key revoked_at
    /// PXAT keep_until` (in one Lua script keeping the later time), read
    /// with one `MGET`. Redis expires them.
    #[derive(Clone)]
    pub struct RedisRevocationStore {
        conn: redis::aio::ConnectionManager,
        prefix: String,
    }

    impl std::fmt::Debug for RedisRevocationStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisRevocationStore")
                .field("prefix", &self.prefix)
                .finish_non_exhaustive()
        }
    }

    impl RedisRevocationStore {
        /// Connects to `url` (`redis://host:port`); keys are named
        /// `passlock:revoked:{key}`. Connecting and each command are
        /// bounded (2 s, two retries), so a Redis outage answers `503`
        /// quickly instead of holding requests.
        pub async fn connect(url: &str) -> Result<Self, StoreError> {
            let conn = crate::store::redis_connection(url).await?;
            Ok(Self::new(conn, "passlock:revoked:"))
        }

        /// Markers over an existing connection, keys prefixed by `prefix`.
        pub fn new(conn: redis::aio::ConnectionManager, prefix: impl Into<String>) -> Self {
            Self {
                conn,
                prefix: prefix.into(),
            }
        }
    }

    #[async_trait::async_trait]
    impl RevocationStore for RedisRevocationStore {
        async fn revoke(
            &self,
            key: &str,
            revoked_at: UnixMillis,
            keep_until: UnixMillis,
        ) -> Result<(), StoreError> {
            let mut conn = self.conn.clone();
            let _: i64 = redis::cmd("EVAL")
                .arg(REVOKE)
                .arg(1)
                .arg(format!("{}{key}", self.prefix))
                .arg(revoked_at)
                .arg(keep_until.max(revoked_at.saturating_add(1)))
                .query_async(&mut conn)
                .await
                .map_err(StoreError::backend)?;
            Ok(())
        }

        async fn latest(&self, keys: &[String]) -> Result<Option<UnixMillis>, StoreError> {
            if keys.is_empty() {
                return Ok(None);
            }
            let mut conn = self.conn.clone();
            let names: Vec<String> = keys.iter().map(|k| format!("{}{k}", self.prefix)).collect();
            let values: Vec<Option<i64>> = redis::cmd("MGET")
                .arg(names)
                .query_async(&mut conn)
                .await
                .map_err(StoreError::backend)?;
            Ok(values.into_iter().flatten().max())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn memory_markers_expire_and_stay_bounded() {
        let clock = ManualClock::new(1_000);
        let store = MemoryRevocationStore::with_capacity(Arc::new(clock.clone()), 2);
        store.revoke("a", 1_000, 5_000).await.unwrap();
        store.revoke("b", 1_000, 9_000).await.unwrap();
        store.revoke("c", 1_000, 9_000).await.unwrap();
        // Full: "a", closest to expiry, made room for "c".
        assert_eq!(store.latest(&["a".into()]).await.unwrap(), None);
        assert_eq!(store.latest(&["c".into()]).await.unwrap(), Some(1_000));
        clock.set_millis(9_000);
        assert_eq!(store.latest(&["b".into(), "c".into()]).await.unwrap(), None);
    }
}

//! The id_token replay cache: [`ReplayCache`], the in-process
//! [`MemoryReplayCache`] and the [`RedisReplayCache`] (feature `redis`);
//! the SQL caches are `SqliteReplayCache` and `PgReplayCache`. The
//! verifier that uses it is [`crate::provider::jwt`].

use std::collections::HashMap;

use crate::error::StoreError;

/// Remembers the `jti` of verified id_tokens until they expire, making each
/// id_token single use.
#[async_trait::async_trait]
pub trait ReplayCache: Send + Sync + std::fmt::Debug + 'static {
    /// Records `jti` until `expires_at_secs`; `Ok(false)` when it was already
    /// recorded (a replay). Atomic across concurrent calls.
    async fn first_use(
        &self,
        jti: &str,
        expires_at_secs: i64,
        now_secs: i64,
    ) -> Result<bool, StoreError>;
}

/// An in-memory [`ReplayCache`].
///
/// Expired entries are swept at most once every 10 seconds (and only when one may have expired), not on every call: a
/// sweep walks the whole map, which on every verification made the cost of
/// a verification grow with the number of live id_tokens. An expired entry
/// still in the map counts as forgotten.
#[derive(Debug, Default)]
pub struct MemoryReplayCache {
    seen: std::sync::Mutex<ReplayEntries>,
}

/// Least time between two sweeps of a [`MemoryReplayCache`].
const SWEEP_INTERVAL_SECS: i64 = 10;

#[derive(Debug, Default)]
struct ReplayEntries {
    /// `jti` -> last second it is remembered.
    seen: HashMap<String, i64>,
    /// The earliest expiry in `seen` (`None` when empty).
    earliest: Option<i64>,
    /// When the map was last swept.
    last_sweep: i64,
}

impl MemoryReplayCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl ReplayCache for MemoryReplayCache {
    async fn first_use(
        &self,
        jti: &str,
        expires_at_secs: i64,
        now_secs: i64,
    ) -> Result<bool, StoreError> {
        let mut entries = self
            .seen
            .lock()
            .map_err(|_| StoreError::backend("replay cache lock poisoned"))?;
        let e = &mut *entries;
        if e.earliest.is_some_and(|t| t < now_secs)
            && now_secs.saturating_sub(e.last_sweep) >= SWEEP_INTERVAL_SECS
        {
            e.seen.retain(|_, exp| *exp >= now_secs);
            e.earliest = e.seen.values().copied().min();
            e.last_sweep = now_secs;
        }
        let first = match e.seen.get_mut(jti) {
            Some(exp) if *exp >= now_secs => false,
            // Expired but not swept yet: forgotten, so this is a first use.
            Some(exp) => {
                *exp = expires_at_secs;
                true
            }
            None => {
                e.seen.insert(jti.to_owned(), expires_at_secs);
                true
            }
        };
        if first {
            e.earliest = Some(
                e.earliest
                    .map_or(expires_at_secs, |t| t.min(expires_at_secs)),
            );
        }
        Ok(first)
    }
}

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_replay::RedisReplayCache;

#[cfg(feature = "redis")]
mod redis_replay {
    use super::{ReplayCache, StoreError};

    /// Records `jti` unless a live record exists, in one step. The record
    /// holds its expiry (epoch seconds, on the app's clock, like every
    /// other replay cache): a record is live while `expiry >= now`. Redis's
    /// own TTL (the expiry plus a margin, on Redis's clock) only removes
    /// records no one can need any more.
    const FIRST_USE: &str = "local v = redis.call('GET', KEYS[1]) \
        if v and tonumber(v) >= tonumber(ARGV[2]) then return 0 end \
        redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3]) \
        return 1";

    /// How long (s) Redis keeps a record past its expiry, for clock skew
    /// between the app instances and Redis.
    const TTL_MARGIN_SECS: i64 = 60;

    /// A [`ReplayCache`] in Redis (feature `redis`), shared by every app
    /// instance using the same Redis and prefix: each `jti` is accepted
    /// once across all of them until it expires. Check and record are one
    /// Lua script, so of concurrent first uses exactly one wins. Keys are
    /// `{prefix}{jti}`.
    #[derive(Clone)]
    pub struct RedisReplayCache {
        conn: redis::aio::ConnectionManager,
        prefix: String,
    }

    impl std::fmt::Debug for RedisReplayCache {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisReplayCache")
                .field("prefix", &self.prefix)
                .finish_non_exhaustive()
        }
    }

    impl RedisReplayCache {
        /// Connects to `url` (`redis://host:port`); keys are named
        /// `passlock:jti:{jti}`. Connecting and each command are bounded
        /// (2 s, two retries), so a Redis outage answers `503` quickly
        /// instead of holding requests.
        pub async fn connect(url: &str) -> Result<Self, StoreError> {
            let conn = crate::store::redis_connection(url).await?;
            Ok(Self::new(conn, "passlock:jti:"))
        }

        /// A cache over an existing connection, keys prefixed by `prefix`.
        pub fn new(conn: redis::aio::ConnectionManager, prefix: impl Into<String>) -> Self {
            Self {
                conn,
                prefix: prefix.into(),
            }
        }
    }

    #[async_trait::async_trait]
    impl ReplayCache for RedisReplayCache {
        async fn first_use(
            &self,
            jti: &str,
            expires_at_secs: i64,
            now_secs: i64,
        ) -> Result<bool, StoreError> {
            let ttl = expires_at_secs
                .saturating_sub(now_secs)
                .max(0)
                .saturating_add(TTL_MARGIN_SECS);
            let mut conn = self.conn.clone();
            let first: i64 = redis::cmd("EVAL")
                .arg(FIRST_USE)
                .arg(1)
                .arg(format!("{}{jti}", self.prefix))
                .arg(expires_at_secs)
                .arg(now_secs)
                .arg(ttl)
                .query_async(&mut conn)
                .await
                .map_err(StoreError::backend)?;
            Ok(first == 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_replay_cache_sweeps_lazily_and_forgets_expired() {
        let cache = MemoryReplayCache::new();
        assert!(cache.first_use("a", 100, 0).await.unwrap());
        assert!(cache.first_use("b", 5, 0).await.unwrap());
        assert!(!cache.first_use("a", 100, 1).await.unwrap());
        // `b` expired at 5: forgotten at 6 even before any sweep.
        assert!(cache.first_use("b", 200, 6).await.unwrap());
        assert!(!cache.first_use("b", 200, 7).await.unwrap());
        assert!(cache.first_use("c", 8, 7).await.unwrap());
        // No sweep within the interval of the last one (at 0)...
        assert!(cache.first_use("d", 300, 9).await.unwrap());
        assert_eq!(cache.seen.lock().unwrap().seen.len(), 4);
        // ...then the expired `c` is swept out.
        assert!(cache.first_use("e", 300, 20).await.unwrap());
        {
            let entries = cache.seen.lock().unwrap();
            assert_eq!(entries.seen.len(), 4);
            assert!(!entries.seen.contains_key("c"));
            assert_eq!(entries.earliest, Some(100));
        }
        assert!(!cache.first_use("a", 100, 100).await.unwrap());
        assert!(cache.first_use("a", 400, 101).await.unwrap());
    }
}

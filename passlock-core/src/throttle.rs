//! Throttling of failed proofs (brute force of codes, id_tokens and
//! assertions).
//!
//! The flows [`login`](crate::flow::login), [`register`](crate::flow::register)
//! and [`step_up`](crate::flow::step_up) check a [`Throttle`] *before* a
//! proof is verified (so a throttled request consumes no code) and record the
//! outcome after. Two counters apply, each a fixed window:
//!
//! * **per client address** (default 10 failures per 5 minutes; IPv6
//!   addresses count per /64), generous because many users may share an
//!   address (NAT, a corporate proxy);
//! * **per subject** (default 5 failures per 5 minutes): the signed-in user
//!   for a step-up, the reserved user handle for a registration.
//!
//! Trade-off: a success resets the subject counter but never the address
//! counter (an attacker holding one good passkey could otherwise reset it
//! between guesses). A step-up comes from a session that already proved
//! itself, so it is checked against its subject counter only and is never
//! locked out by someone else's failures behind the same address; its
//! failures still count towards the address. A log-in has nothing proven
//! yet, so while an address is throttled every log-in from it waits up to
//! one window: that is the price of stopping guessing from one address.
//!
//! Only refusals of a proof count as failures (a rejected code or token, an
//! unknown passkey, a passkey of another user); outages of the provider or
//! a store do not. When the throttle's own backend fails, the request is
//! refused with a `503` (fail closed).
//!
//! [`MemoryThrottle`] (the default) counts per process; [`RedisThrottle`]
//! (feature `redis`) shares the counters between app instances.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::SharedClock;
use crate::error::{FlowError, StoreError};

/// At most `max_failures` failures per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failures allowed within one window; the next attempt is refused.
    pub max_failures: u32,
    /// The window length.
    pub window: Duration,
}

impl Limit {
    /// `max_failures` per `window`.
    pub const fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
        }
    }

    fn window_millis(&self) -> i64 {
        i64::try_from(self.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }
}

/// The limits the flows apply (part of [`Policy`](crate::Policy)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottlePolicy {
    /// Per client address (default 10 per 5 minutes).
    pub per_address: Limit,
    /// Per subject: the session's user on step-up, the pending registration
    /// on register (default 5 per 5 minutes).
    pub per_subject: Limit,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            per_address: Limit::new(10, Duration::from_secs(300)),
            per_subject: Limit::new(5, Duration::from_secs(300)),
        }
    }
}

/// One counter: a name (already scoped, e.g. `addr:203.0.113.7`) and its
/// limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKey {
    /// The counter's name. Holds no secret (addresses and user ids only).
    pub name: String,
    /// The limit on this counter.
    pub limit: Limit,
}

impl ThrottleKey {
    /// A key named `name` with `limit`.
    pub fn new(name: impl Into<String>, limit: Limit) -> Self {
        Self {
            name: name.into(),
            limit,
        }
    }

    /// The key of a client address. IPv6 addresses count per /64 (one
    /// subscriber usually holds a whole /64).
    pub fn address(addr: IpAddr, limit: Limit) -> Self {
        let addr = match addr {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        };
        Self::new(format!("addr:{addr}"), limit)
    }
}

/// What an adapter knows about the client of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientInfo {
    /// The client's address: the peer, or the value of the configured
    /// trusted proxy header (see [`Passlock::client_info`](crate::Passlock::client_info)).
    pub address: Option<IpAddr>,
}

impl ClientInfo {
    /// A client at `address` (`None` when unknown: only the subject counter
    /// then applies).
    pub fn new(address: Option<IpAddr>) -> Self {
        Self { address }
    }
}

/// Counts failed attempts per key and refuses keys over their limit.
///
/// Object safe; [`Passlock`](crate::Passlock) holds one as `Arc<dyn Throttle>`.
/// A complete in-memory implementation (ignoring windows, for brevity):
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use passlock_core::throttle::{Throttle, ThrottleKey};
/// use passlock_core::{FlowError, StoreError};
///
/// #[derive(Debug, Default)]
/// struct Counting(Mutex<HashMap<String, u32>>);
///
/// #[async_trait::async_trait]
/// impl Throttle for Counting {
///     async fn check(&self, key: &ThrottleKey) -> Result<(), FlowError> {
///         let n = self.0.lock().unwrap().get(&key.name).copied().unwrap_or(0);
///         if n >= key.limit.max_failures {
///             return Err(FlowError::Throttled { retry_after: key.limit.window.as_secs() });
///         }
///         Ok(())
///     }
///     async fn record_failure(&self, key: &ThrottleKey) -> Result<(), StoreError> {
///         *self.0.lock().unwrap().entry(key.name.clone()).or_default() += 1;
///         Ok(())
///     }
///     async fn record_success(&self, key: &ThrottleKey) -> Result<(), StoreError> {
///         self.0.lock().unwrap().remove(&key.name);
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Throttle: Send + Sync + fmt::Debug + 'static {
    /// `Ok` when `key` may try again, else [`FlowError::Throttled`] with the
    /// seconds until it may (or a store error, which refuses the request).
    async fn check(&self, key: &ThrottleKey) -> Result<(), FlowError>;

    /// Counts one failure against `key`.
    async fn record_failure(&self, key: &ThrottleKey) -> Result<(), StoreError>;

    /// Forgets the failures of `key` (after a success).
    async fn record_success(&self, key: &ThrottleKey) -> Result<(), StoreError>;
}

fn retry_after_secs(millis: i64) -> u64 {
    u64::try_from(millis.max(0))
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}

/// Counters in this process, fixed windows timed by the configured clock.
/// Keys whose window has passed are dropped as the map grows.
pub struct MemoryThrottle {
    clock: SharedClock,
    counters: Mutex<Counters>,
}

impl fmt::Debug for MemoryThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryThrottle").finish_non_exhaustive()
    }
}

/// Failures and the end of their window (epoch ms), per key.
type Counters = HashMap<String, (u32, i64)>;

/// Above this many counters, expired ones are swept on each failure.
const SWEEP_ABOVE: usize = 10_000;

impl MemoryThrottle {
    /// Counters timed by `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            counters: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Counters>, StoreError> {
        self.counters
            .lock()
            .map_err(|_| StoreError::backend("throttle counters poisoned"))
    }
}

#[async_trait::async_trait]
impl Throttle for MemoryThrottle {
    async fn check(&self, key: &ThrottleKey) -> Result<(), FlowError> {
        let now = self.clock.now_millis();
        let counters = self.lock().map_err(FlowError::Store)?;
        match counters.get(&key.name) {
            Some(&(count, reset_at)) if now < reset_at && count >= key.limit.max_failures => {
                Err(FlowError::Throttled {
                    retry_after: retry_after_secs(reset_at - now),
                })
            }
            _ => Ok(()),
        }
    }

    async fn record_failure(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        let now = self.clock.now_millis();
        let mut counters = self.lock()?;
        if counters.len() > SWEEP_ABOVE {
            counters.retain(|_, (_, reset_at)| *reset_at > now);
        }
        let entry = counters.entry(key.name.clone()).or_insert((0, now));
        if now >= entry.1 {
            *entry = (0, now.saturating_add(key.limit.window_millis()));
        }
        entry.0 = entry.0.saturating_add(1);
        Ok(())
    }

    async fn record_success(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        self.lock()?.remove(&key.name);
        Ok(())
    }
}

#[cfg(feature = "redis")]
pub use redis_throttle::RedisThrottle;

#[cfg(feature = "redis")]
mod redis_throttle {
    use super::{FlowError, StoreError, Throttle, ThrottleKey, retry_after_secs};

    /// `INCR` and, on the first failure of a window, `PEXPIRE`, atomically.
    const RECORD: &str = "local n = redis.call('INCR', KEYS[1]) \
        if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
        if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
        return n";

    /// Counters in Redis, shared by every app instance: a fixed window per
    /// key (`INCR` plus `PEXPIRE` in one Lua script), timed by Redis.
    #[derive(Clone)]
    pub struct RedisThrottle {
        conn: redis::aio::ConnectionManager,
        prefix: String,
    }

    impl std::fmt::Debug for RedisThrottle {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisThrottle")
                .field("prefix", &self.prefix)
                .finish_non_exhaustive()
        }
    }

    impl RedisThrottle {
        /// Connects to `url` (`redis://host:port`); keys are named
        /// `passlock:throttle:{key}`. Connecting and each command are
        /// bounded (2 s, two retries), so a Redis outage answers `503`
        /// quickly instead of holding requests.
        pub async fn connect(url: &str) -> Result<Self, StoreError> {
            let client = redis::Client::open(url).map_err(StoreError::backend)?;
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(std::time::Duration::from_secs(2))
                .set_response_timeout(std::time::Duration::from_secs(2))
                .set_number_of_retries(2)
                .set_max_delay(500);
            let conn = redis::aio::ConnectionManager::new_with_config(client, config)
                .await
                .map_err(StoreError::backend)?;
            Ok(Self::new(conn, "passlock:throttle:"))
        }

        /// Counters over an existing connection, keys prefixed by `prefix`.
        pub fn new(conn: redis::aio::ConnectionManager, prefix: impl Into<String>) -> Self {
            Self {
                conn,
                prefix: prefix.into(),
            }
        }

        fn key(&self, key: &ThrottleKey) -> String {
            format!("{}{}", self.prefix, key.name)
        }
    }

    #[async_trait::async_trait]
    impl Throttle for RedisThrottle {
        async fn check(&self, key: &ThrottleKey) -> Result<(), FlowError> {
            let mut conn = self.conn.clone();
            let (count, pttl): (Option<u64>, i64) = redis::pipe()
                .get(self.key(key))
                .pttl(self.key(key))
                .query_async(&mut conn)
                .await
                .map_err(|e| FlowError::Store(StoreError::backend(e)))?;
            match count {
                Some(n) if n >= u64::from(key.limit.max_failures) && pttl > 0 => {
                    Err(FlowError::Throttled {
                        retry_after: retry_after_secs(pttl),
                    })
                }
                _ => Ok(()),
            }
        }

        async fn record_failure(&self, key: &ThrottleKey) -> Result<(), StoreError> {
            let mut conn = self.conn.clone();
            let _: u64 = redis::cmd("EVAL")
                .arg(RECORD)
                .arg(1)
                .arg(self.key(key))
                .arg(key.limit.window_millis())
                .query_async(&mut conn)
                .await
                .map_err(StoreError::backend)?;
            Ok(())
        }

        async fn record_success(&self, key: &ThrottleKey) -> Result<(), StoreError> {
            let mut conn = self.conn.clone();
            let _: u64 = redis::cmd("DEL")
                .arg(self.key(key))
                .query_async(&mut conn)
                .await
                .map_err(StoreError::backend)?;
            Ok(())
        }
    }
}

/// The counters one flow consults.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    /// Checked before, counted on failure.
    checked: Vec<ThrottleKey>,
    /// Counted on failure only (the address of a proven session).
    counted_only: Vec<ThrottleKey>,
    /// Reset on success.
    reset: Vec<ThrottleKey>,
}

impl Guard {
    /// The guard of a flow: `address` is checked unless `proven` (a
    /// signed-in session), `subject` is always checked and reset on success.
    pub(crate) fn new(
        policy: &ThrottlePolicy,
        client: &ClientInfo,
        subject: Option<String>,
        proven: bool,
    ) -> Self {
        let mut g = Self::default();
        if let Some(addr) = client.address {
            let key = ThrottleKey::address(addr, policy.per_address);
            if proven {
                g.counted_only.push(key);
            } else {
                g.checked.push(key);
            }
        }
        if let Some(subject) = subject {
            let key = ThrottleKey::new(subject, policy.per_subject);
            g.reset.push(key.clone());
            g.checked.push(key);
        }
        g
    }

    /// Refuses when any checked counter is over its limit.
    pub(crate) async fn check(&self, throttle: &dyn Throttle) -> Result<(), FlowError> {
        for key in &self.checked {
            throttle.check(key).await?;
        }
        Ok(())
    }

    /// Records the outcome of the flow.
    pub(crate) async fn record<T>(&self, throttle: &dyn Throttle, result: &Result<T, FlowError>) {
        let outcome = match result {
            Ok(_) => {
                for key in &self.reset {
                    if let Err(e) = throttle.record_success(key).await {
                        tracing::warn!(error = %e, "throttle: could not reset a counter");
                    }
                }
                return;
            }
            Err(e) => e,
        };
        if !counts_as_failure(outcome) {
            return;
        }
        for key in self.checked.iter().chain(&self.counted_only) {
            if let Err(e) = throttle.record_failure(key).await {
                tracing::warn!(error = %e, "throttle: could not count a failure");
            }
        }
    }
}

/// Whether an error is a refused proof (counted), not an outage.
pub(crate) fn counts_as_failure(e: &FlowError) -> bool {
    matches!(
        e,
        FlowError::UnknownAuthenticator
            | FlowError::WrongUser
            | FlowError::UserMismatch
            | FlowError::Provider(crate::ProviderError::Rejected(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    fn key(name: &str) -> ThrottleKey {
        ThrottleKey::new(name, Limit::new(3, Duration::from_secs(60)))
    }

    #[tokio::test]
    async fn memory_throttle_refuses_after_the_limit_until_the_window_ends() {
        let clock = ManualClock::new(1_000_000);
        let t = MemoryThrottle::new(Arc::new(clock.clone()));
        let k = key("addr:1.2.3.4");
        for _ in 0..3 {
            t.check(&k).await.unwrap();
            t.record_failure(&k).await.unwrap();
        }
        match t.check(&k).await {
            Err(FlowError::Throttled { retry_after }) => assert_eq!(retry_after, 60),
            other => panic!("{other:?}"),
        }
        // Another key is not affected.
        t.check(&key("addr:1.2.3.5")).await.unwrap();
        clock.advance_secs(59);
        assert!(matches!(
            t.check(&k).await,
            Err(FlowError::Throttled { retry_after: 1 })
        ));
        clock.advance_secs(1);
        t.check(&k).await.unwrap();
        // A new window starts from one failure.
        t.record_failure(&k).await.unwrap();
        t.check(&k).await.unwrap();
    }

    #[tokio::test]
    async fn success_resets() {
        let t = MemoryThrottle::new(Arc::new(ManualClock::new(0)));
        let k = key("user:1");
        for _ in 0..3 {
            t.record_failure(&k).await.unwrap();
        }
        assert!(t.check(&k).await.is_err());
        t.record_success(&k).await.unwrap();
        t.check(&k).await.unwrap();
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let l = ThrottlePolicy::default().per_address;
        let a = ThrottleKey::address("2001:db8:1:2:3:4:5:6".parse().unwrap(), l);
        let b = ThrottleKey::address("2001:db8:1:2:ffff::1".parse().unwrap(), l);
        assert_eq!(a, b);
        let c = ThrottleKey::address("::ffff:192.0.2.1".parse().unwrap(), l);
        assert_eq!(c.name, "addr:192.0.2.1");
    }

    #[test]
    fn only_refused_proofs_count() {
        assert!(counts_as_failure(&FlowError::UnknownAuthenticator));
        assert!(counts_as_failure(&crate::Rejection::Replayed.into()));
        assert!(!counts_as_failure(&FlowError::Store(StoreError::backend(
            "down"
        ))));
        assert!(!counts_as_failure(&FlowError::Provider(
            crate::ProviderError::Upstream(crate::UpstreamError::Timeout)
        )));
    }
}

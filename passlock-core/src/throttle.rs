//! Throttling of failed proofs (brute force of codes, id_tokens and
//! assertions).
//!
//! The flows [`login`](crate::flow::login), [`register`](crate::flow::register)
//! and [`step_up`](crate::flow::step_up) reserve an attempt with a
//! [`Throttle`] *before* a proof is verified (so a throttled request consumes
//! no code) and settle it after: a refused proof keeps its reservation (it is
//! counted as a failure), any other outcome gives it back. Reserving is one
//! atomic step (count and compare together), so concurrent bad proofs cannot
//! all pass a check that none of them has counted yet: at most the limit of
//! them are ever verified per window. Two counters apply, each a fixed window:
//!
//! * **per client address** (default 10 failures per 5 minutes; IPv6
//!   addresses count per /64), generous because many users may share an
//!   address (NAT, a corporate proxy). When the adapter cannot know the
//!   address (an axum app served without connect info, no trusted proxy
//!   header value), every such request shares one bucket,
//!   [`UNKNOWN_ADDRESS`], with the same limit, and passlock logs a warning
//!   once: throttling is never silently off;
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
//! The unauthenticated ceremony starts (`POST {prefix}/authentication/authorize`,
//! `POST {prefix}/registration/authorize` and the embedded provider's
//! browser routes) each store a ceremony or call the hosted service with the
//! app's API key, so every call counts against its own per-address limit,
//! [`ThrottlePolicy::ceremonies_per_address`], see
//! [`flow::throttle_ceremony`](crate::flow::throttle_ceremony).
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
    /// Calls per client address to the routes that start a ceremony without
    /// any proof (both authorize routes and the embedded provider's options
    /// and verification routes); here `max_failures` counts *every* call,
    /// not only failures. Default 120 per minute: one sign-in costs up to
    /// three calls (authorize, options, verification), so that is 40
    /// ceremonies a minute from one address, room for many honest users
    /// behind one NAT or corporate proxy, while a flood from one address can
    /// no longer fill the ceremony store or spend the hosted tenancy's API
    /// quota.
    pub ceremonies_per_address: Limit,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            per_address: Limit::new(10, Duration::from_secs(300)),
            per_subject: Limit::new(5, Duration::from_secs(300)),
            ceremonies_per_address: Limit::new(120, Duration::from_secs(60)),
        }
    }
}

/// The name of the one shared counter of every request whose client address
/// is unknown (see [`ThrottleKey::client`]).
pub const UNKNOWN_ADDRESS: &str = "addr:unknown";

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

    /// The key of a client: its [address](Self::address), or the shared
    /// [`UNKNOWN_ADDRESS`] bucket when the address is unknown (the same
    /// limit applies to all such clients together).
    pub fn client(client: &ClientInfo, limit: Limit) -> Self {
        match client.address {
            Some(addr) => Self::address(addr, limit),
            None => Self::new(UNKNOWN_ADDRESS, limit),
        }
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
    /// A client at `address` (`None` when unknown: the client then counts
    /// in the shared [`UNKNOWN_ADDRESS`] bucket).
    pub fn new(address: Option<IpAddr>) -> Self {
        Self { address }
    }
}

/// Counts attempts per key and refuses keys over their limit.
///
/// An attempt is *reserved* before a proof is verified, in one atomic step
/// ([`try_acquire`](Self::try_acquire): count it, or refuse when the key is
/// at its limit), and given back ([`release`](Self::release)) when the
/// outcome was not a counted failure. Checking and counting in two steps
/// would let concurrent requests all pass the check before any is counted.
///
/// Object safe; [`Passlock`](crate::Passlock) holds one as `Arc<dyn Throttle>`.
/// A complete in-memory implementation (one fixed window that never ends,
/// for brevity):
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use passlock_core::throttle::{Limit, Throttle, ThrottleKey};
/// use passlock_core::{FlowError, StoreError};
///
/// #[derive(Debug, Default)]
/// struct Counting(Mutex<HashMap<String, u32>>);
///
/// impl Counting {
///     fn counts(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, u32>>, StoreError> {
///         self.0.lock().map_err(|_| StoreError::backend("poisoned"))
///     }
/// }
///
/// #[async_trait::async_trait]
/// impl Throttle for Counting {
///     async fn try_acquire(&self, key: &ThrottleKey) -> Result<(), FlowError> {
///         // One lock for the comparison and the increment: atomic.
///         let mut counts = self.counts()?;
///         let n = counts.entry(key.name.clone()).or_default();
///         if *n >= key.limit.max_failures {
///             return Err(FlowError::Throttled { retry_after: key.limit.window.as_secs() });
///         }
///         *n += 1;
///         Ok(())
///     }
///     async fn release(&self, key: &ThrottleKey) -> Result<(), StoreError> {
///         if let Some(n) = self.counts()?.get_mut(&key.name) {
///             *n = n.saturating_sub(1);
///         }
///         Ok(())
///     }
///     async fn record_failure(&self, key: &ThrottleKey) -> Result<(), StoreError> {
///         *self.counts()?.entry(key.name.clone()).or_default() += 1;
///         Ok(())
///     }
///     async fn reset(&self, key: &ThrottleKey) -> Result<(), StoreError> {
///         self.counts()?.remove(&key.name);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let t = Counting::default();
/// let key = ThrottleKey::new("addr:192.0.2.1", Limit::new(2, std::time::Duration::from_secs(60)));
/// t.try_acquire(&key).await.unwrap();
/// t.try_acquire(&key).await.unwrap();
/// assert!(matches!(t.try_acquire(&key).await, Err(FlowError::Throttled { .. })));
/// t.release(&key).await.unwrap(); // that attempt was not a failure
/// t.try_acquire(&key).await.unwrap();
/// # }
/// ```
#[async_trait::async_trait]
pub trait Throttle: Send + Sync + fmt::Debug + 'static {
    /// Reserves one attempt against `key`, atomically: counts it and answers
    /// `Ok`, or, when `key` already holds `limit.max_failures` attempts in
    /// its window, counts nothing and answers [`FlowError::Throttled`] with
    /// the seconds until the window ends (or a store error, which refuses
    /// the request).
    async fn try_acquire(&self, key: &ThrottleKey) -> Result<(), FlowError>;

    /// Gives back one attempt reserved by [`try_acquire`](Self::try_acquire)
    /// whose outcome was not a counted failure (a success, an outage).
    async fn release(&self, key: &ThrottleKey) -> Result<(), StoreError>;

    /// Counts one failure against `key` without refusing anything (the
    /// address of a session that already proved itself).
    async fn record_failure(&self, key: &ThrottleKey) -> Result<(), StoreError>;

    /// Forgets every attempt of `key` (a subject's, after a success).
    async fn reset(&self, key: &ThrottleKey) -> Result<(), StoreError>;
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

impl MemoryThrottle {
    /// The live entry of `key` (a new window when its window has passed),
    /// sweeping expired counters first when the map is large.
    fn entry<'a>(counters: &'a mut Counters, key: &ThrottleKey, now: i64) -> &'a mut (u32, i64) {
        if counters.len() > SWEEP_ABOVE {
            counters.retain(|_, (_, reset_at)| *reset_at > now);
        }
        let entry = counters.entry(key.name.clone()).or_insert((0, now));
        if now >= entry.1 {
            *entry = (0, now.saturating_add(key.limit.window_millis()));
        }
        entry
    }
}

#[async_trait::async_trait]
impl Throttle for MemoryThrottle {
    async fn try_acquire(&self, key: &ThrottleKey) -> Result<(), FlowError> {
        let now = self.clock.now_millis();
        // One lock for the comparison and the increment.
        let mut counters = self.lock().map_err(FlowError::Store)?;
        let entry = Self::entry(&mut counters, key, now);
        if entry.0 >= key.limit.max_failures {
            return Err(FlowError::Throttled {
                retry_after: retry_after_secs(entry.1 - now),
            });
        }
        entry.0 = entry.0.saturating_add(1);
        Ok(())
    }

    async fn release(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        let now = self.clock.now_millis();
        let mut counters = self.lock()?;
        if let Some(entry) = counters.get_mut(&key.name)
            && now < entry.1
        {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
    }

    async fn record_failure(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        let now = self.clock.now_millis();
        let mut counters = self.lock()?;
        let entry = Self::entry(&mut counters, key, now);
        entry.0 = entry.0.saturating_add(1);
        Ok(())
    }

    async fn reset(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        self.lock()?.remove(&key.name);
        Ok(())
    }
}

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_throttle::RedisThrottle;

#[cfg(feature = "redis")]
mod redis_throttle {
    use super::{FlowError, StoreError, Throttle, ThrottleKey, retry_after_secs};

    /// `INCR` and, on the first failure of a window, `PEXPIRE`, atomically.
    const RECORD: &str = "local n = redis.call('INCR', KEYS[1]) \
        if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
        return n";

    /// Compare and `INCR` in one script (Redis runs a script atomically):
    /// at the limit `ARGV[2]`, answers the milliseconds left in the window
    /// and counts nothing; otherwise counts and answers `0`.
    const ACQUIRE: &str = "local n = tonumber(redis.call('GET', KEYS[1]) or '0') \
        if n >= tonumber(ARGV[2]) then \
          local ttl = redis.call('PTTL', KEYS[1]) \
          if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end \
          return ttl \
        end \
        redis.call('INCR', KEYS[1]) \
        if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
        return 0";

    /// `DECR` of a live counter above zero (keeps its expiry).
    const RELEASE: &str = "local n = tonumber(redis.call('GET', KEYS[1]) or '0') \
        if n > 0 then redis.call('DECR', KEYS[1]) end \
        return 0";

    /// Counters in Redis, shared by every app instance: a fixed window per
    /// key (compare, `INCR` and `PEXPIRE` in one Lua script, so concurrent
    /// attempts on several instances never pass the limit), timed by Redis.
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
            let conn = crate::store::redis_connection(url).await?;
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
        async fn try_acquire(&self, key: &ThrottleKey) -> Result<(), FlowError> {
            let mut conn = self.conn.clone();
            let wait: i64 = redis::cmd("EVAL")
                .arg(ACQUIRE)
                .arg(1)
                .arg(self.key(key))
                .arg(key.limit.window_millis())
                .arg(key.limit.max_failures)
                .query_async(&mut conn)
                .await
                .map_err(|e| FlowError::Store(StoreError::backend(e)))?;
            if wait > 0 {
                return Err(FlowError::Throttled {
                    retry_after: retry_after_secs(wait),
                });
            }
            Ok(())
        }

        async fn release(&self, key: &ThrottleKey) -> Result<(), StoreError> {
            let mut conn = self.conn.clone();
            let _: i64 = redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(self.key(key))
                .query_async(&mut conn)
                .await
                .map_err(StoreError::backend)?;
            Ok(())
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

        async fn reset(&self, key: &ThrottleKey) -> Result<(), StoreError> {
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
    /// Reserved before (refusing at the limit), kept on a counted failure,
    /// given back otherwise.
    reserved: Vec<ThrottleKey>,
    /// Counted on failure only (the address of a proven session).
    counted_only: Vec<ThrottleKey>,
    /// Reset on success (instead of given back).
    reset: Vec<ThrottleKey>,
}

impl Guard {
    /// The guard of a flow: the client's address (its own, or the shared
    /// [`UNKNOWN_ADDRESS`] bucket) is reserved unless `proven` (a signed-in
    /// session), `subject` is always reserved and reset on success.
    pub(crate) fn new(
        policy: &ThrottlePolicy,
        client: &ClientInfo,
        subject: Option<String>,
        proven: bool,
    ) -> Self {
        let mut g = Self::default();
        let key = ThrottleKey::client(client, policy.per_address);
        if proven {
            g.counted_only.push(key);
        } else {
            g.reserved.push(key);
        }
        if let Some(subject) = subject {
            let key = ThrottleKey::new(subject, policy.per_subject);
            g.reset.push(key.clone());
            g.reserved.push(key);
        }
        g
    }

    /// Reserves one attempt on every reserved counter, atomically per
    /// counter; refuses (giving back what it took) when any is at its limit.
    pub(crate) async fn acquire(&self, throttle: &dyn Throttle) -> Result<(), FlowError> {
        for (i, key) in self.reserved.iter().enumerate() {
            if let Err(e) = throttle.try_acquire(key).await {
                for taken in &self.reserved[..i] {
                    release(throttle, taken).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Settles the reservations with the outcome of the flow: a refused
    /// proof keeps them (and counts on the proven session's address); a
    /// success resets the subject and gives the address back; an outage
    /// gives everything back.
    pub(crate) async fn settle<T>(&self, throttle: &dyn Throttle, result: &Result<T, FlowError>) {
        match result {
            Err(e) if counts_as_failure(e) => {
                for key in &self.counted_only {
                    if let Err(e) = throttle.record_failure(key).await {
                        tracing::warn!(error = %e, "throttle: could not count a failure");
                    }
                }
            }
            Ok(_) => {
                for key in &self.reserved {
                    if self.reset.contains(key) {
                        if let Err(e) = throttle.reset(key).await {
                            tracing::warn!(error = %e, "throttle: could not reset a counter");
                        }
                    } else {
                        release(throttle, key).await;
                    }
                }
            }
            Err(_) => {
                for key in &self.reserved {
                    release(throttle, key).await;
                }
            }
        }
    }
}

async fn release(throttle: &dyn Throttle, key: &ThrottleKey) {
    if let Err(e) = throttle.release(key).await {
        tracing::warn!(error = %e, "throttle: could not give an attempt back");
    }
}

/// Whether an error is a refused proof (counted), not an outage.
pub(crate) fn counts_as_failure(e: &FlowError) -> bool {
    matches!(
        e,
        FlowError::UnknownAuthenticator
            | FlowError::WrongUser
            | FlowError::UserMismatch
            | FlowError::InvalidCode
            | FlowError::CodeAttemptsExceeded
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
            t.try_acquire(&k).await.unwrap();
        }
        match t.try_acquire(&k).await {
            Err(FlowError::Throttled { retry_after }) => assert_eq!(retry_after, 60),
            other => panic!("{other:?}"),
        }
        // Another key is not affected.
        t.try_acquire(&key("addr:1.2.3.5")).await.unwrap();
        clock.advance_secs(59);
        assert!(matches!(
            t.try_acquire(&k).await,
            Err(FlowError::Throttled { retry_after: 1 })
        ));
        clock.advance_secs(1);
        // A new window starts from this attempt.
        t.try_acquire(&k).await.unwrap();
        t.try_acquire(&k).await.unwrap();
        t.try_acquire(&k).await.unwrap();
        assert!(t.try_acquire(&k).await.is_err());
    }

    #[tokio::test]
    async fn released_attempts_do_not_count_and_reset_forgets() {
        let t = MemoryThrottle::new(Arc::new(ManualClock::new(0)));
        let k = key("user:1");
        for _ in 0..3 {
            t.try_acquire(&k).await.unwrap();
        }
        assert!(t.try_acquire(&k).await.is_err());
        t.release(&k).await.unwrap();
        t.try_acquire(&k).await.unwrap();
        assert!(t.try_acquire(&k).await.is_err());
        t.reset(&k).await.unwrap();
        t.try_acquire(&k).await.unwrap();
        // A failure counted without a reservation also counts.
        t.record_failure(&k).await.unwrap();
        t.record_failure(&k).await.unwrap();
        assert!(t.try_acquire(&k).await.is_err());
    }

    #[tokio::test]
    async fn concurrent_attempts_never_pass_the_limit() {
        let t = Arc::new(MemoryThrottle::new(Arc::new(ManualClock::new(0))));
        let k = key("addr:192.0.2.9");
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let (t, k) = (Arc::clone(&t), k.clone());
                tokio::spawn(async move { t.try_acquire(&k).await.is_ok() })
            })
            .collect();
        let mut passed = 0;
        for task in tasks {
            passed += usize::from(task.await.unwrap());
        }
        assert_eq!(passed, 3);
    }

    #[tokio::test]
    async fn a_guard_refused_on_its_subject_gives_the_address_back() {
        let t = MemoryThrottle::new(Arc::new(ManualClock::new(0)));
        let policy = ThrottlePolicy {
            per_address: Limit::new(2, Duration::from_secs(60)),
            per_subject: Limit::new(1, Duration::from_secs(60)),
            ..ThrottlePolicy::default()
        };
        let client = ClientInfo::new(Some("192.0.2.1".parse().unwrap()));
        let guard = Guard::new(&policy, &client, Some("user:1".into()), false);
        guard.acquire(&t).await.unwrap();
        // The subject is at its limit: refused, and the address given back.
        assert!(matches!(
            guard.acquire(&t).await,
            Err(FlowError::Throttled { .. })
        ));
        let address = ThrottleKey::client(&client, policy.per_address);
        t.try_acquire(&address).await.unwrap();
        assert!(t.try_acquire(&address).await.is_err());
    }

    #[tokio::test]
    async fn unknown_clients_share_one_bucket() {
        let t = MemoryThrottle::new(Arc::new(ManualClock::new(0)));
        let policy = ThrottlePolicy::default();
        let guard = Guard::new(&policy, &ClientInfo::new(None), None, false);
        for _ in 0..policy.per_address.max_failures {
            guard.acquire(&t).await.unwrap();
            guard
                .settle(&t, &Err::<(), _>(FlowError::UnknownAuthenticator))
                .await;
        }
        assert!(matches!(
            guard.acquire(&t).await,
            Err(FlowError::Throttled { retry_after: 300 })
        ));
        assert_eq!(
            ThrottleKey::client(&ClientInfo::default(), policy.per_address).name,
            UNKNOWN_ADDRESS
        );
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

    fn failures(t: &MemoryThrottle, key: &ThrottleKey) -> Option<u32> {
        t.counters.lock().unwrap().get(&key.name).map(|(n, _)| *n)
    }

    #[tokio::test]
    async fn an_outage_counts_no_failure_on_a_proven_session_address() {
        let clock = ManualClock::new(1_000_000);
        let t = MemoryThrottle::new(Arc::new(clock));
        let policy = ThrottlePolicy::default();
        let client = ClientInfo::new(Some("192.0.2.7".parse().unwrap()));
        let address = ThrottleKey::client(&client, policy.per_address);
        let guard = Guard::new(&policy, &client, None, true);
        guard.acquire(&t).await.unwrap();
        let outage: Result<(), FlowError> = Err(FlowError::Provider(
            crate::ProviderError::Upstream(crate::UpstreamError::Timeout),
        ));
        guard.settle(&t, &outage).await;
        assert_eq!(failures(&t, &address), None, "an outage is not a failure");
        let refused: Result<(), FlowError> = Err(FlowError::UnknownAuthenticator);
        guard.settle(&t, &refused).await;
        assert_eq!(failures(&t, &address), Some(1), "a refused proof counts");
    }

    #[tokio::test]
    async fn memory_throttle_sweeps_expired_counters_only_above_its_bound() {
        let clock = ManualClock::new(1_000_000);
        let t = MemoryThrottle::new(Arc::new(clock.clone()));
        let len = || t.counters.lock().unwrap().len();
        for i in 0..SWEEP_ABOVE {
            t.try_acquire(&key(&format!("k{i}"))).await.unwrap();
        }
        assert_eq!(len(), SWEEP_ABOVE);
        // Every window ends exactly now: expired, but at the bound nothing
        // is swept.
        clock.advance_secs(60);
        t.try_acquire(&key("live")).await.unwrap();
        assert_eq!(len(), SWEEP_ABOVE + 1, "no sweep at the bound");
        // Above it, the next attempt drops every expired counter (a window
        // ending exactly now included) and keeps the live one.
        t.try_acquire(&key("next")).await.unwrap();
        assert_eq!(len(), 2);
        assert_eq!(failures(&t, &key("live")), Some(1));
    }

    #[test]
    fn memory_throttle_debug_names_the_type_and_no_keys() {
        let t = MemoryThrottle::new(Arc::new(ManualClock::new(0)));
        assert_eq!(format!("{t:?}"), "MemoryThrottle { .. }");
    }
}

//! The throttle counters: Redis shared by two instances, windows timed by
//! Redis, attempts reserved atomically, and a Redis outage; the memory
//! throttle through a whole `Passlock`; and the Redis id_token replay cache.

use std::time::Duration;

use futures_util::future::join_all;
use passlock_core::FlowError;
use passlock_core::throttle::{Limit, RedisThrottle, Throttle, ThrottleKey};
use passlock_tests::RedisPrefix;

fn key(limit: Limit) -> ThrottleKey {
    ThrottleKey::new(passlock_tests::unique_name("test-throttle"), limit)
}

/// A throttle under the test's prefix, on a connection of its own (like
/// another app instance).
#[allow(clippy::unwrap_used)]
async fn throttle(keys: &RedisPrefix) -> RedisThrottle {
    let conn = redis::aio::ConnectionManager::new(
        redis::Client::open(passlock_tests::redis_url()).unwrap(),
    )
    .await
    .unwrap();
    RedisThrottle::new(conn, keys.prefix())
}

#[tokio::test]
async fn redis_throttle_is_shared_by_instances() {
    let keys = passlock_tests::redis_prefix("test-throttle").await;
    let a = throttle(&keys).await;
    let b = throttle(&keys).await;
    let k = key(Limit::new(4, Duration::from_secs(60)));
    for t in [&a, &b, &a, &b] {
        t.try_acquire(&k).await.unwrap();
    }
    for t in [&a, &b] {
        match t.try_acquire(&k).await {
            Err(FlowError::Throttled { retry_after }) => {
                assert!((1..=60).contains(&retry_after), "{retry_after}");
            }
            other => panic!("{other:?}"),
        }
    }
    // Another key is untouched; a release on one instance frees one attempt
    // for both; a reset on one instance resets both.
    a.try_acquire(&key(Limit::new(4, Duration::from_secs(60))))
        .await
        .unwrap();
    b.release(&k).await.unwrap();
    a.try_acquire(&k).await.unwrap();
    assert!(matches!(
        b.try_acquire(&k).await,
        Err(FlowError::Throttled { .. })
    ));
    b.reset(&k).await.unwrap();
    a.try_acquire(&k).await.unwrap();
    b.reset(&k).await.unwrap();
    assert_eq!(keys.keys().await.len(), 1, "the other key's counter");
}

#[tokio::test]
async fn redis_throttle_reserves_concurrent_attempts_atomically() {
    // 30 attempts at once over two instances: exactly the limit pass.
    let keys = passlock_tests::redis_prefix("test-throttle").await;
    let a = throttle(&keys).await;
    let b = throttle(&keys).await;
    let k = key(Limit::new(5, Duration::from_secs(60)));
    let results = join_all((0..30).map(|i| {
        let t = if i % 2 == 0 { &a } else { &b };
        t.try_acquire(&k)
    }))
    .await;
    let passed = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(FlowError::Throttled { .. })))
        .count();
    assert_eq!((passed, refused), (5, 25));
    a.reset(&k).await.unwrap();
}

/// The window's expiry as Redis holds it, in milliseconds (`PTTL`).
#[allow(clippy::unwrap_used)]
async fn pttl(keys: &RedisPrefix, k: &ThrottleKey) -> i64 {
    let name = format!("{}{}", keys.prefix(), k.name);
    redis::cmd("PTTL")
        .arg(name)
        .query_async(&mut keys.connection())
        .await
        .unwrap()
}

/// The window is timed by Redis: the first failure sets the key's expiry
/// to the window (a minute: no wall-clock margin to lose on a busy
/// machine), the limit answers the time left, and once Redis expires the
/// key (made to happen now with `PEXPIRE`, instead of sleeping) counting
/// starts again in a new window.
#[tokio::test]
async fn redis_throttle_window_expires() {
    let keys = passlock_tests::redis_prefix("test-throttle").await;
    let t = throttle(&keys).await;
    let k = key(Limit::new(2, Duration::from_secs(60)));
    // Failures counted without a reservation are all counted (INCR is atomic).
    let (r1, r2, r3) = tokio::join!(
        t.record_failure(&k),
        t.record_failure(&k),
        t.record_failure(&k)
    );
    r1.unwrap();
    r2.unwrap();
    r3.unwrap();
    let left = pttl(&keys, &k).await;
    assert!((50_000..=60_000).contains(&left), "{left}");
    match t.try_acquire(&k).await {
        Err(FlowError::Throttled { retry_after }) => {
            assert!((50..=60).contains(&retry_after), "{retry_after}");
        }
        other => panic!("{other:?}"),
    }
    let name = format!("{}{}", keys.prefix(), k.name);
    let _: i64 = redis::cmd("PEXPIRE")
        .arg(&name)
        .arg(1)
        .query_async(&mut keys.connection())
        .await
        .unwrap();
    while pttl(&keys, &k).await != -2 {
        tokio::task::yield_now().await;
    }
    t.try_acquire(&k).await.unwrap();
    let left = pttl(&keys, &k).await;
    assert!((50_000..=60_000).contains(&left), "a new window: {left}");
    t.try_acquire(&k).await.unwrap();
    assert!(matches!(
        t.try_acquire(&k).await,
        Err(FlowError::Throttled { .. })
    ));
}

#[tokio::test]
async fn redis_throttle_down_refuses_with_a_store_error() {
    // A port nobody listens on: the check fails closed (503), and the
    // error carries no URL.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = RedisThrottle::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert_eq!(err.status().as_u16(), 503);
}

/// The Redis replay cache keeps the replay-cache contract (single use
/// until expiry on the app's clock, one winner of concurrent first uses).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_replay_cache_conformance() {
    use passlock_core::store::RedisReplayCache;
    use passlock_test::conformance;
    let keys = passlock_tests::redis_prefix("test-jti").await;
    let cache = RedisReplayCache::new(keys.connection(), keys.prefix());
    conformance::replay_cache(std::sync::Arc::new(cache))
        .await
        .unwrap();
    assert!(!keys.keys().await.is_empty(), "the jtis are in Redis");
}

/// The Redis replay cache's Debug names its key prefix (to tell instances'
/// caches apart in logs) and nothing of the connection.
#[tokio::test]
async fn redis_replay_cache_debug_names_its_prefix() {
    use passlock_core::provider::jwt::RedisReplayCache;
    let keys = passlock_tests::redis_prefix("test-jti-debug").await;
    let cache = RedisReplayCache::new(keys.connection(), keys.prefix());
    let debug = format!("{cache:?}");
    assert!(debug.starts_with("RedisReplayCache"), "{debug}");
    assert!(debug.contains(&format!("{:?}", keys.prefix())), "{debug}");
}

#[tokio::test]
async fn redis_replay_cache_down_is_a_store_error() {
    use passlock_core::store::RedisReplayCache;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = RedisReplayCache::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert_eq!(err.status().as_u16(), 503);
}

//! The throttle counters: Redis shared by two instances, windows timed by
//! Redis, attempts reserved atomically, and a Redis outage; the memory
//! throttle through a whole `Passlock`; and the Redis id_token replay cache.

use std::time::Duration;

use futures_util::future::join_all;
use passlock_core::FlowError;
use passlock_core::throttle::{Limit, RedisThrottle, Throttle, ThrottleKey};

const REDIS: &str = "redis://127.0.0.1:6379";

fn key(limit: Limit) -> ThrottleKey {
    ThrottleKey::new(passlock_tests::unique_name("test-throttle"), limit)
}

#[tokio::test]
async fn redis_throttle_is_shared_by_instances() {
    let a = RedisThrottle::connect(REDIS).await.unwrap();
    let b = RedisThrottle::connect(REDIS).await.unwrap();
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
}

#[tokio::test]
async fn redis_throttle_reserves_concurrent_attempts_atomically() {
    // 30 attempts at once over two instances: exactly the limit pass.
    let a = RedisThrottle::connect(REDIS).await.unwrap();
    let b = RedisThrottle::connect(REDIS).await.unwrap();
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

#[tokio::test]
async fn redis_throttle_window_expires() {
    let t = RedisThrottle::connect(REDIS).await.unwrap();
    let k = key(Limit::new(2, Duration::from_millis(400)));
    // Failures counted without a reservation are all counted (INCR is atomic).
    let (r1, r2, r3) = tokio::join!(
        t.record_failure(&k),
        t.record_failure(&k),
        t.record_failure(&k)
    );
    r1.unwrap();
    r2.unwrap();
    r3.unwrap();
    assert!(matches!(
        t.try_acquire(&k).await,
        Err(FlowError::Throttled { retry_after: 1 })
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    t.try_acquire(&k).await.unwrap();
    t.reset(&k).await.unwrap();
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
    use passlock_core::provider::jwt::RedisReplayCache;
    use passlock_core::testing::conformance;
    let conn = redis::aio::ConnectionManager::new(redis::Client::open(REDIS).unwrap())
        .await
        .unwrap();
    let prefix = format!("{}:", passlock_tests::unique_name("test-jti"));
    let cache = RedisReplayCache::new(conn.clone(), prefix.clone());
    conformance::replay_cache(std::sync::Arc::new(cache))
        .await
        .unwrap();
    // Clean up this run's keys.
    let mut conn = conn;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn redis_replay_cache_down_is_a_store_error() {
    use passlock_core::provider::jwt::RedisReplayCache;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = RedisReplayCache::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert_eq!(err.status().as_u16(), 503);
}

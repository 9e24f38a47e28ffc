//! `SqlSessionStore` on SQLite and PostgreSQL: save, load, update, TTL,
//! delete, expiry, and what the table holds.

use std::collections::HashMap;
use std::sync::Arc;

use actix_session::storage::{SessionKey, SessionStore};
use actix_web::cookie::time::Duration;
use passlock_actix::SqlSessionStore;
use passlock_actix::passlock_core::clock::ManualClock;

fn state(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn key(s: &str) -> SessionKey {
    s.to_owned().try_into().unwrap()
}

/// The store contract, on whatever database `store` uses; `ids` lists the
/// stored ids.
async fn conformance<F, Fut>(store: SqlSessionStore, clock: ManualClock, ids: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    store.migrate().await.unwrap();
    store.migrate().await.unwrap(); // idempotent
    let ttl = Duration::minutes(10);

    let a = store
        .save(state(&[("passlock", "{\"x\":1}")]), &ttl)
        .await
        .unwrap();
    let b = store
        .save(state(&[("other", "\"y\"")]), &ttl)
        .await
        .unwrap();
    let a_key = a.as_ref().to_owned();
    assert_eq!(a_key.len(), 64, "256 random bits in hex");
    assert!(a_key.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a_key, b.as_ref());
    let stored = ids().await;
    assert_eq!(stored.len(), 2);
    assert!(!stored.contains(&a_key), "the table holds no session key");

    assert_eq!(
        store.load(&a).await.unwrap(),
        Some(state(&[("passlock", "{\"x\":1}")]))
    );
    assert_eq!(store.load(&key("unknown")).await.unwrap(), None);

    // Update keeps the key and replaces the state.
    let a = store
        .update(a, state(&[("passlock", "{\"x\":2}")]), &ttl)
        .await
        .unwrap();
    assert_eq!(a.as_ref(), a_key);
    assert_eq!(
        store.load(&a).await.unwrap(),
        Some(state(&[("passlock", "{\"x\":2}")]))
    );

    // Expiry follows the clock; update_ttl extends it.
    clock.advance_secs(9 * 60);
    store.update_ttl(&a, &ttl).await.unwrap();
    clock.advance_secs(2 * 60);
    assert!(store.load(&a).await.unwrap().is_some(), "ttl was extended");
    assert_eq!(store.load(&b).await.unwrap(), None, "b expired");
    // Updating an expired session starts a new one under a new key.
    let b2 = store.update(b, state(&[("k", "1")]), &ttl).await.unwrap();
    assert_ne!(b2.as_ref(), a_key);
    assert_eq!(store.load(&b2).await.unwrap(), Some(state(&[("k", "1")])));

    clock.advance_secs(11 * 60);
    assert_eq!(store.delete_expired().await.unwrap(), 3, "a, b and b2");
    assert!(ids().await.is_empty());

    let c = store.save(state(&[("k", "v")]), &ttl).await.unwrap();
    store.delete(&c).await.unwrap();
    assert_eq!(store.load(&c).await.unwrap(), None);
    store.delete(&c).await.unwrap(); // deleting twice is fine
}

#[tokio::test]
async fn sql_session_store_on_sqlite() {
    let pool = passlock_tests::sqlite_pool().await;
    let clock = ManualClock::starting_now();
    let store = SqlSessionStore::sqlite(pool.clone()).with_clock(Arc::new(clock.clone()));
    conformance(store, clock, || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar("SELECT id FROM passlock_actix_session")
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    })
    .await;
}

#[tokio::test]
async fn sql_session_store_on_postgres() {
    let (pool, _guard) = passlock_tests::pg_database().await;
    let clock = ManualClock::starting_now();
    let store = SqlSessionStore::postgres(pool.clone()).with_clock(Arc::new(clock.clone()));
    conformance(store, clock, || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar("SELECT id FROM passlock_actix_session")
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    })
    .await;
    pool.close().await;
}

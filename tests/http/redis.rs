//! The scenarios with sessions in Redis (tower-sessions-redis-store over
//! fred), and two app instances sharing Redis sessions and PostgreSQL
//! stores.
//!
//! `RedisStore` keys sessions by their bare id, without a prefix, so every
//! store here is wrapped in a [`Tracked`] store that notes the ids it
//! writes; [`RedisKeys`] deletes them when the world is dropped (and the
//! sessions expire after ten minutes anyway).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use passlock_core::Passlock;
use passlock_core::clock::ManualClock;
use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
use passlock_core::store::postgres::{
    PgAuthenticatorStore, PgCeremonyStore, PgCredentialStore, migrate,
};
use serde_json::json;
use sqlx::PgPool;
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{Builder, ClientLike, Config, KeysInterface, Pool};

use crate::axum::{AxumApp, app_without_sessions};
use crate::harness::{
    self, MemoryUsers, ORIGIN, Reply, TestApp, TestRequest, World, authenticator,
};

use passlock_tests::redis_url;

/// A fresh fred pool on the test Redis.
async fn fred_pool() -> Pool {
    let pool = Builder::from_config(Config::from_url(&redis_url()).unwrap())
        .build_pool(2)
        .unwrap();
    pool.init().await.unwrap();
    pool
}

/// The session ids written to Redis by a test; deleted when dropped.
#[derive(Debug, Clone, Default)]
pub(crate) struct RedisKeys(Arc<Mutex<HashSet<String>>>);

impl RedisKeys {
    fn insert(&self, id: &Id) {
        self.0.lock().unwrap().insert(id.to_string());
    }

    fn remove(&self, id: &Id) {
        self.0.lock().unwrap().remove(&id.to_string());
    }
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        // Only the last handle cleans up.
        if Arc::strong_count(&self.0) > 1 {
            return;
        }
        let keys: Vec<String> = self.0.lock().unwrap().drain().collect();
        if keys.is_empty() {
            return;
        }
        // Drop runs inside the test's runtime: do the async work on a thread.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let client = Builder::from_config(Config::from_url(&redis_url()).unwrap())
                    .build()
                    .unwrap();
                client.init().await.unwrap();
                let _: i64 = client.del(keys).await.unwrap();
                client.quit().await.unwrap();
            });
        })
        .join();
        if done.is_err() {
            eprintln!("could not delete the test's Redis keys");
        }
    }
}

/// A `RedisStore` that notes the ids it writes.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    inner: RedisStore<Pool>,
    keys: RedisKeys,
}

#[async_trait::async_trait]
impl SessionStore for Tracked {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.inner.create(record).await?;
        self.keys.insert(&record.id);
        Ok(())
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.keys.insert(&record.id);
        self.inner.save(record).await
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.inner.load(id).await
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner.delete(id).await?;
        self.keys.remove(id);
        Ok(())
    }
}

/// A Redis session store (a fresh fred pool) noting its ids in `keys`.
pub(crate) async fn tracked(keys: &RedisKeys) -> Tracked {
    Tracked {
        inner: RedisStore::new(fred_pool().await),
        keys: keys.clone(),
    }
}

/// The scenario app with sessions in Redis (a fresh fred pool), with the
/// cookie flags the README recommends.
async fn redis_app(passlock: Passlock<i64>, keys: &RedisKeys) -> AxumApp {
    let store = Tracked {
        inner: RedisStore::new(fred_pool().await),
        keys: keys.clone(),
    };
    let sessions = SessionManagerLayer::new(store)
        .with_secure(passlock.secure_cookies())
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(Duration::minutes(10)));
    AxumApp(app_without_sessions(passlock).layer(sessions))
}

/// The axum app on Redis sessions, cleaning up its keys when dropped.
pub(crate) struct RedisApp {
    app: AxumApp,
    keys: RedisKeys,
}

impl TestApp for RedisApp {
    async fn send(&self, req: TestRequest) -> Reply {
        self.app.send(req).await
    }
}

async fn redis_world() -> World<RedisApp> {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let keys = RedisKeys::default();
    World {
        app: RedisApp {
            app: redis_app(passlock.clone(), &keys).await,
            keys,
        },
        passlock,
        clock,
    }
}

mod redis_scenarios {
    crate::http_scenarios!(super::redis_world);
}

/// The id in a client's `id` cookie.
fn session_id(cookies: &str) -> String {
    let start = cookies.find("\"id\": \"").unwrap() + 7;
    let len = cookies[start..].find('"').unwrap();
    cookies[start..start + len].to_owned()
}

/// The session really lives in Redis under its id, with a TTL, and logout
/// deletes the key.
#[tokio::test]
async fn sessions_live_in_redis_and_logout_deletes_the_key() {
    let w = redis_world().await;
    let redis = fred_pool().await;
    let mut c = w.client();
    let mut auth = authenticator();
    let (code, _) = c
        .registration_ceremony(&mut auth, json!({ "username": "alice" }))
        .await;
    let r = c.post("/passkey/register", c.proof(&code)).await;
    assert_eq!(r.status, 201, "{r:?}");
    // The session cookie: HttpOnly, SameSite=Lax, not Secure on
    // http://localhost, and a Max-Age matching the store's expiry.
    let cookie = r
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && !v.starts_with("passlock_signup="))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap();
    for flag in ["httponly", "samesite=lax", "path=/", "max-age=600"] {
        assert!(cookie.split("; ").any(|p| p == flag), "{flag}: {cookie}");
    }
    assert!(!cookie.contains("secure"), "{cookie}");
    let user: i64 = r.json["user_id"].as_str().unwrap().parse().unwrap();
    let id = session_id(&c.cookies());
    let stored: Option<Vec<u8>> = redis.get(&id).await.unwrap();
    assert!(stored.is_some(), "no Redis key {id}");
    let ttl: i64 = redis.ttl(&id).await.unwrap();
    assert!(ttl > 0 && ttl <= 600, "ttl {ttl}");
    assert!(w.app.keys.0.lock().unwrap().contains(&id));
    assert_eq!(c.session_user().await, Some(user));

    let r = c
        .post_raw("/passkey/logout", "application/json", Vec::new())
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let exists: i64 = redis.exists(&id).await.unwrap();
    assert_eq!(exists, 0, "logout left the session in Redis");
    redis.quit().await.unwrap();
}

/// Cleanup works: the keys of a dropped world are gone.
#[tokio::test]
async fn dropping_the_world_deletes_its_keys() {
    let w = redis_world().await;
    let mut c = w.client();
    c.sign_up(&mut authenticator(), "alice").await;
    let id = session_id(&c.cookies());
    drop(c);
    drop(w);
    let redis = fred_pool().await;
    let exists: i64 = redis.exists(&id).await.unwrap();
    assert_eq!(exists, 0);
    redis.quit().await.unwrap();
}

// ---------------------------------------------------------------------------
// Two instances
// ---------------------------------------------------------------------------

/// Two app instances; requests go to the one [`Instances::on`] names.
struct Instances {
    apps: [AxumApp; 2],
    target: AtomicUsize,
    served: [AtomicUsize; 2],
    _keys: RedisKeys,
}

impl Instances {
    /// Sends the next requests to instance `i`.
    fn on(&self, i: usize) {
        self.target.store(i, Ordering::SeqCst);
    }
}

impl TestApp for Instances {
    async fn send(&self, req: TestRequest) -> Reply {
        let i = self.target.load(Ordering::SeqCst);
        self.served[i].fetch_add(1, Ordering::SeqCst);
        self.apps[i].send(req).await
    }
}

/// One instance's passlock: embedded provider and stores on `pool`.
async fn pg_passlock(pool: PgPool, clock: &ManualClock, users: Arc<MemoryUsers>) -> Passlock<i64> {
    let provider = EmbeddedProvider::new(
        EmbeddedConfig::new("localhost", "passlock tests", [ORIGIN])
            .with_clock(Arc::new(clock.clone())),
        Arc::new(PgCredentialStore::new(pool.clone())),
        Arc::new(PgCeremonyStore::new(pool.clone())),
    )
    .await
    .unwrap();
    Passlock::builder(
        Arc::new(provider),
        Arc::new(PgAuthenticatorStore::<i64>::new(pool)),
    )
    .sign_up(users)
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap()
}

/// Register on one instance, log in on the other, step up on the first; a
/// session cookie from one works on the other, and logout on one ends the
/// session on both.
#[tokio::test]
async fn two_instances_share_redis_sessions_and_postgres_stores() {
    let (pool, guard) = passlock_tests::pg_database().await;
    migrate(&pool).await.unwrap();
    let second_pool = guard.pool().await;
    let clock = ManualClock::starting_now();
    // The app's users table, shared as a database table would be.
    let users = Arc::new(MemoryUsers::default());
    let keys = RedisKeys::default();
    let first = pg_passlock(pool.clone(), &clock, users.clone()).await;
    let second = pg_passlock(second_pool.clone(), &clock, users).await;
    let w = World {
        app: Instances {
            apps: [
                redis_app(first.clone(), &keys).await,
                redis_app(second, &keys).await,
            ],
            target: AtomicUsize::new(0),
            served: [AtomicUsize::new(0), AtomicUsize::new(0)],
            _keys: keys,
        },
        passlock: first,
        clock,
    };

    // Register on the first instance.
    w.app.on(0);
    let mut phone = w.client();
    let mut auth = authenticator();
    let (user, aid) = phone.sign_up(&mut auth, "alice").await;
    assert_eq!(w.links(user).await, vec![aid.clone()]);
    // Its session cookie works on the second.
    w.app.on(1);
    assert_eq!(phone.session_user().await, Some(user));
    let me = phone.get("/app/me").await;
    assert_eq!(me.json["user_id"], user);

    // Log in on the second instance, with a ceremony split across both:
    // authorize and options on the second, verification on the first.
    let mut laptop = w.client();
    let answer = laptop
        .post(
            "/passkey/authentication/authorize",
            json!({ "purpose": "login" }),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let base = harness::service_base(&answer.json);
    let options = laptop
        .post(
            &format!("{base}/authentication/options"),
            json!({ "authenticationToken": answer.json["authenticationToken"] }),
        )
        .await;
    assert_eq!(options.status, 200, "{options:?}");
    let response = auth.get(&options.json["optionsJSON"]).await.unwrap();
    w.app.on(0);
    let verified = laptop
        .post(
            &format!("{base}/authentication/verification"),
            json!({ "response": response, "sessionToken": options.json["sessionToken"] }),
        )
        .await;
    assert_eq!(verified.status, 200, "{verified:?}");
    w.app.on(1);
    let code = verified.json["code"].as_str().unwrap().to_owned();
    let r = laptop.post("/passkey/login", laptop.proof(&code)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], user.to_string());
    w.app.on(0);
    assert_eq!(laptop.session_user().await, Some(user));

    // Step up on the first instance; the second sees the fresh verification.
    w.clock.advance_secs(120);
    laptop
        .post("/app/sensitive", json!({}))
        .await
        .assert_error(401, "step_up_required");
    let r = laptop.step_up(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    w.app.on(1);
    let r = laptop.post("/app/sensitive", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");

    // Logout on the second ends the session on both; the other browser
    // stays signed in.
    let mut stolen = w.client();
    stolen.set_cookies(&laptop);
    let r = laptop
        .post_raw("/passkey/logout", "application/json", Vec::new())
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(stolen.session_user().await, None);
    w.app.on(0);
    assert_eq!(stolen.session_user().await, None);
    assert_eq!(laptop.session_user().await, None);
    assert_eq!(phone.session_user().await, Some(user));
    w.app.on(1);
    assert_eq!(phone.session_user().await, Some(user));

    assert!(
        w.app.served.iter().all(|n| n.load(Ordering::SeqCst) >= 5),
        "{:?}",
        w.app.served
    );
    drop((phone, laptop, stolen));
    drop(w);
    pool.close().await;
    second_pool.close().await;
    drop(guard);
}

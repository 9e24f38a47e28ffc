//! Logout cannot be undone (issue 13, item 3): a request that loaded a
//! session before the logout and writes it back afterwards, under the old id
//! or a new one, finds it signed out, on both adapters and every session
//! store (memory, SQLite, PostgreSQL, Redis); the absolute session lifetime;
//! a failing revocation store; two instances sharing one.
//!
//! The write-back is done deterministically through the session store's own
//! API, exactly as the racing request's session layer would.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;

use actix_session::storage::{RedisSessionStore, SessionKey, SessionStore as ActixStore};
use actix_web::cookie::{Cookie, CookieJar, Key};
use passlock_actix::SqlSessionStore;
use passlock_core::clock::{ManualClock, UnixMillis};
use passlock_core::revocation::SessionFamily;
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::store::RevocationStore;
use passlock_core::{Passlock, Policy, StoreError};
use serde_json::{Value, json};
use tower_sessions::session::{Id, Record};
use tower_sessions::{MemoryStore, SessionStore as TowerStore};

use crate::actix::ActixApp;
use crate::axum::AxumApp;
use crate::harness::{self, Client, TestApp, World, authenticator};

/// What a racing request's session layer does with the session store.
pub(crate) trait Backdoor {
    type Stale;
    /// The session's state as a request in flight loaded it.
    async fn load(&self, cookie: &str) -> Self::Stale;
    /// Saves it back as that request would (its old id); the cookie the
    /// browser ends up with.
    async fn save_back(&self, cookie: &str, stale: &Self::Stale) -> String;
    /// Writes it under a new id, as a request cycling the id would; the
    /// cookie for that id.
    async fn create_new(&self, stale: &Self::Stale) -> String;
}

/// A tower-sessions store (axum).
pub(crate) struct Tower<S>(pub(crate) S);

impl<S: TowerStore> Backdoor for Tower<S> {
    type Stale = Record;

    async fn load(&self, cookie: &str) -> Record {
        let id = Id::from_str(cookie).unwrap();
        self.0.load(&id).await.unwrap().expect("the session exists")
    }

    async fn save_back(&self, cookie: &str, stale: &Record) -> String {
        // Memory and SQL stores upsert; the Redis store only overwrites a
        // key that exists (`SET XX`), and its save then fails on the nil
        // answer: that store does not bring the old id back, the others do.
        let _ = self.0.save(stale).await;
        cookie.to_owned()
    }

    async fn create_new(&self, stale: &Record) -> String {
        let mut record = stale.clone();
        record.id = Id::default();
        self.0.create(&mut record).await.unwrap();
        record.id.to_string()
    }
}

/// An actix-session store and the app's cookie key.
pub(crate) struct Actix<St>(pub(crate) St, pub(crate) Key);

impl<St: ActixStore> Actix<St> {
    fn session_key(&self, cookie: &str) -> SessionKey {
        let mut jar = CookieJar::new();
        // The browser holds the cookie percent-encoded, as it was sent.
        let sent = Cookie::parse_encoded(format!("id={cookie}")).unwrap();
        jar.add_original(sent.into_owned());
        let value = jar.private(&self.1).get("id").unwrap().value().to_owned();
        SessionKey::try_from(value).unwrap()
    }

    fn cookie(&self, key: SessionKey) -> String {
        let mut jar = CookieJar::new();
        jar.private_mut(&self.1)
            .add(Cookie::new("id", String::from(key)));
        let encoded = jar.get("id").unwrap().encoded().to_string();
        encoded.split_once('=').unwrap().1.to_owned()
    }
}

const TTL: actix_web::cookie::time::Duration = actix_web::cookie::time::Duration::days(1);

impl<St: ActixStore> Backdoor for Actix<St> {
    type Stale = std::collections::HashMap<String, String>;

    async fn load(&self, cookie: &str) -> Self::Stale {
        let key = self.session_key(cookie);
        self.0
            .load(&key)
            .await
            .unwrap()
            .expect("the session exists")
    }

    async fn save_back(&self, cookie: &str, stale: &Self::Stale) -> String {
        let key = self.session_key(cookie);
        // actix-session updates a changed session; a store may answer with
        // another key (SqlSessionStore and Redis insert a fresh one when the
        // old one is gone).
        let key = self.0.update(key, stale.clone(), &TTL).await.unwrap();
        self.cookie(key)
    }

    async fn create_new(&self, stale: &Self::Stale) -> String {
        let key = self.0.save(stale.clone(), &TTL).await.unwrap();
        self.cookie(key)
    }
}

/// Everything a signed-out browser is refused.
pub(crate) async fn assert_signed_out<A: TestApp>(c: &mut Client<'_, A>, what: &str) {
    c.get("/passkey/session")
        .await
        .assert_error(401, "not_authenticated");
    let me = c.get("/app/me").await;
    assert_eq!(me.status, 200, "{what}: {me:?}");
    assert_eq!(me.json["user_id"], Value::Null, "{what}: {me:?}");
    c.post("/app/sensitive", json!({}))
        .await
        .assert_error(401, "not_authenticated");
    // No passkey can be added to the account: this is a sign-up, and
    // without a username it is refused.
    c.post("/passkey/registration/authorize", json!({}))
        .await
        .assert_error(400, "invalid_username");
}

/// Sign in, keep a stolen copy of the cookie and the session as a request
/// in flight loaded it, log out, write the stale session back under its
/// old id and under a new one (the one-jar browser gets that cookie): every
/// copy is signed out.
async fn write_back_after_logout_is_signed_out<A: TestApp, B: Backdoor>(w: World<A>, door: B) {
    let mut c = w.client();
    let mut auth = authenticator();
    let (uid, _) = c.sign_up(&mut auth, "alice").await;
    let cookie = c.cookie("id").expect("a session cookie").to_owned();
    let stale = door.load(&cookie).await;
    let mut thief = w.client();
    thief.set_cookies(&c);
    assert_eq!(thief.session_user().await, Some(uid));
    assert_eq!(
        thief.post("/app/sensitive", json!({})).await.status,
        200,
        "signed in before the logout"
    );

    let r = c
        .post_raw("/passkey/logout", "application/json", Vec::new())
        .await;
    assert_eq!(r.status, 204, "{r:?}");

    let old = door.save_back(&cookie, &stale).await;
    thief.set_cookie("id", &old);
    assert_signed_out(&mut thief, "the stolen cookie after a write-back").await;

    let new = door.create_new(&stale).await;
    c.set_cookie("id", &new);
    assert_signed_out(&mut c, "the browser after a write-back under a new id").await;

    // A new login in that browser is a new sign-in, not revoked.
    let r = c.login(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.session_user().await, Some(uid));
}

// ---- axum ----

pub(crate) fn axum_world(
    passlock: Passlock<i64>,
    clock: ManualClock,
    app: AxumApp,
) -> World<AxumApp> {
    World {
        app,
        passlock,
        clock,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_memory_write_back_after_logout_is_signed_out() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let store = MemoryStore::default();
    let app = AxumApp(crate::axum::app(passlock.clone(), store.clone()));
    write_back_after_logout_is_signed_out(axum_world(passlock, clock, app), Tower(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_sqlite_write_back_after_logout_is_signed_out() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let store = tower_sessions_sqlx_store::SqliteStore::new(passlock_tests::sqlite_pool().await);
    store.migrate().await.unwrap();
    let app = AxumApp(crate::axum::app(passlock.clone(), store.clone()));
    write_back_after_logout_is_signed_out(axum_world(passlock, clock, app), Tower(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_postgres_write_back_after_logout_is_signed_out() {
    let (pool, guard) = passlock_tests::pg_database().await;
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool.clone());
    store.migrate().await.unwrap();
    let app = AxumApp(crate::axum::app(passlock.clone(), store.clone()));
    write_back_after_logout_is_signed_out(axum_world(passlock, clock, app), Tower(store)).await;
    pool.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_redis_write_back_after_logout_is_signed_out() {
    let keys = crate::redis::RedisKeys::default();
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let store = crate::redis::tracked(&keys).await;
    let app = AxumApp(crate::axum::app(passlock.clone(), store.clone()));
    write_back_after_logout_is_signed_out(axum_world(passlock, clock, app), Tower(store)).await;
}

// ---- actix ----

pub(crate) fn actix_world<St: ActixStore + Clone + Send + 'static>(
    passlock: Passlock<i64>,
    clock: ManualClock,
    store: St,
    key: Key,
) -> World<ActixApp> {
    let for_app = passlock.clone();
    let app = ActixApp::start(move || async move { crate::actix::app(for_app, store, key) });
    World {
        app,
        passlock,
        clock,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_sqlite_write_back_after_logout_is_signed_out() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let store = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
    store.migrate().await.unwrap();
    let key = Key::generate();
    let w = actix_world(passlock, clock, store.clone(), key.clone());
    write_back_after_logout_is_signed_out(w, Actix(store, key)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_postgres_write_back_after_logout_is_signed_out() {
    let (pool, guard) = passlock_tests::pg_database().await;
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let store = SqlSessionStore::postgres(pool.clone());
    store.migrate().await.unwrap();
    let key = Key::generate();
    let w = actix_world(passlock, clock, store.clone(), key.clone());
    write_back_after_logout_is_signed_out(w, Actix(store, key)).await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_redis_write_back_after_logout_is_signed_out() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let keys = passlock_tests::redis_prefix("passlock_revocation").await;
    let prefix = keys.prefix().to_owned();
    let store = RedisSessionStore::builder(passlock_tests::redis_url())
        .cache_keygen(move |k| format!("{prefix}{k}"))
        .build()
        .await
        .unwrap();
    let key = Key::generate();
    let w = actix_world(passlock, clock, store.clone(), key.clone());
    write_back_after_logout_is_signed_out(w, Actix(store, key)).await;
    drop(keys);
}

// ---- the absolute session lifetime ----

/// A passlock on `clock` whose sessions live `secs` at most.
async fn short_lived(clock: &ManualClock, secs: u64) -> Passlock<i64> {
    let mut policy = Policy::default();
    policy.session_lifetime_secs = secs;
    with_policy(clock, policy, None).await
}

async fn with_policy(
    clock: &ManualClock,
    policy: Policy,
    revocations: Option<Arc<dyn RevocationStore>>,
) -> Passlock<i64> {
    use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
    let provider = EmbeddedProvider::in_memory(EmbeddedConfig::new(
        "localhost",
        "passlock tests",
        [harness::ORIGIN],
    ))
    .await
    .unwrap();
    let mut builder = Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(harness::MemoryUsers::default()))
    .clock(Arc::new(clock.clone()))
    .policy(policy);
    if let Some(r) = revocations {
        builder = builder.revocations(r);
    }
    builder.build().unwrap()
}

/// A session is signed out once its sign-in is `session_lifetime_secs` old,
/// however active it was (the session store's own expiry renews on use).
async fn sessions_end_after_the_absolute_lifetime<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    let (uid, _) = c.sign_up(&mut auth, "alice").await;
    for _ in 0..3 {
        w.clock.advance_secs(1_000);
        assert_eq!(
            c.session_user().await,
            Some(uid),
            "active, within the lifetime"
        );
    }
    // A step-up renews the passkey check, not the sign-in.
    let r = c.step_up(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    w.clock.advance_secs(599);
    assert_eq!(c.session_user().await, Some(uid));
    assert_eq!(c.get("/app/admin").await.status, 200);
    w.clock.advance_secs(1);
    assert_signed_out(&mut c, "past the absolute lifetime").await;
    let r = c.get("/app/admin").await;
    r.assert_error(401, "not_authenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_sessions_end_after_the_absolute_lifetime() {
    let clock = ManualClock::starting_now();
    let passlock = short_lived(&clock, 3_600).await;
    let app = AxumApp(crate::axum::app(passlock.clone(), MemoryStore::default()));
    sessions_end_after_the_absolute_lifetime(axum_world(passlock, clock, app)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_sessions_end_after_the_absolute_lifetime() {
    let clock = ManualClock::starting_now();
    let passlock = short_lived(&clock, 3_600).await;
    let store = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
    store.migrate().await.unwrap();
    let w = actix_world(passlock, clock, store, Key::generate());
    sessions_end_after_the_absolute_lifetime(w).await;
}

#[test]
fn a_zero_session_lifetime_is_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let clock = ManualClock::starting_now();
    let err = rt.block_on(async {
        use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
        let provider = EmbeddedProvider::in_memory(EmbeddedConfig::new(
            "localhost",
            "passlock tests",
            [harness::ORIGIN],
        ))
        .await
        .unwrap();
        let mut policy = Policy::default();
        policy.session_lifetime_secs = 0;
        Passlock::<i64>::builder(
            Arc::new(provider),
            Arc::new(MemoryAuthenticatorStore::new()),
        )
        .clock(Arc::new(clock))
        .policy(policy)
        .build()
        .unwrap_err()
    });
    assert_eq!(err.field, "policy.session_lifetime_secs");
}

// ---- a failing revocation store ----

/// A revocation store whose writes and reads fail when told to.
#[derive(Debug, Default)]
struct Switch {
    inner: std::sync::Mutex<std::collections::HashMap<String, UnixMillis>>,
    writes_down: AtomicBool,
    reads_down: AtomicBool,
}

fn check(down: &AtomicBool) -> Result<(), StoreError> {
    match down.load(SeqCst) {
        true => Err(StoreError::backend("revocation-store-marker-secret")),
        false => Ok(()),
    }
}

#[async_trait::async_trait]
impl RevocationStore for Switch {
    async fn revoke(&self, key: &str, at: UnixMillis, _: UnixMillis) -> Result<(), StoreError> {
        check(&self.writes_down)?;
        self.inner.lock().unwrap().insert(key.to_owned(), at);
        Ok(())
    }

    async fn latest(&self, keys: &[String]) -> Result<Option<UnixMillis>, StoreError> {
        check(&self.reads_down)?;
        let map = self.inner.lock().unwrap();
        Ok(keys.iter().filter_map(|k| map.get(k).copied()).max())
    }
}

/// Logout with the revocation store down: `503`, and the session is left
/// signed in (the user can retry); loading a signed-in session then is a
/// `503` too (not trusted blindly); an anonymous session needs no store.
async fn a_failing_revocation_store_fails_closed<A: TestApp>(w: World<A>, switch: Arc<Switch>) {
    let mut c = w.client();
    let mut auth = authenticator();
    let (uid, _) = c.sign_up(&mut auth, "alice").await;
    switch.writes_down.store(true, SeqCst);
    let r = c
        .post_raw("/passkey/logout", "application/json", Vec::new())
        .await;
    r.assert_error(503, "session_unavailable");
    assert!(!r.text.contains("marker-secret"), "{r:?}");
    assert_eq!(c.session_user().await, Some(uid), "still signed in: retry");
    switch.writes_down.store(false, SeqCst);

    switch.reads_down.store(true, SeqCst);
    c.get("/passkey/session")
        .await
        .assert_error(503, "session_unavailable");
    c.get("/app/me")
        .await
        .assert_error(503, "session_unavailable");
    let mut anonymous = w.client();
    let r = anonymous.get("/app/me").await;
    assert_eq!(r.status, 200, "an anonymous session reads no marker: {r:?}");
    switch.reads_down.store(false, SeqCst);

    assert_eq!(c.session_user().await, Some(uid));
    let r = c
        .post_raw("/passkey/logout", "application/json", Vec::new())
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(c.session_user().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_a_failing_revocation_store_fails_closed() {
    let clock = ManualClock::starting_now();
    let switch = Arc::new(Switch::default());
    let passlock = with_policy(&clock, Policy::default(), Some(switch.clone())).await;
    let app = AxumApp(crate::axum::app(passlock.clone(), MemoryStore::default()));
    a_failing_revocation_store_fails_closed(axum_world(passlock, clock, app), switch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_a_failing_revocation_store_fails_closed() {
    let clock = ManualClock::starting_now();
    let switch = Arc::new(Switch::default());
    let passlock = with_policy(&clock, Policy::default(), Some(switch.clone())).await;
    let store = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
    store.migrate().await.unwrap();
    let w = actix_world(passlock, clock, store, Key::generate());
    a_failing_revocation_store_fails_closed(w, switch).await;
}

// ---- two instances sharing a revocation store ----

/// Two app instances with their own sessions' copies (the stolen cookie's
/// session written to the second instance's store) sharing one revocation
/// store: a logout on the first signs the copy out on the second.
async fn logout_on_one_instance_ends_the_sign_in_on_the_other<A: TestApp, B: Backdoor>(
    one: World<A>,
    other: World<A>,
    door_one: B,
    door_other: impl Backdoor<Stale = B::Stale>,
) {
    let mut c = one.client();
    let mut auth = authenticator();
    let (uid, _) = c.sign_up(&mut auth, "alice").await;
    let stale = door_one.load(c.cookie("id").unwrap()).await;
    // The same session, as the second instance would serve it.
    let copied = door_other.create_new(&stale).await;
    let mut thief = other.client();
    thief.set_cookie("id", &copied);
    assert_eq!(thief.session_user().await, Some(uid));
    let r = c
        .post_raw("/passkey/logout", "application/json", Vec::new())
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_signed_out(&mut thief, "the copy on the other instance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_two_instances_share_a_postgres_revocation_store() {
    use passlock_core::store::postgres::{PgRevocationStore, migrate};
    let (pool, guard) = passlock_tests::pg_database().await;
    migrate(&pool).await.unwrap();
    let mut worlds = Vec::new();
    let mut doors = Vec::new();
    for _ in 0..2 {
        let clock = ManualClock::starting_now();
        let shared: Arc<dyn RevocationStore> = Arc::new(PgRevocationStore::new(guard.pool().await));
        let passlock = with_policy(&clock, Policy::default(), Some(shared)).await;
        let store = MemoryStore::default();
        let app = AxumApp(crate::axum::app(passlock.clone(), store.clone()));
        worlds.push(axum_world(passlock, clock, app));
        doors.push(Tower(store));
    }
    let (d2, d1) = (doors.pop().unwrap(), doors.pop().unwrap());
    let (w2, w1) = (worlds.pop().unwrap(), worlds.pop().unwrap());
    logout_on_one_instance_ends_the_sign_in_on_the_other(w1, w2, d1, d2).await;
    pool.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_two_instances_share_a_redis_revocation_store() {
    use passlock_core::store::RedisRevocationStore;
    let keys = passlock_tests::redis_prefix("passlock_revoked").await;
    let mut worlds = Vec::new();
    let mut doors = Vec::new();
    for _ in 0..2 {
        let clock = ManualClock::starting_now();
        let shared: Arc<dyn RevocationStore> =
            Arc::new(RedisRevocationStore::new(keys.connection(), keys.prefix()));
        let passlock = with_policy(&clock, Policy::default(), Some(shared)).await;
        let store = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
        store.migrate().await.unwrap();
        let key = Key::generate();
        worlds.push(actix_world(passlock, clock, store.clone(), key.clone()));
        doors.push(Actix(store, key));
    }
    let (d2, d1) = (doors.pop().unwrap(), doors.pop().unwrap());
    let (w2, w1) = (worlds.pop().unwrap(), worlds.pop().unwrap());
    logout_on_one_instance_ends_the_sign_in_on_the_other(w1, w2, d1, d2).await;
    assert!(!keys.keys().await.is_empty(), "the marker is in Redis");
}

#[test]
fn families_are_random() {
    assert_ne!(SessionFamily::random(), SessionFamily::random());
}

/// The family of the session behind the browser's cookie, as stored.
async fn family_of(door: &Tower<MemoryStore>, c: &Client<'_, AxumApp>) -> String {
    let record = door.load(c.cookie("id").unwrap()).await;
    let json = record.data["passlock"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(json).unwrap();
    parsed["family"].as_str().unwrap().to_owned()
}

/// A step-up and a new passkey keep the sign-in's family (so a logout
/// revokes what they wrote); a login on top of a session starts a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn step_up_keeps_the_family_and_login_starts_a_new_one() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let store = MemoryStore::default();
    let door = Tower(store.clone());
    let w = axum_world(
        passlock.clone(),
        clock,
        AxumApp(crate::axum::app(passlock, store)),
    );
    let mut c = w.client();
    let mut auth = authenticator();
    c.sign_up(&mut auth, "alice").await;
    let signed_up = family_of(&door, &c).await;
    let before = c.cookie("id").unwrap().to_owned();
    assert_eq!(c.step_up(&mut auth).await.status, 200);
    assert_ne!(c.cookie("id").unwrap(), before, "the id cycled");
    assert_eq!(family_of(&door, &c).await, signed_up, "step-up");
    let mut second = authenticator();
    let (code, _) = c.registration_ceremony(&mut second, json!({})).await;
    let r = c.post("/passkey/register", c.proof(&code)).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(family_of(&door, &c).await, signed_up, "a new passkey");
    assert_eq!(c.login(&mut auth).await.status, 200);
    assert_ne!(family_of(&door, &c).await, signed_up, "a new sign-in");
}

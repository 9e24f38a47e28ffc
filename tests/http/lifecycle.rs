//! Sessions that end with what they stand on (issue 16 items 2-4) and the
//! audit trail (issue 14 item 7), on both adapters.
//!
//! Two app instances share one revocation store (memory, SQLite,
//! PostgreSQL, Redis) and each has its own session store; a browser's
//! session is copied to the second instance through the session store's
//! own API, as a load balancer sending it there would find it. Removing the
//! passkey a session stands on, `POST /passkey/logout/everywhere` and
//! `Passlock::end_sessions_of` end the right sessions on both instances;
//! the idle lifetime runs on the injected clock. A recording audit hook
//! sees exactly the expected events in order, and a captured `tracing`
//! subscriber shows the info events with their fields and never a secret.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use actix_session::storage::RedisSessionStore;
use actix_web::cookie::Key;
use passlock_actix::SqlSessionStore;
use passlock_core::audit::{AuditEvent, AuditHook, AuditKind, RevocationReason};
use passlock_core::clock::{Clock as _, ManualClock};
use passlock_core::error::BoxError;
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::store::{MemoryRevocationStore, RevocationStore};
use passlock_core::{AuthenticatorId, Passlock, Policy};
use serde_json::{Value, json};
use tower_sessions::MemoryStore;

use crate::actix::ActixApp;
use crate::axum::AxumApp;
use crate::harness::{self, Client, TestApp, World, authenticator, post_from};
use crate::revocation::{Actix, Backdoor, Tower, actix_world, assert_signed_out, axum_world};

/// Every audited event, in order.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<AuditEvent<i64>>>);

#[async_trait::async_trait]
impl AuditHook<i64> for Recorder {
    async fn record(&self, event: &AuditEvent<i64>) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// A hook that always fails: the flows must not care.
#[derive(Debug, Default)]
struct Broken;

#[async_trait::async_trait]
impl AuditHook<i64> for Broken {
    async fn record(&self, _: &AuditEvent<i64>) -> Result<(), BoxError> {
        Err("the mailer is down".into())
    }
}

/// The test passlock (embedded provider, memory links, the `x-test-client`
/// header trusted as the client address) with an idle lifetime of an
/// hour, `revocations` and `audit`.
async fn build(
    clock: &ManualClock,
    revocations: Arc<dyn RevocationStore>,
    audit: Arc<dyn AuditHook<i64>>,
) -> Passlock<i64> {
    use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
    let provider = EmbeddedProvider::in_memory(
        EmbeddedConfig::new("localhost", "passlock tests", [harness::ORIGIN])
            .with_clock(Arc::new(clock.clone())),
    )
    .await
    .unwrap();
    let mut policy = Policy::default();
    policy.idle_lifetime_secs = Some(3_600);
    Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(harness::MemoryUsers::default()))
    .clock(Arc::new(clock.clone()))
    .trusted_proxy_header("x-test-client")
    .policy(policy)
    .revocations(revocations)
    .audit(audit)
    .build()
    .unwrap()
}

/// The browser `c`'s session copied to the instance of `to`, as a new
/// browser there.
async fn copy_to<'w, A: TestApp, B: Backdoor>(
    c: &Client<'_, A>,
    from: &B,
    to: &'w World<A>,
    door_to: &impl Backdoor<Stale = B::Stale>,
) -> Client<'w, A> {
    let stale = from.load(c.cookie("id").unwrap()).await;
    let copied = door_to.create_new(&stale).await;
    let mut thief = to.client();
    thief.set_cookie("id", &copied);
    thief
}

async fn logout_everywhere<A: TestApp>(c: &mut Client<'_, A>) -> harness::Reply {
    c.post_raw("/passkey/logout/everywhere", "application/json", Vec::new())
        .await
}

/// Removing a passkey ends the sessions standing on it, logout everywhere
/// ends every other session of the user, the app ends all of them; on both
/// instances. Then the idle lifetime.
async fn sessions_end_with_what_they_stand_on<A: TestApp, B: Backdoor>(
    one: World<A>,
    other: World<A>,
    door_one: B,
    door_other: impl Backdoor<Stale = B::Stale>,
) {
    let mut c1 = one.client();
    let (mut a, mut b) = (authenticator(), authenticator());
    let (uid, _) = c1.sign_up(&mut a, "alice").await;
    // c1 adds passkey B and so stands on it.
    let (code, aid_b) = c1.registration_ceremony(&mut b, json!({})).await;
    let r = c1.post("/passkey/register", c1.proof(&code)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let mut thief = copy_to(&c1, &door_one, &other, &door_other).await;
    assert_eq!(thief.session_user().await, Some(uid));
    let mut c2 = one.client();
    assert_eq!(c2.login(&mut a).await.status, 200);
    let mut c3 = one.client();
    assert_eq!(c3.login(&mut b).await.status, 200);

    // ---- the passkey a session stands on is removed ----
    let before = c1.cookie("id").unwrap().to_owned();
    let r = c1.delete(&format!("/passkey/passkeys/{aid_b}")).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_ne!(
        c1.cookie("id").unwrap(),
        before,
        "the deleting session moved on"
    );
    assert_eq!(
        c1.session_user().await,
        Some(uid),
        "the deleting session stays"
    );
    assert_eq!(
        c2.session_user().await,
        Some(uid),
        "signed in with A: stays"
    );
    assert_signed_out(&mut c3, "signed in with the removed passkey").await;
    assert_signed_out(&mut thief, "a copy standing on it, other instance").await;

    // ---- logout everywhere ends every other session, this one stays ----
    one.clock.advance_secs(1);
    let mut thief = copy_to(&c1, &door_one, &other, &door_other).await;
    assert_eq!(thief.session_user().await, Some(uid));
    let before = c2.cookie("id").unwrap().to_owned();
    let r = logout_everywhere(&mut c2).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_ne!(c2.cookie("id").unwrap(), before, "a new session id");
    assert_eq!(c2.session_user().await, Some(uid), "this session stays");
    let r = c2.post("/app/sensitive", json!({})).await;
    assert_eq!(r.status, 200, "its passkey check stays too: {r:?}");
    assert_signed_out(&mut c1, "another session, same instance").await;
    assert_signed_out(&mut thief, "another session, other instance").await;
    // Signed out, logout everywhere is refused and ends nothing.
    logout_everywhere(&mut c1)
        .await
        .assert_error(401, "not_authenticated");
    assert_eq!(c2.session_user().await, Some(uid));
    // A sign-in after it is a new session.
    one.clock.advance_secs(1);
    assert_eq!(c1.login(&mut a).await.status, 200);
    assert_eq!(c1.session_user().await, Some(uid));

    // ---- the app ends every session of the user, from the other instance ----
    let mut thief = copy_to(&c1, &door_one, &other, &door_other).await;
    assert_eq!(thief.session_user().await, Some(uid));
    other.passlock.end_sessions_of(&uid).await.unwrap();
    assert_signed_out(&mut c1, "every session: c1").await;
    assert_signed_out(&mut c2, "every session: c2").await;
    assert_signed_out(&mut thief, "every session: the copy").await;

    // ---- the idle lifetime (an hour) ----
    one.clock.advance_secs(1);
    assert_eq!(c1.login(&mut a).await.status, 200);
    for _ in 0..3 {
        one.clock.advance_secs(3_599);
        assert_eq!(c1.session_user().await, Some(uid), "used within the hour");
    }
    assert_eq!(c1.get("/app/admin").await.status, 200);
    one.clock.advance_secs(3_600);
    assert_signed_out(&mut c1, "unused for an hour").await;
    let r = c1.get("/app/admin").await;
    r.assert_error(401, "not_authenticated");
}

/// Two worlds on one clock sharing `revocations`, with sessions made by
/// `make` (the app around a passlock) and their doors.
async fn two<A, D>(
    revocations: Arc<dyn RevocationStore>,
    mut make: impl AsyncFnMut(Passlock<i64>, ManualClock) -> (World<A>, D),
) -> (World<A>, World<A>, D, D) {
    let clock = ManualClock::starting_now();
    let mut worlds = Vec::new();
    for _ in 0..2 {
        let passlock = build(&clock, revocations.clone(), Arc::new(Broken)).await;
        worlds.push(make(passlock, clock.clone()).await);
    }
    let (w2, d2) = worlds.pop().unwrap();
    let (w1, d1) = worlds.pop().unwrap();
    (w1, w2, d1, d2)
}

fn memory_revocations() -> Arc<dyn RevocationStore> {
    Arc::new(MemoryRevocationStore::new(Arc::new(
        ManualClock::starting_now(),
    )))
}

async fn sqlite_revocations() -> (Arc<dyn RevocationStore>, sqlx::SqlitePool) {
    use passlock_core::store::sqlite::{SqliteRevocationStore, migrate};
    let pool = passlock_tests::sqlite_pool().await;
    migrate(&pool).await.unwrap();
    (Arc::new(SqliteRevocationStore::new(pool.clone())), pool)
}

async fn pg_revocations(pool: &sqlx::PgPool) -> Arc<dyn RevocationStore> {
    use passlock_core::store::postgres::{PgRevocationStore, migrate};
    migrate(pool).await.unwrap();
    Arc::new(PgRevocationStore::new(pool.clone()))
}

/// Markers in Redis under a unique prefix (removed at the end).
async fn redis_revocations() -> (Arc<dyn RevocationStore>, String) {
    use passlock_core::store::RedisRevocationStore;
    let prefix = format!("{}:", passlock_tests::unique_name("passlock_lifecycle"));
    let client = redis::Client::open(passlock_tests::redis_url()).unwrap();
    let conn = redis::aio::ConnectionManager::new(client).await.unwrap();
    (
        Arc::new(RedisRevocationStore::new(conn, prefix.clone())),
        prefix,
    )
}

async fn drop_redis_prefix(prefix: &str) {
    let client = redis::Client::open(passlock_tests::redis_url()).unwrap();
    let mut conn = redis::aio::ConnectionManager::new(client).await.unwrap();
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

// ---- axum: tower-sessions stores ----

fn axum_memory(pl: Passlock<i64>, clock: ManualClock) -> (World<AxumApp>, Tower<MemoryStore>) {
    let store = MemoryStore::default();
    let app = AxumApp(crate::axum::app(pl.clone(), store.clone()));
    (axum_world(pl, clock, app), Tower(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_memory_sessions_end_with_what_they_stand_on() {
    let (w1, w2, d1, d2) = two(memory_revocations(), async |pl: Passlock<i64>, clock| {
        axum_memory(pl, clock)
    })
    .await;
    sessions_end_with_what_they_stand_on(w1, w2, d1, d2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_sqlite_sessions_end_with_what_they_stand_on() {
    let (revocations, _pool) = sqlite_revocations().await;
    let (w1, w2, d1, d2) = two(revocations, async |pl: Passlock<i64>, clock| {
        let store =
            tower_sessions_sqlx_store::SqliteStore::new(passlock_tests::sqlite_pool().await);
        store.migrate().await.unwrap();
        let app = AxumApp(crate::axum::app(pl.clone(), store.clone()));
        (axum_world(pl, clock, app), Tower(store))
    })
    .await;
    sessions_end_with_what_they_stand_on(w1, w2, d1, d2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_postgres_sessions_end_with_what_they_stand_on() {
    let (pool, guard) = passlock_tests::pg_database().await;
    let revocations = pg_revocations(&pool).await;
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool.clone());
    store.migrate().await.unwrap();
    let (w1, w2, d1, d2) = two(revocations, async |pl: Passlock<i64>, clock| {
        // One database, as two instances of one site would share it.
        let app = AxumApp(crate::axum::app(pl.clone(), store.clone()));
        (axum_world(pl, clock, app), Tower(store.clone()))
    })
    .await;
    sessions_end_with_what_they_stand_on(w1, w2, d1, d2).await;
    pool.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_redis_sessions_end_with_what_they_stand_on() {
    let keys = crate::redis::RedisKeys::default();
    let (revocations, prefix) = redis_revocations().await;
    let (w1, w2, d1, d2) = two(revocations, async |pl: Passlock<i64>, clock| {
        let store = crate::redis::tracked(&keys).await;
        let app = AxumApp(crate::axum::app(pl.clone(), store.clone()));
        (axum_world(pl, clock, app), Tower(store))
    })
    .await;
    sessions_end_with_what_they_stand_on(w1, w2, d1, d2).await;
    drop_redis_prefix(&prefix).await;
}

// ---- actix: actix-session stores ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_sqlite_sessions_end_with_what_they_stand_on() {
    let (revocations, _pool) = sqlite_revocations().await;
    let (w1, w2, d1, d2) = two(revocations, async |pl: Passlock<i64>, clock| {
        let store = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
        store.migrate().await.unwrap();
        let key = Key::generate();
        let w = actix_world(pl, clock, store.clone(), key.clone());
        (w, Actix(store, key))
    })
    .await;
    sessions_end_with_what_they_stand_on(w1, w2, d1, d2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_memory_revocations_sessions_end_with_what_they_stand_on() {
    let (w1, w2, d1, d2) = two(memory_revocations(), async |pl: Passlock<i64>, clock| {
        let store = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
        store.migrate().await.unwrap();
        let key = Key::generate();
        let w = actix_world(pl, clock, store.clone(), key.clone());
        (w, Actix(store, key))
    })
    .await;
    sessions_end_with_what_they_stand_on(w1, w2, d1, d2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_postgres_sessions_end_with_what_they_stand_on() {
    let (pool, guard) = passlock_tests::pg_database().await;
    let revocations = pg_revocations(&pool).await;
    let (w1, w2, d1, d2) = two(revocations, async |pl: Passlock<i64>, clock| {
        let store = SqlSessionStore::postgres(pool.clone());
        store.migrate().await.unwrap();
        let key = Key::generate();
        let w = actix_world(pl, clock, store.clone(), key.clone());
        (w, Actix(store, key))
    })
    .await;
    sessions_end_with_what_they_stand_on(w1, w2, d1, d2).await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_redis_sessions_end_with_what_they_stand_on() {
    let (revocations, prefix) = redis_revocations().await;
    let (w1, w2, d1, d2) = two(revocations, async |pl: Passlock<i64>, clock| {
        let sessions = format!("{prefix}sessions");
        let store = RedisSessionStore::builder(passlock_tests::redis_url())
            .cache_keygen(move |k| format!("{sessions}:{k}"))
            .build()
            .await
            .unwrap();
        let key = Key::generate();
        let w = actix_world(pl, clock, store.clone(), key.clone());
        (w, Actix(store, key))
    })
    .await;
    sessions_end_with_what_they_stand_on(w1, w2, d1, d2).await;
    drop_redis_prefix(&prefix).await;
}

/// A guarded request writes the last use back only once it is older than
/// a quarter of the idle window (here 900 s of 3 600).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_use_is_written_back_rarely() {
    let clock = ManualClock::starting_now();
    let pl = build(&clock, memory_revocations(), Arc::new(Broken)).await;
    let (w, door) = axum_memory(pl, clock);
    let mut c = w.client();
    c.sign_up(&mut authenticator(), "alice").await;
    let active_at = async |c: &Client<'_, AxumApp>| {
        let record = door.load(c.cookie("id").unwrap()).await;
        let parsed: Value =
            serde_json::from_str(record.data["passlock"].as_str().unwrap()).unwrap();
        parsed["active_at"].as_i64()
    };
    w.clock.advance_secs(899);
    assert_eq!(c.get("/app/admin").await.status, 200);
    assert_eq!(active_at(&c).await, None, "not yet due: nothing written");
    w.clock.advance_secs(1);
    assert_eq!(c.get("/app/admin").await.status, 200);
    let now = w.clock.now_millis();
    assert_eq!(active_at(&c).await, Some(now), "due: written");
    w.clock.advance_secs(10);
    assert_eq!(c.get("/app/admin").await.status, 200);
    assert_eq!(active_at(&c).await, Some(now), "just written: not again");
}

#[test]
fn an_idle_lifetime_under_four_seconds_is_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
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
        policy.idle_lifetime_secs = Some(3);
        Passlock::<i64>::builder(
            Arc::new(provider),
            Arc::new(MemoryAuthenticatorStore::new()),
        )
        .policy(policy)
        .build()
        .unwrap_err()
    });
    assert_eq!(err.field, "policy.idle_lifetime_secs");
}

// ---- the audit trail ----

/// What the recorder saw, as (kind, user, authenticator, client, at).
type Seen = (AuditKind, i64, Option<String>, Option<IpAddr>, i64);

fn seen(recorder: &Recorder) -> Vec<Seen> {
    recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e.provider, "embedded");
            (
                e.kind.clone(),
                e.user,
                e.authenticator_id.as_ref().map(|a| a.as_str().to_owned()),
                e.client,
                e.at,
            )
        })
        .collect()
}

/// Sign-up, step-up, passkey added, login, passkey removed (and the
/// sessions standing on it), logout everywhere, the app's first factor,
/// the app ending the user's sessions: exactly these events, in order,
/// with the user, the passkey, the client address and the time.
async fn the_audit_hook_sees_every_event<A: TestApp>(w: World<A>, recorder: Arc<Recorder>) {
    let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
    let mut c = w.client();
    let (mut a, mut b) = (authenticator(), authenticator());
    let t0 = w.clock.now_millis();
    let (uid, aid_a) = c.sign_up(&mut a, "alice").await;
    w.clock.advance_secs(1);
    assert_eq!(c.step_up(&mut a).await.status, 200);
    let (code, aid_b) = c.registration_ceremony(&mut b, json!({})).await;
    let r = c.post("/passkey/register", c.proof(&code)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let path = format!("/passkey/passkeys/{aid_b}");
    let r = c.patch(&path, json!({ "name": "" })).await;
    r.assert_error(400, "invalid_name");
    let r = c.patch(&path, json!({ "name": "Phone" })).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut other = w.client();
    w.clock.advance_secs(1);
    let login = other.authentication_ceremony(&mut b, "login").await;
    let proof = other.proof(&login);
    let r = post_from(&mut other, "203.0.113.9", "/passkey/login", proof).await;
    assert_eq!(r.status, 200, "{r:?}");
    w.clock.advance_secs(1);
    // Failures are not events.
    let r = c.delete("/passkey/passkeys/unknown").await;
    r.assert_error(404, "not_found");
    let r = c.delete(&format!("/passkey/passkeys/{aid_b}")).await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = post_from(
        &mut c,
        "203.0.113.7",
        "/passkey/logout/everywhere",
        json!({}),
    )
    .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = post_from(
        &mut c,
        "203.0.113.8",
        "/app/first-factor",
        json!({ "user_id": uid }),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["second_factor_required"], true);
    w.passlock.end_sessions_of(&uid).await.unwrap();

    let (t1, t2, t3) = (t0 + 1_000, t0 + 2_000, t0 + 3_000);
    let removed = AuditKind::SessionsRevoked {
        reason: RevocationReason::PasskeyRemoved,
    };
    let everywhere = AuditKind::SessionsRevoked {
        reason: RevocationReason::LogoutEverywhere,
    };
    let disabled = AuditKind::SessionsRevoked {
        reason: RevocationReason::UserDisabled,
    };
    let first = AuditKind::FirstFactor {
        method: "password".to_owned(),
        second_factor_required: true,
    };
    let (a_id, b_id) = (Some(aid_a), Some(aid_b));
    assert_eq!(
        seen(&recorder),
        vec![
            (AuditKind::SignedUp, uid, a_id.clone(), None, t0),
            (AuditKind::SteppedUp, uid, a_id, None, t1),
            (AuditKind::PasskeyAdded, uid, b_id.clone(), None, t1),
            (AuditKind::PasskeyRenamed, uid, b_id.clone(), None, t1),
            (
                AuditKind::LoggedIn,
                uid,
                b_id.clone(),
                ip("203.0.113.9"),
                t2
            ),
            (AuditKind::PasskeyRemoved, uid, b_id.clone(), None, t3),
            (removed, uid, b_id, None, t3),
            (everywhere, uid, None, ip("203.0.113.7"), t3),
            (first, uid, None, ip("203.0.113.8"), t3),
            (disabled, uid, None, None, t3),
        ]
    );
    // The app's id type is the hook's: no parsing.
    let _: AuthenticatorId = recorder.0.lock().unwrap()[0]
        .authenticator_id
        .clone()
        .unwrap();
}

mod first_factor_routes {
    use axum::extract::State;
    use axum::{Json, Router, routing::post};
    use passlock_axum::{PasslockRejection, PasslockSession};
    use passlock_core::FirstFactor;
    use passlock_core::Passlock;
    use serde_json::Value;

    pub(super) async fn axum_ff(
        State(passlock): State<Passlock<i64>>,
        session: PasslockSession<i64>,
        Json(body): Json<Value>,
    ) -> Result<Json<FirstFactor>, PasslockRejection> {
        let user = body["user_id"].as_i64().unwrap();
        Ok(Json(
            session
                .record_first_factor(&passlock, user, "password")
                .await?,
        ))
    }

    pub(super) fn axum_router(passlock: Passlock<i64>) -> Router {
        Router::new()
            .route("/app/first-factor", post(axum_ff))
            .with_state(passlock)
    }

    pub(super) async fn actix_ff(
        passlock: actix_web::web::Data<Passlock<i64>>,
        session: passlock_actix::PasslockSession<i64>,
        body: actix_web::web::Json<Value>,
    ) -> Result<actix_web::HttpResponse, passlock_actix::PasslockError> {
        let user = body["user_id"].as_i64().unwrap();
        let recorded = session
            .record_first_factor(&passlock, user, "password")
            .await?;
        Ok(actix_web::HttpResponse::Ok().json(recorded))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_the_audit_hook_sees_every_event() {
    let clock = ManualClock::starting_now();
    let recorder = Arc::new(Recorder::default());
    let pl = build(&clock, memory_revocations(), recorder.clone()).await;
    let sessions = tower_sessions::SessionManagerLayer::new(MemoryStore::default())
        .with_secure(false)
        .with_same_site(tower_sessions::cookie::SameSite::Lax);
    let router = first_factor_routes::axum_router(pl.clone())
        .merge(crate::axum::app_without_sessions(pl.clone()))
        .layer(sessions);
    let w = axum_world(pl, clock, AxumApp(router));
    the_audit_hook_sees_every_event(w, recorder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_the_audit_hook_sees_every_event() {
    let clock = ManualClock::starting_now();
    let recorder = Arc::new(Recorder::default());
    let pl = build(&clock, memory_revocations(), recorder.clone()).await;
    let for_app = pl.clone();
    let app = ActixApp::start(move || async move {
        let store = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
        store.migrate().await.unwrap();
        let sessions = passlock_actix::PasslockSessions::new(store, Key::generate(), &for_app);
        actix_web::App::new()
            .route(
                "/app/first-factor",
                actix_web::web::post().to(first_factor_routes::actix_ff),
            )
            .configure(crate::actix::routes(for_app))
            .wrap(sessions)
    });
    let w = World {
        app,
        passlock: pl,
        clock,
    };
    the_audit_hook_sees_every_event(w, recorder).await;
}

// ---- the log: info events with their fields, never a secret ----

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

/// Every passlock log line of a sign-up, a failed and a good login, a
/// step-up and logout everywhere (on one thread, so that the subscriber
/// sees them all): the info events are there with their fields, and none
/// of the codes, tokens or cookies appears.
#[tokio::test(flavor = "current_thread")]
async fn the_log_has_the_events_and_no_secret() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("passlock=trace"))
        .with_ansi(false)
        .with_writer(buffer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let clock = ManualClock::starting_now();
    let pl = build(&clock, memory_revocations(), Arc::new(Broken)).await;
    let (w, _) = axum_memory(pl, clock);
    let mut c = w.client();
    let mut a = authenticator();
    let mut secrets = Vec::new();
    let answer = c.authorize_sign_up("alice").await;
    secrets.push(
        answer.json["registrationToken"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    for name in c.cookie_names() {
        secrets.push(c.cookie(name).unwrap().to_owned());
    }
    let (code, aid) = c
        .registration_ceremony(&mut a, json!({ "username": "alice" }))
        .await;
    secrets.push(code.clone());
    let r = c.post("/passkey/register", c.proof(&code)).await;
    assert_eq!(r.status, 201, "{r:?}");
    secrets.push(c.cookie("id").unwrap().to_owned());
    let bogus = "bogus-secret-proof-4f1d9c";
    secrets.push(bogus.to_owned());
    let proof = c.proof(bogus);
    let r = post_from(&mut c, "198.51.100.4", "/passkey/login", proof).await;
    assert_eq!(r.status, 401, "{r:?}");
    let refused = r.json["error"].as_str().unwrap().to_owned();
    let login = c.authentication_ceremony(&mut a, "login").await;
    secrets.push(login.clone());
    let proof = c.proof(&login);
    let r = post_from(&mut c, "198.51.100.4", "/passkey/login", proof).await;
    assert_eq!(r.status, 200, "{r:?}");
    secrets.push(c.cookie("id").unwrap().to_owned());
    let step = c.authentication_ceremony(&mut a, "step_up").await;
    secrets.push(step.clone());
    assert_eq!(c.post("/passkey/step-up", c.proof(&step)).await.status, 200);
    secrets.push(c.cookie("id").unwrap().to_owned());
    assert_eq!(logout_everywhere(&mut c).await.status, 204);
    secrets.push(c.cookie("id").unwrap().to_owned());

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let uid = r.json["user_id"].as_str().unwrap().to_owned();
    for event in ["sign_up", "login", "step_up", "sessions_revoked"] {
        let line = text
            .lines()
            .find(|l| l.contains("INFO") && l.contains(&format!("event=\"{event}\"")))
            .unwrap_or_else(|| panic!("no {event} event in:\n{text}"));
        assert!(line.contains(&format!("user={uid}")), "{line}");
        assert!(line.contains("provider=\"embedded\""), "{line}");
        if event != "sessions_revoked" {
            assert!(line.contains(&format!("authenticator=\"{aid}\"")), "{line}");
        }
    }
    let login_line = text
        .lines()
        .find(|l| l.contains("event=\"login\""))
        .unwrap();
    assert!(login_line.contains("198.51.100.4"), "{login_line}");
    assert!(
        text.lines()
            .any(|l| l.contains("flow=\"login\"") && l.contains(&format!("error=\"{refused}\""))),
        "the failed login is logged by its code:\n{text}"
    );
    assert!(text.contains("the audit hook failed"), "{text}");
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        for line in text.lines() {
            assert!(!line.contains(secret.as_str()), "a secret in: {line}");
        }
    }
    assert!(!secrets.is_empty());
}

// ---- counters ----

/// Counts by name and labels.
#[derive(Debug, Default)]
struct Counters(Mutex<std::collections::BTreeMap<String, u64>>);

impl passlock_core::audit::Metrics for Counters {
    fn increment(&self, name: &'static str, labels: &[(&'static str, &'static str)]) {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let key = format!("{name}{{{}}}", labels.join(","));
        *self.0.lock().unwrap().entry(key).or_default() += 1;
    }
}

/// The counters see every event, every failed flow by its error code, and
/// every failed audit hook call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_counters_see_events_and_failures() {
    use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
    let clock = ManualClock::starting_now();
    let counters = Arc::new(Counters::default());
    let provider = EmbeddedProvider::in_memory(
        EmbeddedConfig::new("localhost", "passlock tests", [harness::ORIGIN])
            .with_clock(Arc::new(clock.clone())),
    )
    .await
    .unwrap();
    let pl = Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(harness::MemoryUsers::default()))
    .clock(Arc::new(clock.clone()))
    .audit(Arc::new(Broken))
    .metrics(counters.clone())
    .build()
    .unwrap();
    let (w, _) = axum_memory(pl, clock);
    let mut c = w.client();
    let mut a = authenticator();
    c.sign_up(&mut a, "alice").await;
    assert_eq!(c.login(&mut a).await.status, 200);
    let r = c.post("/passkey/login", c.proof("not-a-code")).await;
    assert_eq!(r.status, 401, "{r:?}");
    let code = r.json["error"].as_str().unwrap();
    let r = c.delete("/passkey/passkeys/unknown").await;
    r.assert_error(404, "not_found");

    let seen = counters.0.lock().unwrap().clone();
    let expected: std::collections::BTreeMap<String, u64> = [
        ("passlock_events_total{event=sign_up}".to_owned(), 1),
        ("passlock_events_total{event=login}".to_owned(), 1),
        (
            "passlock_audit_hook_failures_total{event=sign_up}".to_owned(),
            1,
        ),
        (
            "passlock_audit_hook_failures_total{event=login}".to_owned(),
            1,
        ),
        (
            format!("passlock_flow_failures_total{{flow=login,error={code}}}"),
            1,
        ),
        (
            "passlock_flow_failures_total{flow=unlink,error=not_found}".to_owned(),
            1,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, expected);
}

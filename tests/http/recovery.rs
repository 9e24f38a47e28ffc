//! Account recovery by a one-time email code (issue 16 items 1, 4 and 5),
//! on both adapters and every session store the other tests use.
//!
//! The code comes from the test kit's capturing mailer, wired through the
//! public `Recovery::new(mailer, directory)` as an app wires its own; the
//! passkeys are enrolled with the software authenticator through the
//! embedded provider's real ceremonies.

use std::sync::{Arc, Mutex};

use actix_session::storage::RedisSessionStore;
use actix_web::cookie::Key;
use passlock_actix::SqlSessionStore;
use passlock_core::Passlock;
use passlock_core::audit::{AuditEvent, AuditHook, AuditKind};
use passlock_core::clock::ManualClock;
use passlock_core::error::BoxError;
use passlock_core::provider::PasskeyProvider;
use passlock_core::recovery::Recovery;
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::store::postgres::PgRecoveryChallenges;
use passlock_core::store::sqlite::SqliteRecoveryChallenges;
use passlock_core::store::{MemoryRecoveryChallenges, RecoveryChallenges};
use passlock_test::fake_passlock::FakePasslock;
use passlock_test::recovery::{CapturingMailer, MapDirectory};
use serde_json::json;
use tower_sessions::MemoryStore;

use crate::axum::AxumApp;
use crate::harness::{self, Client, TestApp, World, authenticator, post_from};
use crate::revocation::actix_world;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

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

impl Recorder {
    /// The recovery events, as (name, user, authenticator).
    fn recovery(&self) -> Vec<(&'static str, i64, Option<String>)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    AuditKind::RecoveryRequested
                        | AuditKind::RecoveryUsed
                        | AuditKind::PasskeyEnrolledByRecovery
                )
            })
            .map(|e| {
                (
                    e.kind.name(),
                    e.user,
                    e.authenticator_id.as_ref().map(ToString::to_string),
                )
            })
            .collect()
    }
}

/// What a recovery test looks at besides the app.
struct Rig {
    mailer: Arc<CapturingMailer>,
    directory: Arc<MapDirectory<i64>>,
    audit: Arc<Recorder>,
    /// The hosted service's fake, kept running for the test.
    _fake: Option<FakePasslock>,
}

/// The test passlock (embedded provider, memory links, `x-test-client`
/// trusted) with recovery on, its challenges in `challenges`.
async fn build(
    clock: &ManualClock,
    challenges: Option<Arc<dyn RecoveryChallenges>>,
) -> (Passlock<i64>, Rig) {
    use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
    let provider = EmbeddedProvider::in_memory(
        EmbeddedConfig::new("localhost", "passlock tests", [harness::ORIGIN])
            .with_clock(Arc::new(clock.clone())),
    )
    .await
    .unwrap();
    build_on(clock, challenges, Arc::new(provider), None).await
}

/// The same on the hosted Passlock provider against a fresh `FakePasslock`.
async fn build_hosted(clock: &ManualClock) -> (Passlock<i64>, Rig) {
    use passlock_core::provider::passlock::PasslockHosted;
    let fake = FakePasslock::start_with_clock(Arc::new(clock.clone()))
        .await
        .unwrap();
    let provider = PasslockHosted::new(
        fake.client_config(),
        "localhost",
        "passlock tests",
        Arc::new(clock.clone()),
    )
    .unwrap();
    build_on(clock, None, Arc::new(provider), Some(fake)).await
}

async fn build_on(
    clock: &ManualClock,
    challenges: Option<Arc<dyn RecoveryChallenges>>,
    provider: Arc<dyn PasskeyProvider>,
    fake: Option<FakePasslock>,
) -> (Passlock<i64>, Rig) {
    let rig = Rig {
        mailer: Arc::new(CapturingMailer::new()),
        directory: Arc::new(MapDirectory::new()),
        audit: Arc::new(Recorder::default()),
        _fake: fake,
    };
    let mut recovery = Recovery::new(rig.mailer.clone(), rig.directory.clone());
    if let Some(store) = challenges {
        recovery = recovery.challenges(store);
    }
    let passlock = Passlock::builder(provider, Arc::new(MemoryAuthenticatorStore::<i64>::new()))
        .sign_up(Arc::new(harness::MemoryUsers::default()))
        .clock(Arc::new(clock.clone()))
        .trusted_proxy_header("x-test-client")
        .origins([harness::ORIGIN])
        .audit(rig.audit.clone())
        .recovery(recovery)
        .build()
        .unwrap();
    (passlock, rig)
}

async fn start<A: TestApp>(c: &mut Client<'_, A>, email: &str) -> harness::Reply {
    c.post("/passkey/recovery/start", json!({ "email": email }))
        .await
}

async fn verify<A: TestApp>(c: &mut Client<'_, A>, challenge: &str, code: &str) -> harness::Reply {
    c.post(
        "/passkey/recovery/verify",
        json!({ "challenge": challenge, "code": code }),
    )
    .await
}

/// A started recovery: the challenge id and the mailed code.
async fn challenge_and_code<A: TestApp>(
    c: &mut Client<'_, A>,
    rig: &Rig,
    email: &str,
    nth: usize,
) -> (String, String) {
    let r = start(c, email).await;
    assert_eq!(r.status, 202, "{r:?}");
    let challenge = r.json["challenge"].as_str().unwrap().to_owned();
    let code = rig
        .mailer
        .code_for(email, nth)
        .await
        .expect("the code was mailed");
    (challenge, code.expose_secret().to_owned())
}

/// A code of the same length that is not `code`.
fn wrong(code: &str) -> String {
    code.chars()
        .map(|d| if d == '0' { '1' } else { '0' })
        .collect()
}

/// A user who lost every passkey asks for a code, verifies it, is in a
/// recovery session that nothing accepts as signed in, enrolls a new
/// passkey and is then fully signed in; the new passkey signs in
/// elsewhere; the code cannot be replayed; the audit hook saw the three
/// recovery events.
async fn recovery_end_to_end<A: TestApp>(w: World<A>, rig: Rig) {
    let mut old = w.client();
    let mut lost = authenticator();
    let (uid, _) = old.sign_up(&mut lost, "alice").await;
    rig.directory.insert(ALICE, uid);

    let mut c = w.client();
    let (challenge, code) = challenge_and_code(&mut c, &rig, ALICE, 0).await;
    assert_eq!(code.len(), 8, "eight digits by default");
    let r = verify(&mut c, &challenge, &code).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], uid.to_string());

    // The recovery session is not a sign-in anywhere.
    assert_eq!(c.get("/app/me").await.json, json!({ "user_id": null }));
    c.post("/app/sensitive", json!({}))
        .await
        .assert_error(401, "not_authenticated");
    c.get("/passkey/session")
        .await
        .assert_error(401, "not_authenticated");
    c.get("/passkey/passkeys")
        .await
        .assert_error(401, "not_authenticated");
    c.post(
        "/passkey/authentication/authorize",
        json!({ "purpose": "step_up" }),
    )
    .await
    .assert_error(401, "not_authenticated");
    c.post_raw("/passkey/logout/everywhere", "application/json", Vec::new())
        .await
        .assert_error(401, "not_authenticated");

    // It enrolls one passkey, for its user, and becomes a full session
    // under a new session id.
    let before = c.cookie("id").map(str::to_owned);
    let mut found = authenticator();
    let (proof, aid) = c.registration_ceremony(&mut found, json!({})).await;
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json["user_id"], uid.to_string());
    assert_eq!(r.json["authenticator_id"], aid.as_str());
    assert_ne!(
        c.cookie("id").map(str::to_owned),
        before,
        "the session id cycled"
    );
    assert_eq!(c.session_user().await, Some(uid));
    let r = c.post("/app/sensitive", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(w.owner(&aid).await, Some(uid));

    // The new passkey signs in from another browser.
    let mut other = w.client();
    let r = other.login(&mut found).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], uid.to_string());

    // The code is spent.
    let mut thief = w.client();
    verify(&mut thief, &challenge, &code)
        .await
        .assert_error(401, "invalid_code");

    assert_eq!(
        rig.audit.recovery(),
        vec![
            ("recovery_requested", uid, None),
            ("recovery_used", uid, None),
            ("passkey_enrolled_by_recovery", uid, Some(aid)),
        ]
    );
}

/// `start` answers an address without an account exactly like one with
/// one (status, headers, body apart from the random challenge id) and
/// mails nothing for it; a code against its challenge is refused like a
/// wrong code.
async fn unknown_address_is_answered_like_a_known_one<A: TestApp>(w: World<A>, rig: Rig) {
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);

    let mut a = w.client();
    let mut b = w.client();
    let unknown = start(&mut a, "nobody@example.com").await;
    let known = start(&mut b, ALICE).await;
    assert_eq!(unknown.status, 202, "{unknown:?}");
    assert_eq!(known.status, 202, "{known:?}");
    let masked = |r: &harness::Reply| {
        let id = r.json["challenge"].as_str().unwrap();
        assert!(id.len() >= 16, "a random challenge id: {id}");
        r.text.replace(id, "<challenge>")
    };
    assert_eq!(masked(&unknown), masked(&known));
    let names = |r: &harness::Reply| {
        let mut h: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "date" | "content-length"))
            .cloned()
            .collect();
        h.sort();
        h
    };
    assert_eq!(names(&unknown), names(&known));
    assert_ne!(unknown.json["challenge"], known.json["challenge"]);

    // Alice's mail arrives; none was sent to the unknown address.
    let code = rig.mailer.code_for(ALICE, 0).await.unwrap();
    let sent: Vec<String> = rig
        .mailer
        .sent()
        .iter()
        .map(|s| s.to.as_str().to_owned())
        .collect();
    assert_eq!(sent, vec![ALICE.to_owned()]);

    let on_unknown = verify(
        &mut a,
        unknown.json["challenge"].as_str().unwrap(),
        code.expose_secret(),
    )
    .await;
    let wrong_on_known = verify(
        &mut b,
        known.json["challenge"].as_str().unwrap(),
        &wrong(code.expose_secret()),
    )
    .await;
    on_unknown.assert_error(401, "invalid_code");
    assert_eq!(on_unknown.text, wrong_on_known.text);
    assert_eq!(on_unknown.status, wrong_on_known.status);
    // Only the real account was audited.
    assert_eq!(
        rig.audit.recovery(),
        vec![("recovery_requested", uid, None)]
    );
}

/// Wrong codes count against the challenge: after five attempts even the
/// right code is refused with `429 code_attempts_exceeded`, and nothing
/// was signed in.
async fn wrong_codes_until_the_limit<A: TestApp>(w: World<A>, rig: Rig) {
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);
    let mut x = w.client();
    let (challenge, code) = challenge_and_code(&mut x, &rig, ALICE, 0).await;
    for _ in 0..5 {
        verify(&mut x, &challenge, &wrong(&code))
            .await
            .assert_error(401, "invalid_code");
    }
    verify(&mut x, &challenge, &code)
        .await
        .assert_error(429, "code_attempts_exceeded");
    assert_eq!(x.session_user().await, None);
    assert_eq!(
        rig.audit.recovery(),
        vec![("recovery_requested", uid, None)]
    );
}

/// An expired code, a code of another address's challenge, an unknown or
/// malformed challenge: all `401 invalid_code`; the right pair still works.
async fn expired_and_foreign_codes_are_refused<A: TestApp>(w: World<A>, rig: Rig) {
    let mut c = w.client();
    let (alice, _) = c.sign_up(&mut authenticator(), "alice").await;
    let mut d = w.client();
    let (bob, _) = d.sign_up(&mut authenticator(), "bob").await;
    rig.directory.insert(ALICE, alice);
    rig.directory.insert(BOB, bob);

    let mut x = w.client();
    let (old, old_code) = challenge_and_code(&mut x, &rig, ALICE, 0).await;
    w.clock.advance_secs(601);
    verify(&mut x, &old, &old_code)
        .await
        .assert_error(401, "invalid_code");

    let (for_alice, _) = challenge_and_code(&mut x, &rig, ALICE, 1).await;
    let mut y = w.client();
    let (for_bob, bob_code) = challenge_and_code(&mut y, &rig, BOB, 0).await;
    verify(&mut x, &for_alice, &bob_code)
        .await
        .assert_error(401, "invalid_code");
    verify(&mut x, "no-such-challenge", &bob_code)
        .await
        .assert_error(401, "invalid_code");
    verify(&mut x, "a b", &bob_code)
        .await
        .assert_error(401, "invalid_code");
    assert_eq!(x.session_user().await, None);
    let r = verify(&mut y, &for_bob, &bob_code).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], bob.to_string());
}

/// Malformed requests and limits on `start`: a non-address is `400
/// invalid_email`; the fourth request for one address within the window
/// is `429 throttled`, for an address with or without an account alike.
async fn start_is_validated_and_throttled_per_address<A: TestApp>(w: World<A>, rig: Rig) {
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);
    let mut x = w.client();
    start(&mut x, "not an address")
        .await
        .assert_error(400, "invalid_email");
    x.post("/passkey/recovery/start", json!({ "mail": ALICE }))
        .await
        .assert_error(400, "bad_request");
    for (i, email) in [ALICE, "nobody@example.com"].into_iter().enumerate() {
        let addr = format!("203.0.113.{}", 10 + i);
        for _ in 0..3 {
            let r = post_from(
                &mut x,
                &addr,
                "/passkey/recovery/start",
                json!({ "email": email }),
            )
            .await;
            assert_eq!(r.status, 202, "{r:?}");
        }
        let r = post_from(
            &mut x,
            &addr,
            "/passkey/recovery/start",
            json!({ "email": email }),
        )
        .await;
        r.assert_error(429, "throttled");
        assert!(r.header("retry-after").is_some(), "{r:?}");
    }
}

/// Without `PasslockBuilder::recovery`, the routes do not exist.
async fn routes_are_absent_when_recovery_is_off<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    start(&mut c, ALICE).await.assert_error(404, "not_found");
    verify(&mut c, "x", "12345678")
        .await
        .assert_error(404, "not_found");
}

/// The recovery session ends at its own lifetime, and when the app ends
/// the user's sessions.
async fn recovery_session_is_bounded<A: TestApp>(w: World<A>, rig: Rig) {
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);

    let mut x = w.client();
    let (challenge, code) = challenge_and_code(&mut x, &rig, ALICE, 0).await;
    assert_eq!(verify(&mut x, &challenge, &code).await.status, 200);
    w.clock.advance_secs(601);
    // Past its lifetime the session is anonymous again: an authorize is a
    // sign-up, which needs a username.
    x.post("/passkey/registration/authorize", json!({}))
        .await
        .assert_error(400, "invalid_username");

    let mut y = w.client();
    let (challenge, code) = challenge_and_code(&mut y, &rig, ALICE, 1).await;
    assert_eq!(verify(&mut y, &challenge, &code).await.status, 200);
    w.passlock.end_sessions_of(&uid).await.unwrap();
    y.post("/passkey/registration/authorize", json!({}))
        .await
        .assert_error(400, "invalid_username");
    assert_eq!(w.links(uid).await.len(), 1, "nothing was enrolled");
}

// ---- axum ----

fn axum_on<S: tower_sessions::SessionStore + Clone>(
    passlock: Passlock<i64>,
    clock: ManualClock,
    store: S,
) -> World<AxumApp> {
    let app = AxumApp(crate::axum::app(passlock.clone(), store));
    crate::revocation::axum_world(passlock, clock, app)
}

async fn axum_memory() -> (World<AxumApp>, Rig) {
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build(&clock, None).await;
    (axum_on(passlock, clock, MemoryStore::default()), rig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_memory_recovery_end_to_end() {
    let (w, rig) = axum_memory().await;
    recovery_end_to_end(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_sqlite_recovery_end_to_end() {
    let clock = ManualClock::starting_now();
    let pool = passlock_tests::sqlite_pool().await;
    passlock_core::store::sqlite::migrate(&pool).await.unwrap();
    let challenges = Arc::new(SqliteRecoveryChallenges::new(pool.clone()));
    let (passlock, rig) = build(&clock, Some(challenges)).await;
    let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
    store.migrate().await.unwrap();
    recovery_end_to_end(axum_on(passlock, clock, store), rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_postgres_recovery_end_to_end() {
    let (pool, guard) = passlock_tests::pg_database().await;
    passlock_core::store::postgres::migrate(&pool)
        .await
        .unwrap();
    let clock = ManualClock::starting_now();
    let challenges = Arc::new(PgRecoveryChallenges::new(pool.clone()));
    let (passlock, rig) = build(&clock, Some(challenges)).await;
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool.clone());
    store.migrate().await.unwrap();
    recovery_end_to_end(axum_on(passlock, clock, store), rig).await;
    pool.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_redis_recovery_end_to_end() {
    let keys = crate::redis::RedisKeys::default();
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build(&clock, None).await;
    let store = crate::redis::tracked(&keys).await;
    recovery_end_to_end(axum_on(passlock, clock, store), rig).await;
}

/// Recovery needs only the app's stores: the same journey on the hosted
/// Passlock provider (the new passkey is registered with the service).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_recovery_end_to_end() {
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build_hosted(&clock).await;
    recovery_end_to_end(axum_on(passlock, clock, MemoryStore::default()), rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_unknown_address_is_answered_like_a_known_one() {
    let (w, rig) = axum_memory().await;
    unknown_address_is_answered_like_a_known_one(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_wrong_codes_until_the_limit() {
    let (w, rig) = axum_memory().await;
    wrong_codes_until_the_limit(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_expired_and_foreign_codes_are_refused() {
    let (w, rig) = axum_memory().await;
    expired_and_foreign_codes_are_refused(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_start_is_validated_and_throttled_per_address() {
    let (w, rig) = axum_memory().await;
    start_is_validated_and_throttled_per_address(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_recovery_session_is_bounded() {
    let (w, rig) = axum_memory().await;
    recovery_session_is_bounded(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_routes_are_absent_when_recovery_is_off() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    routes_are_absent_when_recovery_is_off(axum_on(passlock, clock, MemoryStore::default())).await;
}

// ---- actix ----

async fn actix_sqlite(challenges: bool) -> (World<crate::actix::ActixApp>, Rig) {
    let clock = ManualClock::starting_now();
    let pool = passlock_tests::sqlite_pool().await;
    passlock_core::store::sqlite::migrate(&pool).await.unwrap();
    let store: Option<Arc<dyn RecoveryChallenges>> = match challenges {
        true => Some(Arc::new(SqliteRecoveryChallenges::new(pool.clone()))),
        false => Some(Arc::new(MemoryRecoveryChallenges::new(Arc::new(
            clock.clone(),
        )))),
    };
    let (passlock, rig) = build(&clock, store).await;
    let sessions = SqlSessionStore::sqlite(pool);
    sessions.migrate().await.unwrap();
    (actix_world(passlock, clock, sessions, Key::generate()), rig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_sqlite_recovery_end_to_end() {
    let (w, rig) = actix_sqlite(true).await;
    recovery_end_to_end(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_postgres_recovery_end_to_end() {
    let (pool, guard) = passlock_tests::pg_database().await;
    passlock_core::store::postgres::migrate(&pool)
        .await
        .unwrap();
    let clock = ManualClock::starting_now();
    let challenges = Arc::new(PgRecoveryChallenges::new(pool.clone()));
    let (passlock, rig) = build(&clock, Some(challenges)).await;
    let sessions = SqlSessionStore::postgres(pool.clone());
    sessions.migrate().await.unwrap();
    let w = actix_world(passlock, clock, sessions, Key::generate());
    recovery_end_to_end(w, rig).await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_redis_recovery_end_to_end() {
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build(&clock, None).await;
    let keys = passlock_tests::redis_prefix("passlock_recovery").await;
    let prefix = keys.prefix().to_owned();
    let store = RedisSessionStore::builder(passlock_tests::redis_url())
        .cache_keygen(move |k| format!("{prefix}{k}"))
        .build()
        .await
        .unwrap();
    let w = actix_world(passlock, clock, store, Key::generate());
    recovery_end_to_end(w, rig).await;
    drop(keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_hosted_recovery_end_to_end() {
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build_hosted(&clock).await;
    let sessions = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
    sessions.migrate().await.unwrap();
    let w = actix_world(passlock, clock, sessions, Key::generate());
    recovery_end_to_end(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_unknown_address_is_answered_like_a_known_one() {
    let (w, rig) = actix_sqlite(false).await;
    unknown_address_is_answered_like_a_known_one(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_wrong_codes_until_the_limit() {
    let (w, rig) = actix_sqlite(true).await;
    wrong_codes_until_the_limit(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_expired_and_foreign_codes_are_refused() {
    let (w, rig) = actix_sqlite(false).await;
    expired_and_foreign_codes_are_refused(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_start_is_validated_and_throttled_per_address() {
    let (w, rig) = actix_sqlite(false).await;
    start_is_validated_and_throttled_per_address(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_recovery_session_is_bounded() {
    let (w, rig) = actix_sqlite(true).await;
    recovery_session_is_bounded(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_routes_are_absent_when_recovery_is_off() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let pool = passlock_tests::sqlite_pool().await;
    let sessions = SqlSessionStore::sqlite(pool);
    sessions.migrate().await.unwrap();
    routes_are_absent_when_recovery_is_off(actix_world(passlock, clock, sessions, Key::generate()))
        .await;
}

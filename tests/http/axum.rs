//! The scenarios on passlock-axum (in-process, `tower::ServiceExt::oneshot`),
//! plus what only axum has: tower-sessions stores, extractors, the layer.

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::{get, post};
use passlock_axum::passlock_core::clock::ManualClock;
use passlock_axum::{MaybePasskeyUser, PasskeyUser, StepUp, require_passkey};
use passlock_core::Passlock;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{MemoryStore, SessionManagerLayer};

use crate::harness::{self, Reply, TestApp, TestRequest, World, authenticator};

/// An axum router under test.
#[derive(Clone)]
pub(crate) struct AxumApp(pub(crate) Router);

impl TestApp for AxumApp {
    async fn send(&self, req: TestRequest) -> Reply {
        let mut builder = Request::builder().method(req.method).uri(&req.path);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(Body::from(req.body)).unwrap();
        let response = self.0.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply::new(status, headers, &body)
    }
}

async fn me(user: Option<PasskeyUser<i64>>) -> axum::Json<Value> {
    axum::Json(json!({ "user_id": user.map(|u| u.user_id) }))
}

async fn maybe(MaybePasskeyUser(user): MaybePasskeyUser<i64>) -> axum::Json<Value> {
    axum::Json(json!({ "user_id": user.map(|u| u.user_id) }))
}

async fn sensitive(_: StepUp<60>, user: PasskeyUser<i64>) -> axum::Json<Value> {
    axum::Json(json!({ "done": true, "user_id": user.user_id }))
}

/// The test app on `store`: the passlock routes at `/passkey` and the
/// `/app/*` routes of the scenario contract.
pub(crate) fn app<S: SessionStore + Clone>(passlock: Passlock<i64>, store: S) -> Router {
    let sessions = SessionManagerLayer::new(store)
        .with_secure(passlock.secure_cookies())
        .with_http_only(true)
        .with_same_site(SameSite::Lax);
    app_without_sessions(passlock).layer(sessions)
}

pub(crate) fn app_without_sessions(passlock: Passlock<i64>) -> Router {
    let guarded = Router::new()
        .route("/app/admin", get(|| async { "admin" }))
        .route_layer(
            require_passkey(passlock.clone())
                .redirect_to("/login")
                .unwrap(),
        );
    Router::new()
        .route("/app/me", get(me))
        .route("/app/maybe", get(maybe))
        .route("/app/sensitive", post(sensitive))
        .merge(guarded)
        .merge(passlock_axum::router(passlock.clone()))
        .with_state(passlock)
}

async fn world() -> World<AxumApp> {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    World {
        app: AxumApp(app(passlock.clone(), MemoryStore::default())),
        passlock,
        clock,
    }
}

mod scenarios {
    crate::http_scenarios!(super::world);
}

/// The test app (memory sessions) around `passlock`.
async fn world_with(passlock: Passlock<i64>, clock: ManualClock) -> World<AxumApp> {
    World {
        app: AxumApp(app(passlock.clone(), MemoryStore::default())),
        passlock,
        clock,
    }
}

mod holes {
    crate::holes_scenarios!(super::world, super::world_with);
}

mod hardening {
    crate::hardening_scenarios!(super::world);
}

/// The scenarios again with SQLite for passkey links, the embedded
/// provider's passkeys and ceremonies, and sessions
/// (tower-sessions-sqlx-store), on one in-memory database.
async fn sqlite_world() -> World<AxumApp> {
    use passlock_core::store::sqlite::{
        SqliteAuthenticatorStore, SqliteCeremonyStore, SqliteCredentialStore, migrate,
    };
    use sqlx::sqlite::SqlitePoolOptions;
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    migrate(&pool).await.unwrap();
    let sessions = tower_sessions_sqlx_store::SqliteStore::new(pool.clone());
    sessions.migrate().await.unwrap();
    let clock = ManualClock::starting_now();
    let store = std::sync::Arc::new(SqliteAuthenticatorStore::<i64>::new(pool.clone()));
    let passlock = harness::passlock_with(
        store,
        std::sync::Arc::new(SqliteCredentialStore::new(pool.clone())),
        std::sync::Arc::new(SqliteCeremonyStore::new(pool)),
        &clock,
    )
    .await;
    World {
        app: AxumApp(app(passlock.clone(), sessions)),
        passlock,
        clock,
    }
}

mod sqlite_scenarios {
    crate::http_scenarios!(super::sqlite_world);
}

mod sqlite_hardening {
    crate::hardening_scenarios!(super::sqlite_world);
}

/// The hardening scenarios on PostgreSQL: links, passkeys, ceremonies,
/// codes and sessions (tower-sessions-sqlx-store) all in one fresh database,
/// dropped with the app.
async fn pg_world() -> World<AxumApp> {
    use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
    use passlock_core::store::postgres::{
        PgAuthenticatorStore, PgCeremonyStore, PgCredentialStore, migrate,
    };
    use std::sync::Arc;
    let (pool, guard) = passlock_tests::pg_database().await;
    migrate(&pool).await.unwrap();
    let sessions = tower_sessions_sqlx_store::PostgresStore::new(pool.clone());
    sessions.migrate().await.unwrap();
    let clock = ManualClock::starting_now();
    let provider = EmbeddedProvider::new(
        EmbeddedConfig::new("localhost", "passlock tests", [harness::ORIGIN])
            .with_clock(Arc::new(clock.clone())),
        Arc::new(PgCredentialStore::new(pool.clone())),
        Arc::new(PgCeremonyStore::new(pool.clone())),
    )
    .await
    .unwrap();
    let passlock = Passlock::builder(
        Arc::new(provider),
        Arc::new(PgAuthenticatorStore::<i64>::new(pool)),
    )
    .sign_up(Arc::new(harness::MemoryUsers::default()))
    .clock(Arc::new(clock.clone()))
    .trusted_proxy_header("x-test-client")
    .build()
    .unwrap();
    let router = app(passlock.clone(), sessions).layer(axum::Extension(Arc::new(guard)));
    World {
        app: AxumApp(router),
        passlock,
        clock,
    }
}

mod pg_hardening {
    crate::hardening_scenarios!(super::pg_world);
}

const MARKER: &str = "MARKER-session-store-7f3a";

/// A session store that always fails, with a marker in every error.
#[derive(Debug, Clone)]
struct FailingStore;

#[async_trait::async_trait]
impl SessionStore for FailingStore {
    async fn create(&self, _: &mut Record) -> session_store::Result<()> {
        Err(session_store::Error::Backend(MARKER.to_owned()))
    }
    async fn save(&self, _: &Record) -> session_store::Result<()> {
        Err(session_store::Error::Backend(MARKER.to_owned()))
    }
    async fn load(&self, _: &Id) -> session_store::Result<Option<Record>> {
        Err(session_store::Error::Backend(MARKER.to_owned()))
    }
    async fn delete(&self, _: &Id) -> session_store::Result<()> {
        Err(session_store::Error::Backend(MARKER.to_owned()))
    }
}

#[tokio::test]
async fn failing_session_store_is_a_503_without_the_cause() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let w = World {
        app: AxumApp(app(passlock.clone(), FailingStore)),
        passlock,
        clock,
    };
    let mut c = w.client();
    let (proof, _) = c
        .registration_ceremony(&mut authenticator(), json!({ "username": "alice" }))
        .await;
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    r.assert_error(503, "session_unavailable");
    assert!(!r.text.contains(MARKER), "{r:?}");
    assert!(r.header("set-cookie").is_none(), "no session issued: {r:?}");

    let cookie = format!("id={}", Id::default());
    for (method, path) in [
        ("GET", "/passkey/session"),
        ("GET", "/app/me"),
        ("GET", "/app/maybe"),
        ("POST", "/passkey/logout"),
        ("POST", "/passkey/login"),
    ] {
        let r = w
            .app
            .send(TestRequest {
                method,
                path: path.to_owned(),
                headers: vec![
                    ("cookie".to_owned(), cookie.clone()),
                    ("origin".to_owned(), harness::ORIGIN.to_owned()),
                    ("content-type".to_owned(), "application/json".to_owned()),
                ],
                body: br#"{"code":"x"}"#.to_vec(),
            })
            .await;
        r.assert_error(503, "session_unavailable");
        assert!(!r.text.contains(MARKER), "{path}: {r:?}");
    }
}

#[tokio::test]
async fn missing_session_layer_is_a_json_500() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let app = AxumApp(app_without_sessions(passlock));
    for path in ["/passkey/session", "/app/me"] {
        let r = app
            .send(TestRequest {
                method: "GET",
                path: path.to_owned(),
                headers: Vec::new(),
                body: Vec::new(),
            })
            .await;
        r.assert_error(500, "misconfigured");
        assert!(
            r.json["message"]
                .as_str()
                .unwrap()
                .contains("SessionManagerLayer")
        );
    }
}

#[tokio::test]
async fn require_passkey_redirects_html_and_refuses_json() {
    let w = world().await;
    let mut c = w.client();
    let html = c
        .send(TestRequest {
            method: "GET",
            path: "/app/admin".to_owned(),
            headers: vec![("accept".to_owned(), "text/html,*/*".to_owned())],
            body: Vec::new(),
        })
        .await;
    assert_eq!(html.status, 303, "{html:?}");
    assert_eq!(html.header("location"), Some("/login"));
    c.get("/app/admin")
        .await
        .assert_error(401, "not_authenticated");
    let mut auth = authenticator();
    c.sign_up(&mut auth, "alice").await;
    let r = c.get("/app/admin").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text, "admin");
    let r = c.get("/app/maybe").await;
    assert!(r.json["user_id"].is_i64(), "{r:?}");
    assert!(
        require_passkey(w.passlock.clone())
            .redirect_to("https://evil.example")
            .is_err()
    );
    assert!(
        require_passkey(w.passlock.clone())
            .redirect_to("//evil.example")
            .is_err()
    );
}

#[tokio::test]
async fn step_up_extractor_uses_the_passlock_clock() {
    let w = world().await;
    let mut c = w.client();
    let mut auth = authenticator();
    c.sign_up(&mut auth, "alice").await;
    let r = c.post("/app/sensitive", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    w.clock.advance_secs(61);
    let r = c.post("/app/sensitive", json!({})).await;
    r.assert_error(401, "step_up_required");
    assert_eq!(r.json["max_age"], 60);
    assert!(r.header("www-authenticate").unwrap().contains("max_age=60"));
    let me = c.get("/app/me").await;
    assert!(me.json["user_id"].is_i64(), "still signed in: {me:?}");
}

/// A world on the hosted provider against a fresh `FakePasslock` (with the
/// circuit breaker when `breaker`), tower-sessions memory store.
async fn hosted_world(
    breaker: bool,
) -> (World<AxumApp>, passlock_test::fake_passlock::FakePasslock) {
    let (clock, fake, passlock) = crate::hardening::hosted_setup(breaker).await;
    let w = World {
        app: AxumApp(app(passlock.clone(), MemoryStore::default())),
        passlock,
        clock,
    };
    (w, fake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_faults_answer_json_within_the_timeout() {
    let (w, fake) = hosted_world(false).await;
    crate::hardening::upstream_faults_answer_json_within_the_timeout(w, fake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unsafe_codes_never_reach_the_service() {
    let (w, fake) = hosted_world(false).await;
    crate::hardening::unsafe_codes_never_reach_the_service(w, fake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_429_answers_503_with_its_retry_after() {
    let (w, fake) = hosted_world(false).await;
    crate::hardening::upstream_429_answers_503_with_its_retry_after(w, fake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_circuit_answers_at_once_and_recovers() {
    let (w, fake) = hosted_world(true).await;
    crate::hardening::open_circuit_answers_at_once_and_recovers(w, fake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_vault_delete_keeps_the_link() {
    let (w, fake) = hosted_world(false).await;
    crate::hardening::a_failed_vault_delete_keeps_the_link(w, fake).await;
}

/// The record is stored as one JSON string (one clone per load, see
/// BENCHMARKS.md); a record stored as a JSON object by an earlier version
/// still signs the user in, and an unreadable one reads as signed out.
#[tokio::test]
async fn session_record_is_a_json_string_and_the_object_form_still_reads() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let store = MemoryStore::default();
    let w = World {
        app: AxumApp(app(passlock.clone(), store.clone())),
        passlock,
        clock,
    };
    let mut c = w.client();
    let mut auth = authenticator();
    let (uid, _) = c.sign_up(&mut auth, "alice").await;
    let id: Id = c.cookie("id").unwrap().parse().unwrap();
    let mut record = store.load(&id).await.unwrap().unwrap();
    let stored = record.data["passlock"].as_str().unwrap().to_owned();
    let typed: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(typed["auth"]["user_id"], uid);

    record.data.insert("passlock".to_owned(), typed);
    store.save(&record).await.unwrap();
    assert_eq!(c.session_user().await, Some(uid), "the object form reads");

    record
        .data
        .insert("passlock".to_owned(), json!({ "auth": 7 }));
    store.save(&record).await.unwrap();
    assert_eq!(c.session_user().await, None, "unreadable reads as empty");
}

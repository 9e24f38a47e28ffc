//! The scenarios on passlock-actix, plus what only actix has: the
//! `PasslockSessions` middleware, `MaybePasskeyUser`, the guard, the SQL
//! session store and multi-instance sessions over Redis.
//!
//! actix services are `!Send`, so each app runs on an actix system thread of
//! its own; [`ActixApp`] hands it requests over a channel
//! (`actix_web::test::init_service`, in-process, no sockets).

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use actix_session::storage::SessionStore;
use actix_web::body::{MessageBody, to_bytes};
use actix_web::cookie::Key;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, test, web};
use passlock_actix::passlock_core::clock::ManualClock;
use passlock_actix::{
    LoginPage, MaybePasskeyUser, PasskeyUser, PasslockSessions, SqlSessionStore, StepUp,
    require_passkey, require_passkey_or_redirect,
};
use passlock_core::Passlock;
use passlock_core::store::postgres::{
    PgAuthenticatorStore, PgCeremonyStore, PgCredentialStore, migrate as migrate_postgres,
};
use passlock_core::store::sqlite::{
    SqliteAuthenticatorStore, SqliteCeremonyStore, SqliteCredentialStore, migrate as migrate_sqlite,
};
use passlock_tests::PgGuard;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{mpsc, oneshot};

use crate::harness::{self, Reply, TestApp, TestRequest, World};

mod example;
mod failing;
mod parity;
mod sessions;
mod two_instances;

type Job = (TestRequest, oneshot::Sender<Reply>);

/// An actix app under test, running on its own actix system thread; the
/// thread ends when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct ActixApp(mpsc::UnboundedSender<Job>);

impl ActixApp {
    /// Builds the app with `make` on a new actix system thread.
    pub(crate) fn start<F, Fut, T, B>(make: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = App<T>> + 'static,
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
        B: MessageBody + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app = Rc::new(test::init_service(make().await).await);
                while let Some((req, reply)) = rx.recv().await {
                    let app = Rc::clone(&app);
                    actix_web::rt::spawn(async move {
                        let mut request = test::TestRequest::default()
                            .method(Method::from_bytes(req.method.as_bytes()).unwrap())
                            .uri(&req.path);
                        for (name, value) in &req.headers {
                            request = request.insert_header((name.as_str(), value.as_str()));
                        }
                        let request = request.set_payload(req.body).to_request();
                        let answer = match test::try_call_service(&*app, request).await {
                            Ok(res) => {
                                let (status, headers) = head(res.status(), res.headers());
                                let body = test::read_body(res).await;
                                Reply::new(status, headers, &body)
                            }
                            // What the HTTP server would answer.
                            Err(e) => {
                                let res = e.error_response();
                                let (status, headers) = head(res.status(), res.headers());
                                let body = to_bytes(res.into_body()).await.unwrap();
                                Reply::new(status, headers, &body)
                            }
                        };
                        let _ = reply.send(answer);
                    });
                }
            });
        });
        Self(tx)
    }
}

fn head(
    status: actix_web::http::StatusCode,
    headers: &actix_web::http::header::HeaderMap,
) -> (u16, Vec<(String, String)>) {
    let headers = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    (status.as_u16(), headers)
}

impl TestApp for ActixApp {
    async fn send(&self, req: TestRequest) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.0.send((req, tx)).unwrap();
        rx.await.unwrap()
    }
}

async fn me(MaybePasskeyUser(user): MaybePasskeyUser<i64>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "user_id": user.map(|u| u.user_id) }))
}

async fn sensitive(_: StepUp<60>, user: PasskeyUser<i64>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "done": true, "user_id": user.user_id }))
}

/// The passlock scope at `/passkey` and the `/app/*` routes of the scenario
/// contract, without a session middleware.
pub(crate) fn routes(passlock: Passlock<i64>) -> impl FnOnce(&mut web::ServiceConfig) {
    let login = LoginPage::new("/login").unwrap();
    move |cfg| {
        cfg.app_data(web::Data::new(passlock.clone()))
            .route("/app/me", web::get().to(me))
            .route("/app/maybe", web::get().to(me))
            .route("/app/sensitive", web::post().to(sensitive))
            .service(
                web::scope("/app/admin")
                    .wrap(from_fn(move |req, next| {
                        require_passkey_or_redirect::<i64>(req, next, login.clone())
                    }))
                    .route(
                        "",
                        web::get().to(|| async { HttpResponse::Ok().body("admin") }),
                    ),
            )
            .service(
                web::scope("/app/private")
                    .wrap(from_fn(require_passkey::<i64>))
                    .route(
                        "",
                        web::get().to(|| async { HttpResponse::Ok().body("private") }),
                    ),
            )
            .service(passlock_actix::scope(passlock));
    }
}

/// The test app with sessions in `store`.
pub(crate) fn app<St: SessionStore + 'static>(
    passlock: Passlock<i64>,
    store: St,
    key: Key,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let sessions = PasslockSessions::new(store, key, &passlock);
    App::new().configure(routes(passlock)).wrap(sessions)
}

/// The scenario world: sessions in a `SqlSessionStore` on in-memory SQLite.
async fn world() -> World<ActixApp> {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let for_app = passlock.clone();
    let app = ActixApp::start(move || async move {
        let sessions = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
        sessions.migrate().await.unwrap();
        app(for_app, sessions, Key::generate())
    });
    World {
        app,
        passlock,
        clock,
    }
}

mod scenarios {
    crate::http_scenarios!(super::world);
}

/// The test app (SQLite sessions) around `passlock`.
async fn world_with(passlock: Passlock<i64>, clock: ManualClock) -> World<ActixApp> {
    let for_app = passlock.clone();
    let app = ActixApp::start(move || async move {
        let sessions = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
        sessions.migrate().await.unwrap();
        app(for_app, sessions, Key::generate())
    });
    World {
        app,
        passlock,
        clock,
    }
}

mod holes {
    crate::holes_scenarios!(super::world, super::world_with);
}

/// The scenarios with SQLite for passkey links, the embedded provider's
/// passkeys and ceremonies, and sessions, on one in-memory database.
async fn sqlite_world() -> World<ActixApp> {
    let pool = passlock_tests::sqlite_pool().await;
    migrate_sqlite(&pool).await.unwrap();
    let clock = ManualClock::starting_now();
    let store = Arc::new(SqliteAuthenticatorStore::<i64>::new(pool.clone()));
    let passlock = harness::passlock_with(
        store,
        Arc::new(SqliteCredentialStore::new(pool.clone())),
        Arc::new(SqliteCeremonyStore::new(pool.clone())),
        &clock,
    )
    .await;
    let for_app = passlock.clone();
    let app = ActixApp::start(move || async move {
        let sessions = SqlSessionStore::sqlite(pool);
        sessions.migrate().await.unwrap();
        app(for_app, sessions, Key::generate())
    });
    World {
        app,
        passlock,
        clock,
    }
}

mod sqlite_scenarios {
    crate::http_scenarios!(super::sqlite_world);
}

/// An app that owns its PostgreSQL database: dropped with the world.
pub(crate) struct OnPostgres<A> {
    app: A,
    _database: PgGuard,
}

impl<A: TestApp> TestApp for OnPostgres<A> {
    fn send(&self, req: TestRequest) -> impl Future<Output = Reply> + Send {
        self.app.send(req)
    }
}

/// The scenarios with PostgreSQL for passkey links, the embedded
/// provider's passkeys and ceremonies, and sessions, in a database of their
/// own.
async fn postgres_world() -> World<OnPostgres<ActixApp>> {
    let (pool, guard) = passlock_tests::pg_database().await;
    migrate_postgres(&pool).await.unwrap();
    let clock = ManualClock::starting_now();
    let store = Arc::new(PgAuthenticatorStore::<i64>::new(pool.clone()));
    let passlock = harness::passlock_with(
        store,
        Arc::new(PgCredentialStore::new(pool.clone())),
        Arc::new(PgCeremonyStore::new(pool)),
        &clock,
    )
    .await;
    let (for_app, options) = (passlock.clone(), guard.options());
    let app = ActixApp::start(move || async move {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options);
        let sessions = SqlSessionStore::postgres(pool.await.unwrap());
        sessions.migrate().await.unwrap();
        app(for_app, sessions, Key::generate())
    });
    World {
        app: OnPostgres {
            app,
            _database: guard,
        },
        passlock,
        clock,
    }
}

mod postgres_scenarios {
    crate::http_scenarios!(super::postgres_world);
}

mod hardening {
    crate::hardening_scenarios!(super::world);
}

mod sqlite_hardening {
    crate::hardening_scenarios!(super::sqlite_world);
}

mod postgres_hardening {
    crate::hardening_scenarios!(super::postgres_world);
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
    let r = c.get("/app/maybe").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json["user_id"].is_null(), "{r:?}");
    let html_private = c
        .send(TestRequest {
            method: "GET",
            path: "/app/private".to_owned(),
            headers: vec![("accept".to_owned(), "text/html".to_owned())],
            body: Vec::new(),
        })
        .await;
    html_private.assert_error(401, "not_authenticated");
    let mut auth = harness::authenticator();
    c.sign_up(&mut auth, "alice").await;
    let r = c.get("/app/private").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text, "private");
    let r = c.get("/app/admin").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text, "admin");
    let r = c.get("/app/maybe").await;
    assert!(r.json["user_id"].is_i64(), "{r:?}");
    for bad in ["https://evil.example", "//evil.example", "/\\evil", "login"] {
        assert!(LoginPage::new(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn step_up_extractor_uses_the_passlock_clock() {
    let w = world().await;
    let mut c = w.client();
    let mut auth = harness::authenticator();
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

#[tokio::test]
async fn head_requests_are_answered_like_get() {
    let w = world().await;
    let r = w
        .app
        .send(TestRequest {
            method: "HEAD",
            path: "/passkey/client.js".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        })
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = w
        .app
        .send(TestRequest {
            method: "PUT",
            path: "/passkey/login".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        })
        .await;
    r.assert_error(405, "method_not_allowed");
}

/// A world on the hosted provider against a fresh `FakePasslock` (with the
/// circuit breaker when `breaker`), SQL sessions on SQLite.
async fn hosted_world(
    breaker: bool,
) -> (World<ActixApp>, passlock_test::fake_passlock::FakePasslock) {
    let (clock, fake, passlock) = crate::hardening::hosted_setup(breaker).await;
    let for_app = passlock.clone();
    let app = ActixApp::start(move || async move {
        let sessions = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
        sessions.migrate().await.unwrap();
        app(for_app, sessions, Key::generate())
    });
    let w = World {
        app,
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

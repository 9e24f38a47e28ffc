//! Throttling as apps really serve passlock: over real sockets, with no
//! `x-test-client` header (issue 13, items 1, 4 and 6).
//!
//! * axum served exactly as the README and the crate docs say
//!   (`into_make_service_with_connect_info::<SocketAddr>()`), and the axum
//!   example app as its `main` serves it: the 11th bad log-in is a `429`;
//! * axum served *without* connect info: still throttled, in the one shared
//!   bucket, and the fallback is logged once;
//! * actix's `HttpServer` (peer address known): the 11th bad log-in is a `429`;
//! * 30 concurrent bad log-ins from one address: exactly the limit are
//!   verified (`401`), the rest are `429` (attempts are reserved atomically);
//! * the ceremony starts (authorize, the embedded browser routes) are limited
//!   per address and a refused call stores no ceremony.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use passlock_core::clock::ManualClock;
use passlock_core::provider::embedded::{
    EmbeddedConfig, EmbeddedProvider, MemoryCeremonyStore, MemoryCredentialStore,
};
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::throttle::Limit;
use passlock_core::{Passlock, Policy};
use serde_json::{Value, json};
use tower_sessions::cookie::SameSite;
use tower_sessions::{MemoryStore, SessionManagerLayer};

use crate::harness::{self, MemoryUsers, ORIGIN, TestApp, TestRequest, post_request_from};

/// The README's axum app: embedded provider and links in memory, memory
/// sessions with the recommended cookie flags, the passlock router merged.
async fn readme_app() -> axum::Router {
    let provider =
        EmbeddedProvider::in_memory(EmbeddedConfig::new("localhost", "My app", [ORIGIN]))
            .await
            .unwrap();
    let passlock: Passlock<i64> = Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::new()),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .build()
    .unwrap();
    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_secure(passlock.secure_cookies())
        .with_http_only(true)
        .with_same_site(SameSite::Lax);
    axum::Router::new()
        .merge(passlock_axum::router(passlock.clone()))
        .with_state(passlock)
        .layer(sessions)
}

/// Binds 127.0.0.1:0; the base URL.
async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// Serves `app` as the README does: with connect info.
async fn serve_with_connect_info(app: axum::Router) -> String {
    let (listener, base) = listener().await;
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    base
}

/// A browser over HTTP: one reqwest client, one session cookie.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            cookie: None,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Option<String>, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", ORIGIN)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(cookie) = &self.cookie {
            req = req.header("cookie", cookie);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = res.bytes().await.unwrap();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, retry_after, json)
    }

    /// Starts a sign-up to hold a session cookie, as a browser would.
    async fn take_a_session(&mut self) {
        let res = self
            .http
            .post(format!("{}/passkey/registration/authorize", self.base))
            .header("origin", ORIGIN)
            .header("content-type", "application/json")
            .body(json!({ "username": "mallory" }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let set_cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap();
        self.cookie = Some(set_cookie.split(';').next().unwrap().to_owned());
    }
}

fn bogus_code(i: usize) -> Value {
    json!({ "code": format!("bogus-code-{i:04}-aaaaaaaaaaaaaaaaaaaaaaaa") })
}

/// Ten bad log-ins answer `401 invalid_token`, the 11th `429 throttled`
/// with a `Retry-After` within the 5-minute window.
async fn assert_eleventh_bad_login_is_throttled(browser: &Browser) {
    for i in 0..10 {
        let (status, _, json) = browser.post("/passkey/login", bogus_code(i)).await;
        assert_eq!(
            (status, json["error"].as_str()),
            (401, Some("invalid_token"))
        );
    }
    let (status, retry_after, json) = browser.post("/passkey/login", bogus_code(10)).await;
    assert_eq!((status, json["error"].as_str()), (429, Some("throttled")));
    let retry: u64 = retry_after.unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
}

#[tokio::test]
async fn axum_served_as_the_readme_says_throttles_bad_logins() {
    let base = serve_with_connect_info(readme_app().await).await;
    let mut browser = Browser::new(&base);
    browser.take_a_session().await;
    assert_eleventh_bad_login_is_throttled(&browser).await;
}

/// Log lines written by the test's subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn axum_served_without_connect_info_throttles_in_one_shared_bucket_and_says_so_once() {
    // A current-thread runtime: the server's tasks log into this subscriber.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = readme_app().await;
    let (listener, base) = listener().await;
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut browser = Browser::new(&base);
    browser.take_a_session().await;
    assert_eleventh_bad_login_is_throttled(&browser).await;
    // Another browser (another cookie) shares the bucket: an address the
    // app cannot see cannot be told apart.
    let other = Browser::new(&base);
    let (status, _, json) = other.post("/passkey/login", bogus_code(11)).await;
    assert_eq!((status, json["error"].as_str()), (429, Some("throttled")));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings = logs.matches("throttling falls back").count();
    assert_eq!(warnings, 1, "{logs}");
    assert!(
        logs.contains("into_make_service_with_connect_info"),
        "{logs}"
    );
}

#[tokio::test]
async fn axum_example_app_as_its_main_serves_it_throttles_concurrent_bad_logins_atomically() {
    let db = format!(
        "sqlite:file:{}?mode=memory&cache=shared",
        passlock_tests::unique_name("axum_example_throttle")
    );
    let app = axum_app::build_app(axum_app::AppConfig::localhost(3000, db))
        .await
        .unwrap();
    let base = serve_with_connect_info(app).await;
    let mut browser = Browser::new(&base);
    browser.take_a_session().await;
    // 30 bad log-ins at once from one address and one cookie: each check
    // and count is one step, so exactly the limit (10) are verified.
    let answers = join_all((0..30).map(|i| browser.post("/passkey/login", bogus_code(i)))).await;
    let mut refused = 0;
    let mut throttled = 0;
    for (status, _, json) in &answers {
        match (*status, json["error"].as_str()) {
            (401, Some("invalid_token")) => refused += 1,
            (429, Some("throttled")) => throttled += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((refused, throttled), (10, 20));
    let (status, _, _) = browser.post("/passkey/login", bogus_code(99)).await;
    assert_eq!(status, 429);
}

#[test]
fn actix_http_server_throttles_bad_logins_by_peer_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let db = format!(
        "sqlite:file:{}?mode=memory&cache=shared",
        passlock_tests::unique_name("actix_example_throttle")
    );
    let config = actix_app::AppConfig {
        origin: ORIGIN.to_owned(),
        ..actix_app::AppConfig::localhost(3001, db)
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let example = actix_app::build(config).await.unwrap();
            let server = actix_web::HttpServer::new(move || example.clone().app())
                .workers(1)
                .listen(listener)
                .unwrap()
                .run();
            tx.send(server.handle()).unwrap();
            server.await.unwrap();
        });
    });
    let handle = rx.recv().unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut browser = Browser::new(&base);
            browser.take_a_session().await;
            assert_eleventh_bad_login_is_throttled(&browser).await;
            handle.stop(false).await;
        });
}

/// A passlock over the embedded provider whose ceremonies are in
/// `ceremonies`, allowing `limit` ceremony starts per address.
async fn ceremony_passlock(
    ceremonies: Arc<MemoryCeremonyStore>,
    limit: u32,
    clock: &ManualClock,
) -> Passlock<i64> {
    let provider = EmbeddedProvider::new(
        EmbeddedConfig::new("localhost", "passlock tests", [ORIGIN]),
        Arc::new(MemoryCredentialStore::new()),
        ceremonies,
    )
    .await
    .unwrap();
    let mut policy = Policy::default();
    policy.throttle.ceremonies_per_address = Limit::new(limit, std::time::Duration::from_secs(60));
    Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::new()),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .clock(Arc::new(clock.clone()))
    .policy(policy)
    .trusted_proxy_header("x-test-client")
    .build()
    .unwrap()
}

/// Past the limit, both authorize routes and the embedded browser routes
/// answer `429 throttled` with `Retry-After` and store no ceremony; another
/// address and the next window are not affected.
async fn ceremony_starts_are_limited_per_address<A: TestApp>(
    app: &A,
    ceremonies: &MemoryCeremonyStore,
    clock: &ManualClock,
) {
    let before = ceremonies.len();
    for _ in 0..4 {
        let r = app
            .send(post_request_from(
                "203.0.113.7",
                "/passkey/authentication/authorize",
                json!({}),
            ))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert_eq!(ceremonies.len(), before + 4);
    let tenancy = app
        .send(post_request_from(
            "203.0.113.7",
            "/passkey/registration/authorize",
            json!({ "username": "eve" }),
        ))
        .await;
    assert_eq!(tenancy.status, 200, "{tenancy:?}");
    // The embedded provider's endpoint is the app itself: a path.
    let path = harness::service_base(&tenancy.json);
    let stored = ceremonies.len();
    assert_eq!(stored, before + 5);

    for (route, body) in [
        ("/passkey/authentication/authorize", json!({})),
        (
            "/passkey/registration/authorize",
            json!({ "username": "eve" }),
        ),
        (
            format!("{path}/authentication/options").as_str(),
            json!({ "authenticationToken": "x" }),
        ),
        (
            &format!("{path}/registration/options"),
            json!({ "registrationToken": "x" }),
        ),
    ] {
        let r = app
            .send(post_request_from("203.0.113.7", route, body))
            .await;
        r.assert_error(429, "throttled");
        assert_eq!(r.header("retry-after"), Some("60"), "{route}");
    }
    assert_eq!(ceremonies.len(), stored, "a refused call stores nothing");

    // Another address is not affected; the next window starts afresh.
    let r = app
        .send(post_request_from(
            "198.51.100.1",
            "/passkey/authentication/authorize",
            json!({}),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    clock.advance_secs(60);
    let r = app
        .send(post_request_from(
            "203.0.113.7",
            "/passkey/authentication/authorize",
            json!({}),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn axum_ceremony_starts_are_limited_per_address() {
    let clock = ManualClock::starting_now();
    let ceremonies = Arc::new(MemoryCeremonyStore::new());
    let passlock = ceremony_passlock(ceremonies.clone(), 5, &clock).await;
    let app = crate::axum::AxumApp(crate::axum::app(passlock, MemoryStore::default()));
    ceremony_starts_are_limited_per_address(&app, &ceremonies, &clock).await;
}

#[tokio::test]
async fn actix_ceremony_starts_are_limited_per_address() {
    let clock = ManualClock::starting_now();
    let ceremonies = Arc::new(MemoryCeremonyStore::new());
    let passlock = ceremony_passlock(ceremonies.clone(), 5, &clock).await;
    let app = crate::actix::ActixApp::start(move || async move {
        let sessions = passlock_actix::SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
        sessions.migrate().await.unwrap();
        crate::actix::app(passlock, sessions, actix_web::cookie::Key::generate())
    });
    ceremony_starts_are_limited_per_address(&app, &ceremonies, &clock).await;
}

#[tokio::test]
async fn trusted_proxy_hops_are_validated() {
    let build = |hops: usize, header: bool| async move {
        let provider = EmbeddedProvider::in_memory(EmbeddedConfig::new("localhost", "t", [ORIGIN]))
            .await
            .unwrap();
        let mut b = Passlock::<i64>::builder(
            Arc::new(provider),
            Arc::new(MemoryAuthenticatorStore::new()),
        )
        .trusted_proxy_hops(hops);
        if header {
            b = b.trusted_proxy_header("x-forwarded-for");
        }
        b.build()
    };
    assert_eq!(
        build(0, true).await.unwrap_err().field,
        "trusted_proxy_hops"
    );
    assert_eq!(
        build(2, false).await.unwrap_err().field,
        "trusted_proxy_hops"
    );
    let pl = build(2, true).await.unwrap();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let peer = Some(ip("10.0.0.2"));
    // CDN + load balancer: the second entry from the right; what the client
    // put further left changes nothing.
    let info = pl.client_info(peer, |_| Some("6.6.6.6, 198.51.100.1, 10.0.0.9"));
    assert_eq!(info.address, Some(ip("198.51.100.1")));
    // Too few entries: the peer, never the client-chosen one.
    let info = pl.client_info(peer, |_| Some("6.6.6.6"));
    assert_eq!(info.address, peer);
}

#[tokio::test]
async fn a_full_memory_ceremony_store_refuses_new_ceremonies_with_a_503() {
    let clock = ManualClock::starting_now();
    let ceremonies = MemoryCeremonyStore::new().with_clock(Arc::new(clock.clone()));
    // The provider keeps its signing key in the store: room for two more.
    let probe = Arc::new(MemoryCeremonyStore::new());
    let _ = ceremony_passlock(probe.clone(), 100, &clock).await;
    let ceremonies = Arc::new(ceremonies.with_capacity(probe.len() + 2));
    let passlock = ceremony_passlock(ceremonies.clone(), 100, &clock).await;
    let app = crate::axum::AxumApp(crate::axum::app(passlock, MemoryStore::default()));
    for _ in 0..2 {
        let r = app
            .send(post_request_from(
                "203.0.113.7",
                "/passkey/authentication/authorize",
                json!({}),
            ))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let full = ceremonies.len();
    // Another address: the cap is global, and the answer is a JSON 503
    // that leaks nothing.
    let r = app
        .send(post_request_from(
            "198.51.100.1",
            "/passkey/authentication/authorize",
            json!({}),
        ))
        .await;
    r.assert_error(503, "store_unavailable");
    assert_eq!(ceremonies.len(), full);
    // Past the ceremonies' expiry (5 minutes), there is room again.
    clock.advance_secs(301);
    let r = app
        .send(post_request_from(
            "198.51.100.1",
            "/passkey/authentication/authorize",
            json!({}),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn actix_requests_without_a_peer_address_share_one_bucket() {
    // actix test requests carry no peer address and no header here: the
    // shared bucket still throttles the 11th bad log-in, from any browser.
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let app = crate::actix::ActixApp::start(move || async move {
        let sessions = passlock_actix::SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
        sessions.migrate().await.unwrap();
        crate::actix::app(passlock, sessions, actix_web::cookie::Key::generate())
    });
    let login = |i: usize| TestRequest {
        method: "POST",
        path: "/passkey/login".to_owned(),
        headers: vec![
            ("origin".to_owned(), ORIGIN.to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ],
        body: bogus_code(i).to_string().into_bytes(),
    };
    for i in 0..10 {
        app.send(login(i)).await.assert_error(401, "invalid_token");
    }
    let r = app.send(login(10)).await;
    r.assert_error(429, "throttled");
    assert_eq!(r.header("retry-after"), Some("300"));
}

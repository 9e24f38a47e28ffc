//! Real-browser test: Debian chromium over CDP with a virtual authenticator.
//!
//! Needs `chromium` in `PATH` (`apt-get install -y chromium`); without it the tests fail
//! and say so. Screenshots of every step land in `target/browser-screenshots/<test>/`.
//!
//! `cdp` is the browser client, `scenario::passkey_journey` the journey over the example
//! page's element ids. Another example app runs the same journey by serving itself on
//! `127.0.0.1:0` and calling `with_browser(name, |page, authenticator, shots|
//! scenario::passkey_journey(page, "http://localhost:<port>", authenticator, shots))`.

// Test code: failing loudly with a clear message is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cdp;
mod features;
mod scenario;

use std::future::IntoFuture as _;
use std::path::PathBuf;
use std::time::Duration;

use cdp::{Browser, CdpResult, Page};
use passlock_test::recovery::CapturingMailer;
use scenario::wait_text;

/// The most one whole browser test may take.
const OVERALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one step waits for the page to show its result: a bound, not a
/// window (a step that passes ends as soon as the page shows it). A minute,
/// because a debug build's argon2 password check on a loaded 2-core machine
/// took over 15 s (issue 19.3: the suite run five times under load).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// A SQLite database file in a fresh temporary directory, removed when
/// dropped: the example apps run on a file, as `cargo run` of the README
/// does (an in-memory SQLite database is lost with its one connection, e.g.
/// when a request is cancelled by a page reload while it holds it).
struct TempDb {
    dir: PathBuf,
}

impl TempDb {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "passlock-browser-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// The database's URL for the example apps' `AppConfig`.
    fn url(&self) -> String {
        format!("sqlite://{}", self.dir.join("app.db").display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An HTTP server on `127.0.0.1:<free port>`, stopped when dropped.
struct Server {
    /// Owns the server task; dropping it stops the server.
    _runtime: tokio::runtime::Runtime,
    port: u16,
    /// The app's database, removed after the server stopped.
    _db: TempDb,
}

impl Server {
    /// Binds a free loopback port, builds the app for it with `make(port, database_url)`
    /// (a fresh SQLite file) and serves it.
    fn start<F, Fut>(make: F) -> Self
    where
        F: FnOnce(u16, String) -> Fut,
        Fut: std::future::Future<Output = axum::Router>,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let db = TempDb::new();
        let router = runtime.block_on(make(port, db.url()));
        let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        runtime.spawn(axum::serve(listener, app).into_future());
        Self {
            _runtime: runtime,
            port,
            _db: db,
        }
    }

    /// The page's origin. Chromium refuses WebAuthn on IP addresses, so it is `localhost`.
    fn base_url(&self) -> String {
        format!("http://localhost:{}", self.port)
    }
}

/// Numbered screenshots of one test's steps.
struct Shots {
    dir: PathBuf,
    next: u32,
}

impl Shots {
    fn new(test: &str) -> Self {
        let dir = cdp::screenshot_dir(test);
        // Old screenshots of an earlier run would be misleading.
        let _ = std::fs::remove_dir_all(&dir);
        Self { dir, next: 1 }
    }

    fn take(&mut self, page: &mut Page<'_>, step: &str) -> CdpResult<()> {
        let path = self.dir.join(format!("{:02}-{step}.png", self.next));
        self.next += 1;
        page.screenshot(&path)
    }
}

/// Launches chromium, opens a tab with a virtual platform authenticator (added before any
/// navigation), runs `scenario` and panics with the page's state and console when it fails.
fn with_browser<F>(test: &str, scenario: F)
where
    F: FnOnce(&mut Page<'_>, &str, &mut Shots) -> CdpResult<()>,
{
    // The app's warnings and errors go to stderr, which nextest shows with a
    // failing test: the cause of a 503 is then in the report.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn,passlock=info"))
        .with_writer(std::io::stderr)
        .try_init();
    let mut browser = match Browser::launch(OVERALL_TIMEOUT) {
        Ok(browser) => browser,
        Err(e) => panic!("cannot start the browser for {test}: {e}"),
    };
    let mut page = match browser.new_page() {
        Ok(page) => page,
        Err(e) => panic!("cannot open a tab for {test}: {e}"),
    };
    let authenticator = match page.add_virtual_authenticator(cdp::platform_authenticator()) {
        Ok(id) => id,
        Err(e) => panic!("cannot add a virtual authenticator for {test}: {e}"),
    };
    let mut shots = Shots::new(test);
    if let Err(error) = scenario(&mut page, &authenticator, &mut shots) {
        // The failure may be the overall timeout: allow a few more calls for the diagnosis.
        page.extend_deadline(Duration::from_secs(20));
        let screenshot = match shots.take(&mut page, "failure") {
            Ok(()) => format!("screenshots in {}", shots.dir.display()),
            Err(e) => format!("no failure screenshot: {e}"),
        };
        let message = page
            .text("#message")
            .ok()
            .flatten()
            .unwrap_or_else(|| "<no #message element>".to_owned());
        let status = page
            .text("#status")
            .ok()
            .flatten()
            .unwrap_or_else(|| "<no #status element>".to_owned());
        let console = page.console().join("\n  ");
        let stderr = page.browser_stderr();
        panic!(
            "browser test {test} failed: {error}\n#status: {status}\n#message: {message}\n{screenshot}\n\
             browser console:\n  {console}\nchromium stderr (tail):\n{stderr}"
        );
    }
}

/// A minimal page that runs one registration and one usernameless assertion by hand, so a
/// failure of the app test can be told apart from a broken browser harness.
const SMOKE_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>WebAuthn smoke</title></head>
<body>
<h1>WebAuthn smoke</h1>
<button id="create">Create</button> <button id="get">Get</button>
<p id="status">Idle</p><p id="message"></p>
<script>
const $ = (s) => document.querySelector(s);
const random = (n) => crypto.getRandomValues(new Uint8Array(n));
const id = (cred) => cred.id;
$('#create').addEventListener('click', async () => {
  try {
    const cred = await navigator.credentials.create({ publicKey: {
      challenge: random(32),
      rp: { id: 'localhost', name: 'smoke' },
      user: { id: random(16), name: 'alice', displayName: 'Alice' },
      pubKeyCredParams: [{ type: 'public-key', alg: -7 }, { type: 'public-key', alg: -257 }],
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      timeout: 10000,
    }});
    console.log('created', id(cred));
    $('#status').textContent = 'Created ' + id(cred);
  } catch (e) { $('#message').textContent = 'Error: ' + e; }
});
$('#get').addEventListener('click', async () => {
  try {
    const cred = await navigator.credentials.get({ publicKey: {
      challenge: random(32), rpId: 'localhost', userVerification: 'required', timeout: 10000,
    }});
    $('#status').textContent = 'Asserted ' + id(cred);
  } catch (e) { $('#message').textContent = 'Error: ' + e; }
});
</script>
</body></html>"#;

/// The harness itself: the virtual authenticator creates a resident key and signs with it
/// without any allow list, on a plain page served from `localhost`.
#[test]
fn virtual_authenticator_smoke() {
    let server = Server::start(|_port, _db| async {
        axum::Router::new().route(
            "/",
            axum::routing::get(|| async { axum::response::Html(SMOKE_PAGE) }),
        )
    });
    let url = format!("{}/", server.base_url());
    with_browser("smoke", |page, authenticator, shots| {
        page.navigate(&url, STEP_TIMEOUT)?;
        shots.take(page, "loaded")?;
        page.click("#create")?;
        let created = wait_text(page, "#status", "a created credential", |t| {
            t.starts_with("Created ")
        })?;
        shots.take(page, "created")?;
        let credentials = page.authenticator_credentials(authenticator)?;
        if credentials.len() != 1 {
            return Err(format!(
                "the authenticator holds {} credentials, expected 1",
                credentials.len()
            ));
        }
        if credentials[0]["isResidentCredential"] != serde_json::Value::Bool(true) {
            return Err(format!("not a resident credential: {}", credentials[0]));
        }
        page.click("#get")?;
        let credential_id = created.trim_start_matches("Created ").to_owned();
        wait_text(page, "#status", "an assertion", |t| {
            t == format!("Asserted {credential_id}")
        })?;
        shots.take(page, "asserted")?;
        Ok(())
    });
}

/// The axum example app, as a person uses it: sign up, log out, log in, sensitive action,
/// step-up, a second passkey, delete one, log out.
#[test]
fn axum_example_passkey_journey() {
    let server = Server::start(|port, db| async move {
        let config = axum_app::AppConfig::localhost(port, &db);
        match axum_app::build_app(config).await {
            Ok(router) => router,
            Err(e) => panic!("cannot build the axum example app: {e}"),
        }
    });
    let base_url = server.base_url();
    with_browser("axum-example", |page, authenticator, shots| {
        scenario::passkey_journey(page, &base_url, authenticator, shots)
    });
}

/// The axum example app's password-then-passkey pattern: password sign-up, a first passkey,
/// then the password as a first factor and the passkey as the second.
#[test]
fn axum_example_password_then_passkey() {
    let server = Server::start(|port, db| async move {
        let config = axum_app::AppConfig::localhost(port, &db);
        match axum_app::build_app(config).await {
            Ok(router) => router,
            Err(e) => panic!("cannot build the axum example app: {e}"),
        }
    });
    let base_url = server.base_url();
    with_browser("axum-example-mfa", |page, authenticator, shots| {
        scenario::password_then_passkey_journey(page, &base_url, authenticator, shots)
    });
}

/// The actix example app on a free loopback port, stopped when dropped.
struct ActixServer {
    port: u16,
    /// The app's database, removed after the server stopped (dropped last).
    _db: TempDb,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ActixServer {
    fn start() -> Self {
        Self::start_with(None)
    }

    /// The example app, its recovery codes sent to `mailer` when given.
    fn start_with(mailer: Option<std::sync::Arc<CapturingMailer>>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        let db = TempDb::new();
        let url = db.url();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let mut config = actix_app::AppConfig::localhost(port, &url);
                if let Some(mailer) = mailer {
                    config.recovery_mailer = mailer;
                }
                let example = match actix_app::build(config).await {
                    Ok(example) => example,
                    Err(e) => panic!("cannot build the actix example app: {e}"),
                };
                let server = actix_web::HttpServer::new(move || example.clone().app())
                    .workers(1)
                    .listen(listener)
                    .unwrap()
                    .run();
                tx.send(server.handle()).unwrap();
                server.await.unwrap();
            });
        });
        let handle = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the actix example app did not start");
        Self {
            port,
            _db: db,
            handle,
            thread: Some(thread),
        }
    }

    fn base_url(&self) -> String {
        format!("http://localhost:{}", self.port)
    }
}

impl Drop for ActixServer {
    fn drop(&mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The same journey on the actix example app: one page, one client.js, two adapters.
#[test]
fn actix_example_passkey_journey() {
    let server = ActixServer::start();
    let base_url = server.base_url();
    with_browser("actix-example", |page, authenticator, shots| {
        scenario::passkey_journey(page, &base_url, authenticator, shots)
    });
}

/// The password-then-passkey pattern on the actix example app (same page, same routes).
#[test]
fn actix_example_password_then_passkey() {
    let server = ActixServer::start();
    let base_url = server.base_url();
    with_browser("actix-example-mfa", |page, authenticator, shots| {
        scenario::password_then_passkey_journey(page, &base_url, authenticator, shots)
    });
}

/// The axum example app on a fresh SQLite file.
fn axum_example() -> Server {
    Server::start(|port, db| async move {
        let config = axum_app::AppConfig::localhost(port, &db);
        match axum_app::build_app(config).await {
            Ok(router) => router,
            Err(e) => panic!("cannot build the axum example app: {e}"),
        }
    })
}

/// Autofill sign-in: the conditional request, its abort by a button, its answer.
#[test]
fn axum_example_autofill() {
    let server = axum_example();
    let base_url = server.base_url();
    with_browser("autofill", |page, authenticator, shots| {
        features::autofill(page, &base_url, authenticator, shots)
    });
}

/// The browser's WebAuthn JSON helpers are used where present.
#[test]
fn axum_example_json_helpers() {
    let server = axum_example();
    let base_url = server.base_url();
    with_browser("json-helpers", |page, authenticator, shots| {
        features::json_helpers(page, &base_url, authenticator, shots, true)
    });
}

/// Without the browser's JSON helpers the hand conversion does the same.
#[test]
fn axum_example_json_fallback() {
    let server = axum_example();
    let base_url = server.base_url();
    with_browser("json-fallback", |page, authenticator, shots| {
        features::json_helpers(page, &base_url, authenticator, shots, false)
    });
}

/// Renaming a passkey through the page (axum).
#[test]
fn axum_example_rename() {
    let server = axum_example();
    let base_url = server.base_url();
    with_browser("rename-axum", |page, authenticator, shots| {
        features::rename(page, &base_url, authenticator, shots)
    });
}

/// Renaming a passkey through the page (actix: the same page, the same PATCH route).
#[test]
fn actix_example_rename() {
    let server = ActixServer::start();
    let base_url = server.base_url();
    with_browser("rename-actix", |page, authenticator, shots| {
        features::rename(page, &base_url, authenticator, shots)
    });
}

/// The Signal API calls after the list loads, after a delete and after a refused sign-in.
#[test]
fn axum_example_signal_api() {
    let server = axum_example();
    let base_url = server.base_url();
    with_browser("signals", |page, authenticator, shots| {
        features::signals(page, &base_url, authenticator, shots)
    });
}

/// A taken username is refused before the device saves a passkey.
#[test]
fn axum_example_taken_username() {
    let server = axum_example();
    let base_url = server.base_url();
    with_browser("taken-username", |page, authenticator, shots| {
        features::taken_username(page, &base_url, authenticator, shots)
    });
}

/// A browser without passkeys gets a clear message and the password still works.
#[test]
fn axum_example_without_passkeys() {
    let server = axum_example();
    let base_url = server.base_url();
    with_browser("without-passkeys", |page, authenticator, shots| {
        features::without_passkeys(page, &base_url, authenticator, shots)
    });
}

/// The passkey upgrade after a password sign-in where the browser offers conditional create.
#[test]
fn axum_example_upgrade_with_conditional_create() {
    let server = axum_example();
    let base_url = server.base_url();
    with_browser("upgrade", |page, authenticator, shots| {
        features::upgrade(page, &base_url, authenticator, shots, true)
    });
}

/// No upgrade request where the browser lacks conditional create.
#[test]
fn axum_example_no_upgrade_without_conditional_create() {
    let server = axum_example();
    let base_url = server.base_url();
    with_browser("no-upgrade", |page, authenticator, shots| {
        features::upgrade(page, &base_url, authenticator, shots, false)
    });
}

/// The README's screenshot of the account view (see `scripts/screenshot`).
#[test]
fn readme_screenshot() {
    let server = axum_example();
    let base_url = server.base_url();
    with_browser("readme", |page, authenticator, shots| {
        features::readme_screenshot(page, &base_url, authenticator, shots)
    });
}

/// A passkey list older than a registration is not signalled (the new passkey stays).
#[test]
fn axum_example_stale_list_not_signalled() {
    let server = axum_example();
    let base_url = server.base_url();
    with_browser("stale-list", |page, authenticator, shots| {
        features::stale_list(page, &base_url, authenticator, shots)
    });
}

/// Account recovery on the axum example page: the app's dev mailer is replaced by the test
/// kit's capturing mailer through the app's own config (no test-only route or header).
#[test]
fn axum_example_recovery_journey() {
    let mailer = std::sync::Arc::new(CapturingMailer::new());
    let for_app = mailer.clone();
    let server = Server::start(move |port, db| async move {
        let mut config = axum_app::AppConfig::localhost(port, &db);
        config.recovery_mailer = for_app;
        match axum_app::build_app(config).await {
            Ok(router) => router,
            Err(e) => panic!("cannot build the axum example app: {e}"),
        }
    });
    let base_url = server.base_url();
    with_browser("axum-example-recovery", |page, authenticator, shots| {
        scenario::recovery_journey(page, &base_url, authenticator, shots, &mailer)
    });
}

/// The same recovery journey on the actix example app.
#[test]
fn actix_example_recovery_journey() {
    let mailer = std::sync::Arc::new(CapturingMailer::new());
    let server = ActixServer::start_with(Some(mailer.clone()));
    let base_url = server.base_url();
    with_browser("actix-example-recovery", |page, authenticator, shots| {
        scenario::recovery_journey(page, &base_url, authenticator, shots, &mailer)
    });
}

//! Store failures and misconfiguration: JSON `503`/`500`, causes only in logs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::Key;
use actix_web::cookie::time::Duration;
use actix_web::{App, HttpResponse, web};
use passlock_actix::passlock_core::clock::ManualClock;
use passlock_actix::{PasskeyUser, StepUp};

use super::{ActixApp, app, routes};
use crate::harness::{self, ORIGIN, TestApp, TestRequest};

const MARKER: &str = "MARKER-actix-session-store-51c9";

/// A memory session store that can be switched to fail, with a marker in
/// every error.
#[derive(Clone, Default)]
pub(super) struct SwitchStore {
    broken: Arc<AtomicBool>,
    sessions: Arc<Mutex<HashMap<String, HashMap<String, String>>>>,
}

impl SwitchStore {
    fn check(&self) -> anyhow::Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            anyhow::bail!("{MARKER}: connection refused");
        }
        Ok(())
    }
}

impl SessionStore for SwitchStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        self.check().map_err(LoadError::Other)?;
        Ok(self.sessions.lock().unwrap().get(key.as_ref()).cloned())
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        _: &Duration,
    ) -> Result<SessionKey, SaveError> {
        self.check().map_err(SaveError::Other)?;
        let key = harness_key();
        self.sessions.lock().unwrap().insert(key.clone(), state);
        Ok(key.try_into().unwrap())
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        _: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        self.check().map_err(UpdateError::Other)?;
        self.sessions
            .lock()
            .unwrap()
            .insert(key.as_ref().to_owned(), state);
        Ok(key)
    }

    async fn update_ttl(&self, _: &SessionKey, _: &Duration) -> anyhow::Result<()> {
        self.check()
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        self.check()?;
        self.sessions.lock().unwrap().remove(key.as_ref());
        Ok(())
    }
}

fn harness_key() -> String {
    passlock_tests::unique_name("session")
}

fn request(method: &'static str, path: &str, cookie: Option<&str>) -> TestRequest {
    let mut headers = vec![
        ("origin".to_owned(), ORIGIN.to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    if let Some(cookie) = cookie {
        headers.push(("cookie".to_owned(), cookie.to_owned()));
    }
    TestRequest {
        method,
        path: path.to_owned(),
        headers,
        body: br#"{"code":"x"}"#.to_vec(),
    }
}

#[tokio::test]
async fn failing_session_store_is_a_503_without_the_cause() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let store = SwitchStore::default();
    let for_app = (passlock.clone(), store.clone());
    let actix = ActixApp::start(move || async move { app(for_app.0, for_app.1, Key::generate()) });
    let w = crate::harness::World {
        app: actix,
        passlock,
        clock,
    };

    // Saving the new session fails: the flow's answer is replaced, no
    // cookie is issued.
    store.broken.store(true, Ordering::SeqCst);
    let mut c = w.client();
    let mut device = crate::harness::authenticator();
    let (proof, _) = c
        .registration_ceremony(&mut device, serde_json::json!({ "username": "alice" }))
        .await;
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    r.assert_error(503, "session_unavailable");
    assert!(!r.text.contains(MARKER), "{r:?}");
    assert!(r.header("set-cookie").is_none(), "no session issued: {r:?}");

    // A session exists, then the store goes down: loading fails everywhere.
    store.broken.store(false, Ordering::SeqCst);
    let r = c.login(&mut device).await;
    assert_eq!(r.status, 200, "{r:?}");
    let cookie = r
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && !v.starts_with("passlock_signup="))
        .map(|(_, v)| v.split(';').next().unwrap().to_owned())
        .unwrap();
    let actix = &w.app;
    store.broken.store(true, Ordering::SeqCst);
    for (method, path) in [
        ("GET", "/passkey/session"),
        ("GET", "/app/me"),
        ("GET", "/app/maybe"),
        ("POST", "/app/sensitive"),
        ("POST", "/passkey/logout"),
        ("POST", "/passkey/login"),
    ] {
        let r = actix.send(request(method, path, Some(&cookie))).await;
        r.assert_error(503, "session_unavailable");
        assert!(!r.text.contains(MARKER), "{path}: {r:?}");
        assert!(r.header("set-cookie").is_none(), "{path}: {r:?}");
    }
    store.broken.store(false, Ordering::SeqCst);
    let r = actix
        .send(request("GET", "/passkey/session", Some(&cookie)))
        .await;
    assert_eq!(r.status, 200, "the session outlived the outage: {r:?}");
}

#[tokio::test]
async fn missing_session_middleware_is_a_json_500() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let actix = ActixApp::start(move || async move { App::new().configure(routes(passlock)) });
    for (method, path) in [
        ("GET", "/passkey/session"),
        ("GET", "/app/me"),
        ("GET", "/app/maybe"),
        ("GET", "/app/admin"),
        ("POST", "/app/sensitive"),
        ("POST", "/passkey/login"),
    ] {
        let r = actix.send(request(method, path, None)).await;
        r.assert_error(500, "misconfigured");
        assert!(
            r.json["message"]
                .as_str()
                .unwrap()
                .contains("PasslockSessions"),
            "{path}: {r:?}"
        );
    }
}

#[tokio::test]
async fn missing_passlock_data_is_a_json_500() {
    async fn sensitive(_: StepUp<60>, _: PasskeyUser<i64>) -> HttpResponse {
        HttpResponse::Ok().finish()
    }
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let store = SwitchStore::default();
    let actix = ActixApp::start(move || async move {
        let sessions = passlock_actix::PasslockSessions::new(store, Key::generate(), &passlock);
        App::new()
            .route("/app/sensitive", web::post().to(sensitive))
            .wrap(sessions)
    });
    let r = actix.send(request("POST", "/app/sensitive", None)).await;
    r.assert_error(500, "misconfigured");
    assert!(
        r.json["message"].as_str().unwrap().contains("app_data"),
        "{r:?}"
    );
}

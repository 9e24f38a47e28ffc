//! Benchmark helper for `scripts/bench-http`; not part of the library.
//!
//! Builds the axum router with the embedded provider on memory stores and
//! the tower-sessions memory store, with `GET /guarded` behind
//! [`PasskeyUser`] and `GET /bare` answering the same body with no guard
//! (both behind the session layer). It signs a user up in-process with the
//! software authenticator (a real ceremony), then serves on
//! `127.0.0.1:0` and prints one line: `PORT COOKIE SESSION_RECORD_BYTES
//! SESSION_BYTES`. `GET /shutdown` stops it (so profilers see a clean
//! exit).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use passlock_axum::PasskeyUser;
use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::testing::authenticator::SoftAuthenticator;
use passlock_core::{Passlock, SessionRecord, SignUpError, SignUpHook};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_sessions::session::Id;
use tower_sessions::{MemoryStore, SessionManagerLayer, SessionStore};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ORIGIN: &str = "http://localhost:3000";

#[derive(Debug, Default)]
struct Users(AtomicI64);

#[async_trait::async_trait]
impl SignUpHook<i64> for Users {
    async fn create_user(&self, _username: &str) -> Result<i64, SignUpError> {
        Ok(self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
    async fn abandon_user(&self, _user: &i64) -> Result<(), SignUpError> {
        Ok(())
    }
}

async fn send(
    app: &Router,
    cookie: &mut Option<String>,
    path: &str,
    body: Value,
) -> Result<Value, BoxError> {
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header("origin", ORIGIN)
        .header("content-type", "application/json");
    if let Some(c) = cookie.as_deref() {
        req = req.header("cookie", c);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string()))?)
        .await?;
    if let Some(set) = res.headers().get("set-cookie") {
        let set = set.to_str()?;
        *cookie = set.split(';').next().map(str::to_owned);
    }
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await?;
    if !status.is_success() {
        return Err(format!("{path}: {status}").into());
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let provider =
        EmbeddedProvider::in_memory(EmbeddedConfig::new("localhost", "bench", [ORIGIN])).await?;
    let passlock: Passlock<i64> = Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .origins([ORIGIN])
    .sign_up(Arc::new(Users::default()))
    .build()?;
    let sessions = MemoryStore::default();
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let stop = shutdown.clone();
    let app = Router::new()
        .route(
            "/guarded",
            get(|user: PasskeyUser<i64>| async move { format!("user {}", user.user_id) }),
        )
        .route("/bare", get(|| async { format!("user {}", 1) }))
        .route(
            "/shutdown",
            get(move || async move {
                stop.notify_one();
                "bye"
            }),
        )
        .merge(passlock_axum::router(passlock.clone()))
        .with_state(passlock.clone())
        .layer(
            SessionManagerLayer::new(sessions.clone())
                .with_secure(passlock.secure_cookies())
                .with_http_only(true),
        );

    // A real sign-up with the software authenticator.
    let mut cookie = None;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let a = send(
        &app,
        &mut cookie,
        "/passkey/registration/authorize",
        json!({ "username": "alice" }),
    )
    .await?;
    let base = format!(
        "{}/v2/{}/passkey",
        a["endpoint"].as_str().unwrap_or_default(),
        a["tenancyId"].as_str().unwrap_or_default()
    );
    let o = send(
        &app,
        &mut cookie,
        &format!("{base}/registration/options"),
        json!({ "registrationToken": a["registrationToken"] }),
    )
    .await?;
    let response = auth.create(&o["optionsJSON"]).await?;
    let v = send(
        &app,
        &mut cookie,
        &format!("{base}/registration/verification"),
        json!({ "response": response, "sessionToken": o["sessionToken"] }),
    )
    .await?;
    send(
        &app,
        &mut cookie,
        "/passkey/register",
        json!({ "code": v["code"] }),
    )
    .await?;
    let cookie = cookie.ok_or("no session cookie")?;

    // What the session holds.
    let id: Id = cookie
        .split_once('=')
        .map(|(_, v)| v)
        .ok_or("bad cookie")?
        .parse()?;
    let record = sessions.load(&id).await?.ok_or("no session")?;
    let passlock_record = record
        .data
        .get(SessionRecord::<i64>::KEY)
        .ok_or("no passlock record")?;
    // passlock-axum keeps the record as one JSON string.
    let json = passlock_record
        .as_str()
        .ok_or("the record is not a string")?;
    let typed: SessionRecord<i64> = serde_json::from_str(json)?;
    assert!(typed.auth.is_some(), "not signed in");
    let record_bytes = json.len();
    let session_bytes = serde_json::to_vec(&record)?.len();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    println!("{port} {cookie} {record_bytes} {session_bytes}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.notified().await })
        .await?;
    Ok(())
}

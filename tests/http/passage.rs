//! Passage Passkey Flex through passlock-axum against FakePassage: a
//! passkey sign-up and a step-up with `{"nonce"}` bodies, and MFA (the
//! app's own first factor, then a Passage passkey as the second one).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::routing::{get, post};
use passlock_axum::passlock_core::clock::ManualClock;
use passlock_axum::{PasskeyUser, PasslockRejection, PasslockSession, StepUp};
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::testing::fake_passage::FakePassage;
use passlock_core::{AuthState, Passlock, SessionChange, SessionRecord};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_sessions::cookie::SameSite;
use tower_sessions::{MemoryStore, SessionManagerLayer};

use crate::harness::{self, Client, MemoryUsers, ORIGIN, Reply, TestApp, TestRequest};

#[derive(Clone)]
struct PassageApp(Router);

impl TestApp for PassageApp {
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

async fn sensitive(_: StepUp<60>, user: PasskeyUser<i64>) -> axum::Json<Value> {
    axum::Json(json!({ "done": true, "user_id": user.user_id }))
}

/// The app's own first factor (a password check in a real app): signs
/// `user_id` in partially; a passkey step-up completes it.
async fn password_login(
    State(passlock): State<Passlock<i64>>,
    session: PasslockSession<i64>,
    axum::Json(body): axum::Json<Value>,
) -> Result<axum::Json<Value>, PasslockRejection> {
    let user = body["user_id"].as_i64().unwrap();
    let record = SessionRecord {
        auth: Some(AuthState::first_factor(user, "password", passlock.now())),
        pending: None,
    };
    session
        .apply(SessionChange::Set {
            record,
            renew: true,
        })
        .await?;
    Ok(axum::Json(json!({ "first_factor": user })))
}

struct World {
    w: harness::World<PassageApp>,
    fake: FakePassage,
}

async fn world() -> World {
    let clock = ManualClock::new(1_800_000_000_000);
    let fake = FakePassage::start_with_clock(Arc::new(clock.clone()))
        .await
        .unwrap();
    let passlock = Passlock::builder(
        Arc::new(fake.provider().unwrap()),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .clock(Arc::new(clock.clone()))
    .origins([ORIGIN])
    .build()
    .unwrap();
    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_secure(passlock.secure_cookies())
        .with_http_only(true)
        .with_same_site(SameSite::Lax);
    let router = Router::new()
        .route("/app/me", get(me))
        .route("/app/sensitive", post(sensitive))
        .route("/app/password-login", post(password_login))
        .merge(passlock_axum::router(passlock.clone()))
        .with_state(passlock.clone())
        .layer(sessions);
    World {
        w: harness::World {
            app: PassageApp(router),
            passlock,
            clock,
        },
        fake,
    }
}

impl World {
    fn client(&self) -> Client<'_, PassageApp> {
        self.w.client()
    }

    async fn links(&self, user: i64) -> Vec<String> {
        self.w.links(user).await
    }
}

/// Authorizes a registration with `body`, completes the Passage transaction
/// as the browser would and answers the nonce.
async fn registration_nonce(w: &World, c: &mut Client<'_, PassageApp>, body: Value) -> String {
    let answer = c.post("/passkey/registration/authorize", body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json["endpoint"], w.fake.endpoint());
    assert_eq!(answer.json["tenancyId"], w.fake.app_id().as_str());
    let tx = answer.json["registrationToken"].as_str().unwrap();
    w.fake.complete(tx).unwrap().expose_secret().to_owned()
}

async fn step_up_nonce(w: &World, c: &mut Client<'_, PassageApp>) -> String {
    let answer = c
        .post(
            "/passkey/authentication/authorize",
            json!({ "purpose": "step_up" }),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let tx = answer.json["authenticationToken"].as_str().unwrap();
    w.fake.complete(tx).unwrap().expose_secret().to_owned()
}

#[tokio::test]
async fn passkey_sign_up_then_step_up_with_nonces() {
    let w = world().await;
    let mut c = w.client();
    let nonce = registration_nonce(&w, &mut c, json!({ "username": "alice" })).await;
    let r = c.post("/passkey/register", json!({ "nonce": nonce })).await;
    assert_eq!(r.status, 201, "{r:?}");
    let user: i64 = r.json["user_id"].as_str().unwrap().parse().unwrap();
    let aid = r.json["authenticator_id"].as_str().unwrap().to_owned();
    assert!(aid.starts_with("passage:"), "{aid}");
    assert_eq!(w.links(user).await, std::slice::from_ref(&aid));
    assert_eq!(c.get("/app/me").await.json["user_id"], user);
    // The same nonce again: the pending sign-up is gone, so it never
    // reaches Passage.
    let again = c.post("/passkey/register", json!({ "nonce": nonce })).await;
    assert_eq!(again.status, 401, "{again:?}");

    // Step-up with a Passage authenticate transaction for that user.
    let nonce = step_up_nonce(&w, &mut c).await;
    let r = c.post("/passkey/step-up", json!({ "nonce": nonce })).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["authenticator_id"], aid.as_str());
    assert_eq!(c.post("/app/sensitive", json!({})).await.json["done"], true);
    let replay = c.post("/passkey/step-up", json!({ "nonce": nonce })).await;
    replay.assert_error(401, "invalid_token");
    // Sign-up, step-up and the refused replay.
    assert_eq!(w.fake.hits("verify_nonce"), 3);

    // A code is not a Passage proof.
    c.post("/passkey/step-up", json!({ "code": "abc" }))
        .await
        .assert_error(400, "malformed_proof");

    // Usernameless login is not offered by Passage Flex.
    let mut anon = w.client();
    anon.post("/passkey/authentication/authorize", json!({}))
        .await
        .assert_error(404, "unsupported");

    // The last passkey of an account is kept.
    c.delete(&format!("/passkey/passkeys/{aid}"))
        .await
        .assert_error(409, "last_authenticator");
    // A second passkey, added while signed in: its external id is the app
    // user's id, so it is a second Passage user and a second link.
    let nonce = registration_nonce(&w, &mut c, json!({})).await;
    let r = c.post("/passkey/register", json!({ "nonce": nonce })).await;
    assert_eq!(r.status, 201, "{r:?}");
    let second = format!("passage:{user}");
    assert_eq!(r.json["authenticator_id"], second.as_str());
    let mut links = w.links(user).await;
    links.sort();
    let mut want = vec![aid.clone(), second.clone()];
    want.sort();
    assert_eq!(links, want);

    // Deleting the first revokes every device of its Passage user.
    let external = aid.strip_prefix("passage:").unwrap();
    assert_eq!(w.fake.devices_of(external).len(), 1);
    let d = c.delete(&format!("/passkey/passkeys/{aid}")).await;
    assert!(d.status < 300, "{d:?}");
    assert_eq!(w.links(user).await, [second]);
    assert!(w.fake.devices_of(external).is_empty());
    assert_eq!(w.fake.devices_of(&user.to_string()).len(), 1);
}

#[tokio::test]
async fn mfa_first_factor_then_passage_passkey() {
    let w = world().await;
    let user = 4242_i64;
    let mut c = w.client();
    let r = c
        .post("/app/password-login", json!({ "user_id": user }))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // The first factor alone is not a passkey session.
    assert_eq!(c.get("/app/me").await.json["user_id"], Value::Null);

    // Enrol a Passage passkey for the signed-in user: the external id is
    // the app user's id.
    let nonce = registration_nonce(&w, &mut c, json!({})).await;
    let r = c.post("/passkey/register", json!({ "nonce": nonce })).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json["authenticator_id"], format!("passage:{user}"));
    assert_eq!(w.fake.devices_of(&user.to_string()).len(), 1);

    // Next visit: the first factor, then the passkey as the second.
    let mut c = w.client();
    c.post("/app/password-login", json!({ "user_id": user }))
        .await;
    assert_eq!(c.get("/app/me").await.json["user_id"], Value::Null);
    let nonce = step_up_nonce(&w, &mut c).await;
    let r = c.post("/passkey/step-up", json!({ "nonce": nonce })).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.get("/app/me").await.json["user_id"], user);
    assert_eq!(c.post("/app/sensitive", json!({})).await.json["done"], true);

    // Another user's first factor cannot use this user's passkey.
    let mut other = w.client();
    other
        .post("/app/password-login", json!({ "user_id": 7 }))
        .await;
    other
        .post(
            "/passkey/authentication/authorize",
            json!({ "purpose": "step_up" }),
        )
        .await
        .assert_error(401, "unknown_authenticator");
}

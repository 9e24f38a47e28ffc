//! Passage Passkey Flex through both adapters against FakePassage: a
//! passkey sign-up and a step-up with `{"nonce"}` bodies, and MFA (the
//! app's own first factor, then a Passage passkey as the second one).
//!
//! Each app mounts the passlock routes at `/passkey` plus `GET /app/me`,
//! `POST /app/sensitive` (as in the HTTP scenarios) and
//! `POST /app/password-login {"user_id": n}` (the app's own first factor:
//! a partial sign-in a passkey step-up completes).

use std::sync::Arc;

use passlock_core::clock::ManualClock;
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::{AuthState, Passlock, SessionChange, SessionRecord};
use passlock_test::fake_passage::FakePassage;
use serde_json::{Value, json};

use crate::harness::{self, Client, MemoryUsers, ORIGIN, TestApp};

/// What the app's first factor stores for `user`: a partial sign-in.
fn first_factor(passlock: &Passlock<i64>, user: i64) -> SessionChange<i64> {
    SessionChange::Set {
        record: SessionRecord::signed_in(AuthState::first_factor(user, "password", passlock.now())),
        renew: true,
    }
}

/// A passlock on FakePassage (memory links) and the fake.
async fn passage_passlock(clock: &ManualClock) -> (Passlock<i64>, FakePassage) {
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
    (passlock, fake)
}

pub(crate) struct World<A> {
    w: harness::World<A>,
    fake: FakePassage,
}

impl<A: TestApp> World<A> {
    fn client(&self) -> Client<'_, A> {
        self.w.client()
    }

    async fn links(&self, user: i64) -> Vec<String> {
        self.w.links(user).await
    }
}

/// The Passage app on passlock-axum.
mod on_axum {
    use axum::Router;
    use axum::extract::State;
    use axum::routing::{get, post};
    use passlock_axum::{PasskeyUser, PasslockRejection, PasslockSession, StepUp};
    use passlock_core::Passlock;
    use passlock_core::clock::ManualClock;
    use serde_json::{Value, json};
    use tower_sessions::cookie::SameSite;
    use tower_sessions::{MemoryStore, SessionManagerLayer};

    use crate::axum::AxumApp;
    use crate::harness;

    async fn me(user: Option<PasskeyUser<i64>>) -> axum::Json<Value> {
        axum::Json(json!({ "user_id": user.map(|u| u.user_id) }))
    }

    async fn sensitive(_: StepUp<60>, user: PasskeyUser<i64>) -> axum::Json<Value> {
        axum::Json(json!({ "done": true, "user_id": user.user_id }))
    }

    async fn password_login(
        State(passlock): State<Passlock<i64>>,
        session: PasslockSession<i64>,
        axum::Json(body): axum::Json<Value>,
    ) -> Result<axum::Json<Value>, PasslockRejection> {
        let user = body["user_id"].as_i64().unwrap();
        session.apply(super::first_factor(&passlock, user)).await?;
        Ok(axum::Json(json!({ "first_factor": user })))
    }

    async fn world() -> super::World<AxumApp> {
        let clock = ManualClock::new(1_800_000_000_000);
        let (passlock, fake) = super::passage_passlock(&clock).await;
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
        super::World {
            w: harness::World {
                app: AxumApp(router),
                passlock,
                clock,
            },
            fake,
        }
    }

    crate::passage_scenarios!(world);
}

/// The Passage app on passlock-actix (sessions in a `SqlSessionStore` on
/// in-memory SQLite).
mod on_actix {
    use actix_web::cookie::Key;
    use actix_web::{App, HttpResponse, web};
    use passlock_actix::{
        MaybePasskeyUser, PasskeyUser, PasslockError, PasslockSession, PasslockSessions,
        SqlSessionStore, StepUp,
    };
    use passlock_core::Passlock;
    use passlock_core::clock::ManualClock;
    use serde_json::{Value, json};

    use crate::actix::ActixApp;
    use crate::harness;

    async fn me(MaybePasskeyUser(user): MaybePasskeyUser<i64>) -> HttpResponse {
        HttpResponse::Ok().json(json!({ "user_id": user.map(|u| u.user_id) }))
    }

    async fn sensitive(_: StepUp<60>, user: PasskeyUser<i64>) -> HttpResponse {
        HttpResponse::Ok().json(json!({ "done": true, "user_id": user.user_id }))
    }

    async fn password_login(
        passlock: web::Data<Passlock<i64>>,
        session: PasslockSession<i64>,
        body: web::Json<Value>,
    ) -> Result<HttpResponse, PasslockError> {
        let user = body["user_id"].as_i64().unwrap();
        session.apply(super::first_factor(&passlock, user))?;
        Ok(HttpResponse::Ok().json(json!({ "first_factor": user })))
    }

    async fn world() -> super::World<ActixApp> {
        let clock = ManualClock::new(1_800_000_000_000);
        let (passlock, fake) = super::passage_passlock(&clock).await;
        let for_app = passlock.clone();
        let app = ActixApp::start(move || async move {
            let store = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
            store.migrate().await.unwrap();
            let sessions = PasslockSessions::new(store, Key::generate(), &for_app);
            App::new()
                .app_data(web::Data::new(for_app.clone()))
                .route("/app/me", web::get().to(me))
                .route("/app/sensitive", web::post().to(sensitive))
                .route("/app/password-login", web::post().to(password_login))
                .service(passlock_actix::scope(for_app))
                .wrap(sessions)
        });
        super::World {
            w: harness::World {
                app,
                passlock,
                clock,
            },
            fake,
        }
    }

    crate::passage_scenarios!(world);
}

/// Instantiates the Passage scenarios for one adapter, given a function
/// returning a fresh `passage::World<impl TestApp>`.
#[macro_export]
macro_rules! passage_scenarios {
    ($world:path) => {
        $crate::passage_scenarios!(@each $world;
            passkey_sign_up_then_step_up_with_nonces,
            mfa_first_factor_then_passage_passkey,
            passage_429_answers_503_with_its_retry_after,
        );
    };
    (@each $world:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::passage::$name($world().await).await;
            }
        )*
    };
}

/// Authorizes a registration with `body`, completes the Passage transaction
/// as the browser would and answers the nonce.
async fn registration_nonce<A: TestApp>(
    w: &World<A>,
    c: &mut Client<'_, A>,
    body: Value,
) -> String {
    let answer = c.post("/passkey/registration/authorize", body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json["endpoint"], w.fake.endpoint());
    assert_eq!(answer.json["tenancyId"], w.fake.app_id().as_str());
    let tx = answer.json["registrationToken"].as_str().unwrap();
    w.fake.complete(tx).unwrap().expose_secret().to_owned()
}

async fn step_up_nonce<A: TestApp>(w: &World<A>, c: &mut Client<'_, A>) -> String {
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

/// A Passage `429` answers `503 upstream_unavailable` JSON with its
/// `Retry-After` (the cases of the hosted Passlock test), on an authorize
/// route and on `/register`, and signs nobody up.
pub(crate) async fn passage_429_answers_503_with_its_retry_after<A: TestApp>(w: World<A>) {
    use passlock_test::fake_passage::Fault;
    w.w.clock.set_millis(crate::hardening::RETRY_AFTER_NOW_MS);
    for (sent, expected) in crate::hardening::RETRY_AFTER_CASES {
        let mut c = w.client();
        let nonce = registration_nonce(&w, &mut c, json!({ "username": "bob" })).await;
        w.fake
            .set_fault(Fault::TooManyRequests(sent.map(str::to_owned)));
        let r = c.post("/passkey/register", json!({ "nonce": nonce })).await;
        r.assert_error(503, "upstream_unavailable");
        assert_eq!(r.header("retry-after"), expected, "{sent:?}: {r:?}");
        let r = c
            .post(
                "/passkey/registration/authorize",
                json!({ "username": "bob" }),
            )
            .await;
        r.assert_error(503, "upstream_unavailable");
        assert_eq!(r.header("retry-after"), expected, "{sent:?}: {r:?}");
        w.fake.set_fault(Fault::None);
        assert_eq!(c.session_user().await, None, "{sent:?} signed up");
    }
}

/// A Passage passkey sign-up, then a step-up; replays, codes and
/// usernameless log-in refused; the last passkey kept.
pub(crate) async fn passkey_sign_up_then_step_up_with_nonces<A: TestApp>(w: World<A>) {
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
    // A second passkey, added while signed in, is created for the same
    // Passage user (the session keeps the external id it proved): one
    // account stays one Passage user, so the link does not change and
    // Passage holds a second device for it.
    let external = aid.strip_prefix("passage:").unwrap().to_owned();
    assert_eq!(w.fake.devices_of(&external).len(), 1);
    let nonce = registration_nonce(&w, &mut c, json!({})).await;
    let r = c.post("/passkey/register", json!({ "nonce": nonce })).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json["authenticator_id"], aid.as_str());
    assert_eq!(w.links(user).await, std::slice::from_ref(&aid));
    assert_eq!(w.fake.devices_of(&external).len(), 2);
    assert!(w.fake.devices_of(&user.to_string()).is_empty());

    // Still the only link of the account: kept.
    c.delete(&format!("/passkey/passkeys/{aid}"))
        .await
        .assert_error(409, "last_authenticator");
    assert_eq!(w.fake.devices_of(&external).len(), 2);
}

/// The app's first factor, then a Passage passkey enrolled and used as the
/// second; another user's first factor cannot use it.
pub(crate) async fn mfa_first_factor_then_passage_passkey<A: TestApp>(w: World<A>) {
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

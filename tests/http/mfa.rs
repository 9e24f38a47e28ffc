//! Passkeys as a second factor, on both adapters: the app records its own
//! first factor (a password, simulated: the test app trusts the posted user
//! id), a passkey step-up by the same user completes it, and the extractors
//! (`FirstFactorUser`, `SignedInUser`, `PasskeyUser`, `StepUp`) see each
//! state as documented on `Policy::passkey_required_as_second_factor`.
//!
//! Test app contract (on top of the passlock routes at `/passkey`):
//! `POST /app/first-factor {"user_id": n}` (`record_first_factor`, method
//! `"password"`), `GET /app/half` (`FirstFactorUser`: `{"user_id","partial"}`),
//! `GET /app/signed-in` (`SignedInUser`), `GET /app/passkey-user`
//! (`PasskeyUser`), `POST /app/sensitive` (`StepUp<60>` + `PasskeyUser`).

use std::sync::Arc;

use passlock_core::clock::ManualClock;
use passlock_core::clock::UnixMillis;
use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
use passlock_core::store::{LinkedAuthenticator, MemoryAuthenticatorStore};
use passlock_core::{AuthenticatorId, AuthenticatorStore, Passlock, Policy, StoreError};
use serde_json::{Value, json};

use crate::harness::{Client, MemoryUsers, ORIGIN, TestApp, World, authenticator};

/// The user whose passkey links cannot be read: the store is down for them.
const UNREADABLE: i64 = 666;

/// A memory store that fails every read of [`UNREADABLE`]'s passkeys.
#[derive(Debug, Default)]
struct Flaky(MemoryAuthenticatorStore<i64>);

#[async_trait::async_trait]
impl AuthenticatorStore<i64> for Flaky {
    async fn link(
        &self,
        a: &AuthenticatorId,
        user: &i64,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        self.0.link(a, user, now).await
    }

    async fn user_of(&self, a: &AuthenticatorId) -> Result<Option<i64>, StoreError> {
        self.0.user_of(a).await
    }

    async fn authenticators_of(&self, user: &i64) -> Result<Vec<LinkedAuthenticator>, StoreError> {
        if *user == UNREADABLE {
            return Err(StoreError::backend("the store is down"));
        }
        self.0.authenticators_of(user).await
    }

    async fn unlink(&self, a: &AuthenticatorId, user: &i64) -> Result<bool, StoreError> {
        self.0.unlink(a, user).await
    }

    async fn touch(&self, a: &AuthenticatorId, now: UnixMillis) -> Result<(), StoreError> {
        self.0.touch(a, now).await
    }
}

/// A passlock on memory stores ([`Flaky`] for links) with
/// `passkey_required_as_second_factor` set to `required`.
async fn passlock(clock: &ManualClock, required: bool) -> Passlock<i64> {
    let provider = EmbeddedProvider::in_memory(
        EmbeddedConfig::new("localhost", "passlock tests", [ORIGIN])
            .with_clock(Arc::new(clock.clone())),
    )
    .await
    .unwrap();
    let mut policy = Policy::default();
    policy.passkey_required_as_second_factor = required;
    Passlock::builder(Arc::new(provider), Arc::new(Flaky::default()))
        .sign_up(Arc::new(MemoryUsers::default()))
        .policy(policy)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

/// Records the password first factor for `user` from a browser that already
/// holds a session (so that the id change is visible); returns the answer.
async fn password<A: TestApp>(c: &mut Client<'_, A>, user: i64) -> Value {
    let r = c
        .post(
            "/passkey/registration/authorize",
            json!({ "username": "x" }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let before = c.cookies();
    let r = c
        .post("/app/first-factor", json!({ "user_id": user }))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], user.to_string());
    assert_ne!(
        c.cookies(),
        before,
        "recording a first factor cycles the id"
    );
    r.json
}

/// Status of each guarded route: (half, signed-in, passkey-user, sensitive).
async fn reach<A: TestApp>(c: &mut Client<'_, A>) -> (u16, u16, u16, u16) {
    (
        c.get("/app/half").await.status,
        c.get("/app/signed-in").await.status,
        c.get("/app/passkey-user").await.status,
        c.post("/app/sensitive", json!({})).await.status,
    )
}

/// Password then passkey: the password alone is a partial state that only
/// `FirstFactorUser` accepts; a step-up by the same user completes it under
/// a new session id.
pub(crate) async fn password_then_passkey_completes_mfa<A: TestApp>(w: World<A>) {
    let mut key = authenticator();
    let (alice, aid) = w.client().sign_up(&mut key, "alice").await;
    let mut c = w.client();
    let answer = password(&mut c, alice).await;
    assert_eq!(answer["second_factor_required"], true);

    let view = c.session_view().await;
    assert_eq!(view["user_id"], alice.to_string());
    assert_eq!(view["second_factor_pending"], true);
    assert_eq!(view["amr"], json!([{ "type": "app", "name": "password" }]));
    let half = c.get("/app/half").await;
    assert_eq!(half.status, 200, "{half:?}");
    assert_eq!(half.json, json!({ "user_id": alice, "partial": true }));
    c.get("/app/signed-in")
        .await
        .assert_error(401, "not_authenticated");
    c.get("/app/passkey-user")
        .await
        .assert_error(401, "not_authenticated");
    c.post("/app/sensitive", json!({}))
        .await
        .assert_error(401, "not_authenticated");
    c.get("/passkey/passkeys")
        .await
        .assert_error(401, "not_authenticated");
    c.post("/passkey/registration/authorize", json!({}))
        .await
        .assert_error(401, "step_up_required");

    let before = c.cookies();
    let r = c.step_up(&mut key).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], alice.to_string());
    assert_ne!(c.cookies(), before, "completing MFA cycles the session id");
    let view = c.session_view().await;
    assert_eq!(view["second_factor_pending"], false);
    assert_eq!(view["authenticator_id"], aid.as_str());
    assert_eq!(
        view["amr"],
        json!([{ "type": "app", "name": "password" }, { "type": "passkey" }])
    );
    assert_eq!(reach(&mut c).await, (200, 200, 200, 200));
    let half = c.get("/app/half").await;
    assert_eq!(half.json, json!({ "user_id": alice, "partial": false }));
}

/// A passkey of another user does not complete the MFA: `403 wrong_user`,
/// and the partial state is exactly as it was.
pub(crate) async fn another_users_passkey_leaves_the_partial_state<A: TestApp>(w: World<A>) {
    let mut alice_key = authenticator();
    let (alice, _) = w.client().sign_up(&mut alice_key, "alice").await;
    let mut bob_key = authenticator();
    let (bob, _) = w.client().sign_up(&mut bob_key, "bob").await;
    let mut c = w.client();
    password(&mut c, alice).await;
    let before_view = c.session_view().await;
    let before_cookies = c.cookies();

    let code = c.authentication_ceremony(&mut bob_key, "login").await;
    let r = c.post("/passkey/step-up", json!({ "code": code })).await;
    r.assert_error(403, "wrong_user");
    assert_eq!(c.cookies(), before_cookies, "no new session on a refusal");
    assert_eq!(c.session_view().await, before_view);
    assert_eq!(reach(&mut c).await, (200, 401, 401, 401));

    // A passkey *login* is a full sign-in of its own user.
    let r = c.login(&mut bob_key).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.session_user().await, Some(bob));
    assert_eq!(c.session_view().await["second_factor_pending"], false);
    assert_eq!(reach(&mut c).await, (200, 200, 200, 200));
}

/// After MFA, the step-up freshness expires on its own clock; the session
/// stays a passkey session, and another step-up renews it.
pub(crate) async fn mfa_step_up_freshness_expires<A: TestApp>(w: World<A>) {
    let mut key = authenticator();
    let (alice, _) = w.client().sign_up(&mut key, "alice").await;
    let mut c = w.client();
    password(&mut c, alice).await;
    w.clock.advance_secs(600);
    assert_eq!(c.step_up(&mut key).await.status, 200);
    w.clock.advance_secs(60);
    assert_eq!(reach(&mut c).await, (200, 200, 200, 200));
    w.clock.advance_secs(1);
    let r = c.post("/app/sensitive", json!({})).await;
    r.assert_error(401, "step_up_required");
    assert_eq!(r.json["max_age"], 60);
    assert_eq!(c.get("/app/passkey-user").await.status, 200);
    assert_eq!(c.step_up(&mut key).await.status, 200);
    assert_eq!(c.post("/app/sensitive", json!({})).await.status, 200);
}

/// A user without a passkey is signed in by the password alone (nothing to
/// ask for), but is no `PasskeyUser`; they may enrol a first passkey, which
/// makes the session a passkey session.
pub(crate) async fn password_user_without_passkey_is_signed_in<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let answer = password(&mut c, 42).await;
    assert_eq!(answer["second_factor_required"], false);
    assert_eq!(c.session_view().await["second_factor_pending"], false);
    assert_eq!(reach(&mut c).await, (200, 200, 401, 401));
    c.post("/app/sensitive", json!({}))
        .await
        .assert_error(401, "step_up_required");
    let list = c.get("/passkey/passkeys").await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.json, json!([]));

    let mut key = authenticator();
    let (code, aid) = c.registration_ceremony(&mut key, json!({})).await;
    let r = c.post("/passkey/register", json!({ "code": code })).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json["user_id"], "42");
    assert_eq!(w.links(42).await, vec![aid]);
    assert_eq!(reach(&mut c).await, (200, 200, 200, 200));

    // From now on the password alone is only a first factor.
    let mut later = w.client();
    let answer = password(&mut later, 42).await;
    assert_eq!(answer["second_factor_required"], true);
    assert_eq!(reach(&mut later).await, (200, 401, 401, 401));
}

/// With the switch off ("password *or* passkey"), the password signs in a
/// user who has a passkey too; passkey-only routes still need a passkey, and
/// a step-up adds it.
pub(crate) async fn switch_off_password_or_passkey<A: TestApp>(w: World<A>) {
    let mut key = authenticator();
    let (alice, _) = w.client().sign_up(&mut key, "alice").await;
    let mut c = w.client();
    let answer = password(&mut c, alice).await;
    assert_eq!(answer["second_factor_required"], false);
    assert_eq!(c.session_view().await["second_factor_pending"], false);
    assert_eq!(reach(&mut c).await, (200, 200, 401, 401));
    let r = c.post("/app/sensitive", json!({})).await;
    r.assert_error(401, "step_up_required");
    let before = c.cookies();
    assert_eq!(c.step_up(&mut key).await.status, 200);
    assert_ne!(c.cookies(), before);
    assert_eq!(reach(&mut c).await, (200, 200, 200, 200));
}

/// Recording a first factor fails closed: when the passkey links cannot be
/// read, the answer is a JSON `503` and the session (id and state) is left
/// as it was.
pub(crate) async fn first_factor_fails_closed_on_a_store_failure<A: TestApp>(w: World<A>) {
    let mut key = authenticator();
    let (alice, _) = w.client().sign_up(&mut key, "alice").await;
    let mut c = w.client();
    password(&mut c, alice).await;
    let before_view = c.session_view().await;
    let before_cookies = c.cookies();
    let r = c
        .post("/app/first-factor", json!({ "user_id": UNREADABLE }))
        .await;
    r.assert_error(503, "store_unavailable");
    assert!(!r.text.contains("down"), "a backend detail leaked: {r:?}");
    assert_eq!(c.cookies(), before_cookies);
    assert_eq!(c.session_view().await, before_view);
}

/// Instantiates the MFA scenarios for an adapter: `$on` builds a world with
/// the switch on, `$off` with it off.
#[macro_export]
macro_rules! mfa_scenarios {
    ($on:path, $off:path) => {
        $crate::mfa_scenarios!(@each $on;
            password_then_passkey_completes_mfa,
            another_users_passkey_leaves_the_partial_state,
            mfa_step_up_freshness_expires,
            password_user_without_passkey_is_signed_in,
            first_factor_fails_closed_on_a_store_failure,
        );
        $crate::mfa_scenarios!(@each $off; switch_off_password_or_passkey);
    };
    (@each $world:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::mfa::$name($world().await).await;
            }
        )*
    };
}

/// The MFA test app on passlock-axum.
mod on_axum {
    use axum::extract::State;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use passlock_axum::{
        FirstFactorUser, PasskeyUser, PasslockRejection, PasslockSession, SignedInUser, StepUp,
    };
    use passlock_core::FirstFactor;
    use passlock_core::Passlock;
    use passlock_core::clock::ManualClock;
    use serde_json::{Value, json};
    use tower_sessions::{MemoryStore, SessionManagerLayer};

    use crate::axum::AxumApp;
    use crate::harness::World;

    async fn first_factor(
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

    async fn half(user: FirstFactorUser<i64>) -> Json<Value> {
        Json(json!({ "user_id": user.user_id, "partial": user.is_partial() }))
    }

    async fn signed_in(user: SignedInUser<i64>) -> Json<Value> {
        Json(json!({ "user_id": user.user_id }))
    }

    async fn passkey_user(user: PasskeyUser<i64>) -> Json<Value> {
        Json(json!({ "user_id": user.user_id }))
    }

    async fn sensitive(_: StepUp<60>, user: PasskeyUser<i64>) -> Json<Value> {
        Json(json!({ "done": true, "user_id": user.user_id }))
    }

    async fn world(required: bool) -> World<AxumApp> {
        let clock = ManualClock::starting_now();
        let passlock = super::passlock(&clock, required).await;
        let app = Router::new()
            .route("/app/first-factor", post(first_factor))
            .route("/app/half", get(half))
            .route("/app/signed-in", get(signed_in))
            .route("/app/passkey-user", get(passkey_user))
            .route("/app/sensitive", post(sensitive))
            .merge(passlock_axum::router(passlock.clone()))
            .with_state(passlock.clone())
            .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false));
        World {
            app: AxumApp(app),
            passlock,
            clock,
        }
    }

    async fn on() -> World<AxumApp> {
        world(true).await
    }

    async fn off() -> World<AxumApp> {
        world(false).await
    }

    crate::mfa_scenarios!(on, off);
}

/// The MFA test app on passlock-actix (sessions in a `SqlSessionStore` on
/// in-memory SQLite).
mod on_actix {
    use actix_web::cookie::Key;
    use actix_web::{App, HttpResponse, web};
    use passlock_actix::{
        FirstFactorUser, PasskeyUser, PasslockError, PasslockSession, PasslockSessions,
        SignedInUser, SqlSessionStore, StepUp,
    };
    use passlock_core::Passlock;
    use passlock_core::clock::ManualClock;
    use serde_json::{Value, json};

    use crate::actix::ActixApp;
    use crate::harness::World;

    async fn first_factor(
        passlock: web::Data<Passlock<i64>>,
        session: PasslockSession<i64>,
        body: web::Json<Value>,
    ) -> Result<HttpResponse, PasslockError> {
        let user = body["user_id"].as_i64().unwrap();
        let recorded = session
            .record_first_factor(&passlock, user, "password")
            .await?;
        Ok(HttpResponse::Ok().json(recorded))
    }

    async fn half(user: FirstFactorUser<i64>) -> HttpResponse {
        HttpResponse::Ok().json(json!({ "user_id": user.user_id, "partial": user.is_partial() }))
    }

    async fn signed_in(user: SignedInUser<i64>) -> HttpResponse {
        HttpResponse::Ok().json(json!({ "user_id": user.user_id }))
    }

    async fn passkey_user(user: PasskeyUser<i64>) -> HttpResponse {
        HttpResponse::Ok().json(json!({ "user_id": user.user_id }))
    }

    async fn sensitive(_: StepUp<60>, user: PasskeyUser<i64>) -> HttpResponse {
        HttpResponse::Ok().json(json!({ "done": true, "user_id": user.user_id }))
    }

    async fn world(required: bool) -> World<ActixApp> {
        let clock = ManualClock::starting_now();
        let passlock = super::passlock(&clock, required).await;
        let for_app = passlock.clone();
        let app = ActixApp::start(move || async move {
            let store = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
            store.migrate().await.unwrap();
            let sessions = PasslockSessions::new(store, Key::generate(), &for_app);
            App::new()
                .app_data(web::Data::new(for_app.clone()))
                .route("/app/first-factor", web::post().to(first_factor))
                .route("/app/half", web::get().to(half))
                .route("/app/signed-in", web::get().to(signed_in))
                .route("/app/passkey-user", web::get().to(passkey_user))
                .route("/app/sensitive", web::post().to(sensitive))
                .service(passlock_actix::scope(for_app))
                .wrap(sessions)
        });
        World {
            app,
            passlock,
            clock,
        }
    }

    async fn on() -> World<ActixApp> {
        world(true).await
    }

    async fn off() -> World<ActixApp> {
        world(false).await
    }

    crate::mfa_scenarios!(on, off);
}

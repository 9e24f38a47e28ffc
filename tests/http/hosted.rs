//! The scenarios on passlock-axum with the hosted provider: a `Passlock`
//! over [`PasslockHosted`] pointed at a [`FakePasslock`], the browser side
//! running its ceremonies against the fake's browser-facing routes (the
//! `endpoint`/`tenancyId` the authorize answers name) and handing the app
//! either the code or the id_token. Plus the refusals only a remote
//! provider has (codes and id_tokens replayed or expired) and a failing
//! upstream seen through the adapter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use passlock_core::Passlock;
use passlock_core::clock::{Clock, ManualClock};
use passlock_core::http::HttpConfig;
use passlock_core::provider::passlock::PasslockHosted;
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_test::fake_passlock::{FakePasslock, Fault};
use serde_json::json;
use tower_sessions::MemoryStore;

use crate::axum::{AxumApp, app};
use crate::harness::{
    MemoryUsers, ORIGIN, ProofKind, Reply, TestApp, TestRequest, World, authenticator, service_base,
};

/// The axum app on a hosted passlock, with the fake it talks to.
pub(crate) struct HostedApp {
    app: AxumApp,
    fake: FakePasslock,
    proof: ProofKind,
}

impl TestApp for HostedApp {
    async fn send(&self, req: TestRequest) -> Reply {
        self.app.send(req).await
    }

    fn proof_kind(&self) -> ProofKind {
        self.proof
    }
}

/// A passlock over `provider`, memory links and users, on `clock`.
fn passlock_over(provider: PasslockHosted, clock: &ManualClock) -> Passlock<i64> {
    Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .clock(Arc::new(clock.clone()))
    .origins([ORIGIN])
    .build()
    .unwrap()
}

/// A world whose app and fake share one manual clock; the fake's HTTP
/// client settings are `http`.
async fn hosted_world_with(proof: ProofKind, http: HttpConfig) -> World<HostedApp> {
    let clock = ManualClock::starting_now();
    let fake = FakePasslock::start_with_clock(Arc::new(clock.clone()))
        .await
        .unwrap();
    let provider = PasslockHosted::new(
        fake.client_config().with_http(http),
        "localhost",
        "passlock tests",
        Arc::new(clock.clone()),
    )
    .unwrap();
    let passlock = passlock_over(provider, &clock);
    World {
        app: HostedApp {
            app: AxumApp(app(passlock.clone(), MemoryStore::default())),
            fake,
            proof,
        },
        passlock,
        clock,
    }
}

async fn code_world() -> World<HostedApp> {
    hosted_world_with(ProofKind::Code, HttpConfig::default()).await
}

async fn id_token_world() -> World<HostedApp> {
    hosted_world_with(ProofKind::IdToken, HttpConfig::default()).await
}

/// Every scenario but `client_js_is_served` (which expects the embedded
/// JWKS route; see `client_js_is_served_without_embedded_routes`).
macro_rules! hosted_scenarios {
    ($world:path) => {
        $crate::http_scenarios!(@each $world;
            sign_up_links_the_passkey_and_signs_in,
            logout_deletes_the_session_server_side,
            usernameless_login_issues_a_fresh_session,
            step_up_then_add_and_delete_a_passkey,
            signed_out_requests_are_refused,
            expired_registration_is_refused,
            login_rejects_unknown_authenticator,
            step_up_rejects_another_users_passkey,
            registration_code_cannot_be_replayed,
            malformed_requests_are_refused_as_json,
            one_ceremony_redeems_once,
        );
    };
}

mod code_scenarios {
    hosted_scenarios!(super::code_world);
}

mod id_token_scenarios {
    hosted_scenarios!(super::id_token_world);
}

/// The browser really ran its ceremonies against the fake.
#[tokio::test]
async fn ceremonies_run_against_the_hosted_service() {
    for world in [code_world().await, id_token_world().await] {
        let mut c = world.client();
        let mut auth = authenticator();
        let (user, aid) = c.sign_up(&mut auth, "alice").await;
        let fake = &world.app.fake;
        assert!(fake.has_passkey(&aid), "the vault holds the new passkey");
        assert_eq!(fake.passkey_username(&aid).as_deref(), Some("alice"));
        let r = world.client().login(&mut auth).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json["user_id"], user.to_string());
        assert_eq!(fake.hits("authorize_registration"), 1);
        assert_eq!(fake.hits("registration_verification"), 1);
        assert_eq!(fake.hits("authorize_authentication"), 1);
        assert_eq!(fake.hits("authentication_verification"), 1);
        match world.app.proof {
            // Codes are exchanged server-side; id_tokens verified locally.
            ProofKind::Code => {
                assert_eq!(fake.hits("principal"), 2);
                assert_eq!(fake.hits("jwks"), 0);
            }
            ProofKind::IdToken => {
                assert_eq!(fake.hits("principal"), 0);
                assert!(fake.hits("jwks") >= 1);
            }
        }
    }
}

/// Issue 15 on the hosted provider, as far as the v2 wire goes: a
/// conditional login asks the service for `mediation: "conditional"` and
/// the options come back with it; the passkey list names passkeys from
/// their creation date (the wire carries no passkey name, AAGUID or backup
/// flags); a rename is `404 unsupported` and changes nothing.
#[tokio::test]
async fn hosted_conditional_login_and_unnamed_passkeys() {
    let w = code_world().await;
    let mut c = w.client();
    let mut auth = authenticator();
    let (_, aid) = c.sign_up(&mut auth, "alice").await;
    let mut other = w.client();
    let a = other
        .post(
            "/passkey/authentication/authorize",
            json!({ "purpose": "login", "mediation": "conditional" }),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let o = other
        .post(
            &format!("{}/authentication/options", service_base(&a.json)),
            json!({ "authenticationToken": a.json["authenticationToken"] }),
        )
        .await;
    assert_eq!(o.status, 200, "{o:?}");
    assert_eq!(o.json["mediation"], "conditional");

    let l = c.get("/passkey/passkeys").await;
    assert_eq!(l.status, 200, "{l:?}");
    let e = &l.json[0];
    assert_eq!(e["authenticator_id"], aid.as_str());
    assert!(
        e["name"].as_str().unwrap().starts_with("Passkey created "),
        "{e}"
    );
    assert_eq!(e["aaguid"], serde_json::Value::Null);
    assert_eq!(e["backup_eligible"], false);
    let r = c
        .patch(
            &format!("/passkey/passkeys/{aid}"),
            json!({ "name": "Laptop" }),
        )
        .await;
    r.assert_error(404, "unsupported");
    let l2 = c.get("/passkey/passkeys").await;
    assert_eq!(l2.json, l.json);
}

/// The authorize answers name the fake; the app serves client.js but none
/// of the embedded server's routes.
#[tokio::test]
async fn client_js_is_served_without_embedded_routes() {
    let w = code_world().await;
    let mut c = w.client();
    let r = c.get("/passkey/client.js").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text.contains("export async function fetchJSON"));
    let r = c
        .post(
            "/passkey/registration/authorize",
            json!({ "username": "alice" }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["endpoint"], w.app.fake.endpoint());
    assert_eq!(r.json["tenancyId"], w.app.fake.tenancy_id().as_str());
    c.get("/passkey/.well-known/jwks.json")
        .await
        .assert_error(404, "not_found");
    let tenancy = w.app.fake.tenancy_id();
    c.post(
        &format!("/passkey/v2/{tenancy}/passkey/registration/options"),
        json!({ "registrationToken": r.json["registrationToken"] }),
    )
    .await
    .assert_error(404, "not_found");
}

/// A login proof works once: replayed from another browser it is refused
/// (the code by the service, the id_token by the app's replay cache).
async fn login_proof_cannot_be_replayed(w: World<HostedApp>) {
    let mut auth = authenticator();
    let (user, aid) = w.client().sign_up(&mut auth, "alice").await;
    let mut first = w.client();
    let proof = first.authentication_ceremony(&mut auth, "login").await;
    let r = first.post("/passkey/login", first.proof(&proof)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(first.session_user().await, Some(user));

    let mut thief = w.client();
    let r = thief.post("/passkey/login", thief.proof(&proof)).await;
    let expected = match w.app.proof {
        ProofKind::Code => "invalid_token",
        ProofKind::IdToken => "replayed",
    };
    r.assert_error(401, expected);
    assert!(!r.text.contains(&proof), "the proof is not echoed: {r:?}");
    assert_eq!(thief.session_user().await, None);
    // Nor does it step up a signed-in session.
    let r = first.post("/passkey/step-up", first.proof(&proof)).await;
    r.assert_error(401, expected);
    assert_eq!(w.links(user).await, vec![aid]);
}

#[tokio::test]
async fn login_code_cannot_be_replayed() {
    login_proof_cannot_be_replayed(code_world().await).await;
}

#[tokio::test]
async fn login_id_token_cannot_be_replayed() {
    login_proof_cannot_be_replayed(id_token_world().await).await;
}

/// A login proof presented after it expired is refused, on the service's
/// and the app's shared clock (one second past the id_token's leeway).
async fn expired_login_proof_is_refused(w: World<HostedApp>, expected: &str) {
    let mut auth = authenticator();
    let (user, _) = w.client().sign_up(&mut auth, "alice").await;
    let mut c = w.client();
    let proof = c.authentication_ceremony(&mut auth, "login").await;
    // Codes and id_tokens live five minutes; id_tokens get 5 s of leeway.
    w.clock.advance_secs(306);
    let r = c.post("/passkey/login", c.proof(&proof)).await;
    r.assert_error(401, expected);
    assert_eq!(c.session_user().await, None);
    // A fresh ceremony still signs in.
    let r = c.login(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.session_user().await, Some(user));
}

#[tokio::test]
async fn expired_login_code_is_refused() {
    // The service no longer knows an expired code.
    expired_login_proof_is_refused(code_world().await, "invalid_token").await;
}

#[tokio::test]
async fn expired_login_id_token_is_refused() {
    expired_login_proof_is_refused(id_token_world().await, "expired").await;
}

/// The app checks a principal's expiry itself: a code the service still
/// exchanges (its clock lags) but that expired on the app's clock is refused.
#[tokio::test]
async fn code_expired_on_the_apps_clock_is_refused() {
    let app_clock = ManualClock::starting_now();
    let fake_clock = ManualClock::new(app_clock.now_millis());
    let fake = FakePasslock::start_with_clock(Arc::new(fake_clock))
        .await
        .unwrap();
    let provider = PasslockHosted::new(
        fake.client_config(),
        "localhost",
        "passlock tests",
        Arc::new(app_clock.clone()),
    )
    .unwrap();
    let passlock = passlock_over(provider, &app_clock);
    let w = World {
        app: HostedApp {
            app: AxumApp(app(passlock.clone(), MemoryStore::default())),
            fake,
            proof: ProofKind::Code,
        },
        passlock,
        clock: app_clock,
    };
    let mut auth = authenticator();
    w.client().sign_up(&mut auth, "alice").await;
    let mut c = w.client();
    let code = c.authentication_ceremony(&mut auth, "login").await;
    w.clock.advance_secs(301);
    let r = c.post("/passkey/login", c.proof(&code)).await;
    r.assert_error(401, "expired");
    assert_eq!(w.app.fake.hits("principal"), 2, "the service was asked");
    assert_eq!(c.session_user().await, None);
}

/// The upstream timeout of the failing-upstream worlds: seconds, because
/// the sign-up that sets the world up goes through the same client and a
/// busy machine must not time it out.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The latency of a slow service: far beyond [`TIMEOUT`], so an answer
/// well before it can only come from the timeout.
const SLOW: Duration = Duration::from_secs(60);

/// `/login` while the service fails in `fault`: a JSON `status`/`code`
/// answer within the timeout plus a margin, no session; once the service
/// recovers, a new ceremony signs in.
async fn login_with_failing_upstream(fault: Fault, status: u16, code: &str) {
    let w = hosted_world_with(ProofKind::Code, HttpConfig::default().with_timeout(TIMEOUT)).await;
    let mut auth = authenticator();
    let (user, _) = w.client().sign_up(&mut auth, "alice").await;
    let mut c = w.client();
    let proof = c.authentication_ceremony(&mut auth, "login").await;
    let before = c.cookies();
    w.app.fake.set_fault(fault.clone());
    let started = Instant::now();
    let r = c.post("/passkey/login", c.proof(&proof)).await;
    let took = started.elapsed();
    r.assert_error(status, code);
    assert!(took < SLOW / 2, "{fault:?} answered after {took:?}");
    assert!(!r.text.contains(&proof), "{r:?}");
    assert!(r.header("set-cookie").is_none(), "no session issued: {r:?}");
    assert_eq!(c.cookies(), before);
    assert_eq!(c.session_user().await, None);
    let me = c.get("/app/me").await;
    assert!(me.json["user_id"].is_null(), "{me:?}");

    w.app.fake.set_fault(Fault::None);
    let r = c.login(&mut auth).await;
    assert_eq!(r.status, 200, "after recovery: {r:?}");
    assert_eq!(c.session_user().await, Some(user));
}

#[tokio::test]
async fn upstream_500_is_a_502() {
    login_with_failing_upstream(Fault::Status500, 502, "upstream_bad_response").await;
}

#[tokio::test]
async fn upstream_latency_beyond_the_timeout_is_a_504() {
    login_with_failing_upstream(Fault::Latency(SLOW), 504, "upstream_timeout").await;
}

#[tokio::test]
async fn upstream_dropping_the_connection_is_a_503() {
    login_with_failing_upstream(Fault::DropConnection, 503, "upstream_unavailable").await;
}

// ---------------------------------------------------------------------------
// User verification (policy `require_user_verification`), on both adapters,
// with the code and with the id_token.
// ---------------------------------------------------------------------------

/// An app of either adapter, sending the code or the id_token.
pub(crate) struct WithProof<A> {
    app: A,
    proof: ProofKind,
}

impl<A: TestApp> TestApp for WithProof<A> {
    async fn send(&self, req: TestRequest) -> Reply {
        self.app.send(req).await
    }

    fn proof_kind(&self) -> ProofKind {
        self.proof
    }
}

/// A hosted passlock on a fresh fake (sign-up on, memory links), with the
/// user-verification policy `require_uv`.
async fn uv_passlock(require_uv: bool) -> (ManualClock, FakePasslock, Passlock<i64>) {
    let clock = ManualClock::starting_now();
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
    let mut policy = passlock_core::Policy::default();
    policy.require_user_verification = require_uv;
    let passlock = Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .policy(policy)
    .clock(Arc::new(clock.clone()))
    .origins([ORIGIN])
    .build()
    .unwrap();
    (clock, fake, passlock)
}

async fn axum_uv_world(
    proof: ProofKind,
    require_uv: bool,
) -> (World<WithProof<AxumApp>>, FakePasslock) {
    let (clock, fake, passlock) = uv_passlock(require_uv).await;
    let app = AxumApp(app(passlock.clone(), MemoryStore::default()));
    let w = World {
        app: WithProof { app, proof },
        passlock,
        clock,
    };
    (w, fake)
}

async fn actix_uv_world(
    proof: ProofKind,
    require_uv: bool,
) -> (World<WithProof<crate::actix::ActixApp>>, FakePasslock) {
    let (clock, fake, passlock) = uv_passlock(require_uv).await;
    let for_app = passlock.clone();
    let app = crate::actix::ActixApp::start(move || async move {
        let sessions = passlock_actix::SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
        sessions.migrate().await.unwrap();
        crate::actix::app(for_app, sessions, actix_web::cookie::Key::generate())
    });
    let w = World {
        app: WithProof { app, proof },
        passlock,
        clock,
    };
    (w, fake)
}

/// A ceremony the authenticator did not verify the user in (`passkey.
/// userVerified: false`, `pk:uv: false`) is refused with `401
/// user_not_verified` at login, step-up and registration (sign-up and an
/// added passkey): no session, no step-up, no user, no link, and the new
/// passkey is deleted from the vault.
async fn unverified_ceremonies_are_refused<A: TestApp>(w: World<A>, fake: FakePasslock) {
    let mut auth = authenticator();
    let (user, aid) = w.client().sign_up(&mut auth, "alice").await;
    let mut lazy = auth.share();
    lazy.set_user_verification(false);

    // Login.
    let mut c = w.client();
    let r = c.login(&mut lazy).await;
    r.assert_error(401, "user_not_verified");
    assert!(r.header("set-cookie").is_none(), "no session: {r:?}");
    assert_eq!(c.session_user().await, None);

    // Step-up: the session keeps its old verification time.
    let r = c.login(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    w.clock.advance_secs(61);
    c.post("/app/sensitive", json!({}))
        .await
        .assert_error(401, "step_up_required");
    c.step_up(&mut lazy)
        .await
        .assert_error(401, "user_not_verified");
    c.post("/app/sensitive", json!({}))
        .await
        .assert_error(401, "step_up_required");
    assert_eq!(c.session_user().await, Some(user));

    // Adding a passkey (after a verified step-up) with an unverified one.
    let r = c.step_up(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut other = authenticator();
    other.set_user_verification(false);
    let (proof, new_aid) = c.registration_ceremony(&mut other, json!({})).await;
    assert!(fake.has_passkey(&new_aid));
    c.post("/passkey/register", c.proof(&proof))
        .await
        .assert_error(401, "user_not_verified");
    assert_eq!(w.links(user).await, vec![aid.clone()]);
    assert!(!fake.has_passkey(&new_aid), "deleted from the vault");

    // Sign-up.
    let mut s = w.client();
    let mut stranger = authenticator();
    stranger.set_user_verification(false);
    let (proof, new_aid) = s
        .registration_ceremony(&mut stranger, json!({ "username": "bob" }))
        .await;
    let r = s.post("/passkey/register", s.proof(&proof)).await;
    r.assert_error(401, "user_not_verified");
    assert!(!r.text.contains(&proof), "{r:?}");
    assert_eq!(s.session_user().await, None);
    assert_eq!(w.owner(&new_aid).await, None);
    assert!(!fake.has_passkey(&new_aid), "deleted from the vault");
}

/// With the policy off the same unverified ceremonies pass.
async fn unverified_ceremonies_pass_with_the_policy_off<A: TestApp>(w: World<A>) {
    let mut auth = authenticator();
    let (user, _) = w.client().sign_up(&mut auth, "alice").await;
    let mut lazy = auth.share();
    lazy.set_user_verification(false);
    let mut c = w.client();
    let r = c.login(&mut lazy).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.session_user().await, Some(user));
    w.clock.advance_secs(61);
    let r = c.step_up(&mut lazy).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = c.post("/app/sensitive", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut stranger = authenticator();
    stranger.set_user_verification(false);
    let (_, aid) = w.client().sign_up(&mut stranger, "bob").await;
    assert!(w.owner(&aid).await.is_some());
}

/// The embedded provider with UV optional in its ceremonies: the policy
/// alone refuses an unverified login and sign-up (and with it off they
/// pass).
async fn embedded_uv_world(require_uv: bool) -> World<AxumApp> {
    use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
    let clock = ManualClock::starting_now();
    let provider = EmbeddedProvider::in_memory(
        EmbeddedConfig::new("localhost", "passlock tests", [ORIGIN])
            .with_user_verification_required(false),
    )
    .await
    .unwrap();
    let mut policy = passlock_core::Policy::default();
    policy.require_user_verification = require_uv;
    let passlock = Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .policy(policy)
    .clock(Arc::new(clock.clone()))
    .origins([ORIGIN])
    .build()
    .unwrap();
    World {
        app: AxumApp(app(passlock.clone(), MemoryStore::default())),
        passlock,
        clock,
    }
}

mod user_verification {
    use super::*;

    /// (webauthn-rs requires UV of a passkey registered with it, so the
    /// unverified passkey here is one registered without.)
    #[tokio::test]
    async fn embedded_unverified_is_refused_by_the_policy() {
        let w = embedded_uv_world(true).await;
        let mut lazy = authenticator();
        lazy.set_user_verification(false);
        let mut s = w.client();
        let (proof, aid) = s
            .registration_ceremony(&mut lazy, json!({ "username": "bob" }))
            .await;
        s.post("/passkey/register", s.proof(&proof))
            .await
            .assert_error(401, "user_not_verified");
        assert_eq!(s.session_user().await, None);
        assert_eq!(w.owner(&aid).await, None);
        // The passkey is gone from the provider too: its ceremony fails.
        let answer = s
            .post(
                "/passkey/authentication/authorize",
                json!({ "purpose": "login" }),
            )
            .await;
        let base = crate::harness::service_base(&answer.json);
        let options = s
            .post(
                &format!("{base}/authentication/options"),
                json!({ "authenticationToken": answer.json["authenticationToken"] }),
            )
            .await;
        let response = lazy.get(&options.json["optionsJSON"]).await.unwrap();
        let r = s
            .post(
                &format!("{base}/authentication/verification"),
                json!({ "response": response, "sessionToken": options.json["sessionToken"] }),
            )
            .await;
        assert_eq!(r.status, 404, "{r:?}");
        assert_eq!(r.json["_tag"], "@error/PasskeyNotFound");
    }

    #[tokio::test]
    async fn embedded_unverified_passes_with_the_policy_off() {
        let w = embedded_uv_world(false).await;
        let mut lazy = authenticator();
        lazy.set_user_verification(false);
        let (user, _) = w.client().sign_up(&mut lazy, "bob").await;
        let mut c = w.client();
        let r = c.login(&mut lazy).await;
        assert_eq!(r.status, 200, "{r:?}");
        w.clock.advance_secs(61);
        let r = c.step_up(&mut lazy).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(c.session_user().await, Some(user));
    }

    #[tokio::test]
    async fn axum_code_unverified_is_refused() {
        let (w, fake) = axum_uv_world(ProofKind::Code, true).await;
        unverified_ceremonies_are_refused(w, fake).await;
    }

    #[tokio::test]
    async fn axum_id_token_unverified_is_refused() {
        let (w, fake) = axum_uv_world(ProofKind::IdToken, true).await;
        unverified_ceremonies_are_refused(w, fake).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn actix_code_unverified_is_refused() {
        let (w, fake) = actix_uv_world(ProofKind::Code, true).await;
        unverified_ceremonies_are_refused(w, fake).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn actix_id_token_unverified_is_refused() {
        let (w, fake) = actix_uv_world(ProofKind::IdToken, true).await;
        unverified_ceremonies_are_refused(w, fake).await;
    }

    #[tokio::test]
    async fn axum_unverified_passes_with_the_policy_off() {
        for proof in [ProofKind::Code, ProofKind::IdToken] {
            let (w, _fake) = axum_uv_world(proof, false).await;
            unverified_ceremonies_pass_with_the_policy_off(w).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn actix_unverified_passes_with_the_policy_off() {
        for proof in [ProofKind::Code, ProofKind::IdToken] {
            let (w, _fake) = actix_uv_world(proof, false).await;
            unverified_ceremonies_pass_with_the_policy_off(w).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Two app instances sharing one replay cache.
// ---------------------------------------------------------------------------

/// Two app instances (two `Passlock` values, two apps) on one fake (kept
/// alive by the caller), sharing their links and `replay` (`None`: each
/// keeps its own in-memory cache).
type Instance = World<WithProof<AxumApp>>;

async fn two_instances(
    replay: Option<Arc<dyn passlock_core::store::ReplayCache>>,
) -> (Instance, Instance, FakePasslock) {
    let clock = ManualClock::starting_now();
    let fake = FakePasslock::start_with_clock(Arc::new(clock.clone()))
        .await
        .unwrap();
    let links = Arc::new(MemoryAuthenticatorStore::<i64>::new());
    let users = Arc::new(MemoryUsers::default());
    let instance = || {
        let mut provider = PasslockHosted::new(
            fake.client_config(),
            "localhost",
            "passlock tests",
            Arc::new(clock.clone()),
        )
        .unwrap();
        if let Some(replay) = &replay {
            provider = provider.with_replay_cache(replay.clone());
        }
        let passlock = Passlock::builder(Arc::new(provider), links.clone())
            .sign_up(users.clone())
            .clock(Arc::new(clock.clone()))
            .origins([ORIGIN])
            .build()
            .unwrap();
        World {
            app: WithProof {
                app: AxumApp(app(passlock.clone(), MemoryStore::default())),
                proof: ProofKind::IdToken,
            },
            passlock,
            clock: clock.clone(),
        }
    };
    let (a, b) = (instance(), instance());
    (a, b, fake)
}

/// An id_token accepted by instance A is refused by instance B (`401
/// replayed`) at login and step-up, and so is the code of the same
/// ceremony; with per-process caches (`shared == false`) B accepts it.
async fn id_token_replayed_across_instances(a: Instance, b: Instance, shared: bool) {
    let mut auth = authenticator();
    let (user, _) = a.client().sign_up(&mut auth, "alice").await;
    let mut on_a = a.client();
    let v = on_a.authentication_verified(&mut auth, "login").await;
    let r = on_a
        .post("/passkey/login", json!({ "id_token": v.json["id_token"] }))
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    let mut on_b = b.client();
    let r = on_b
        .post("/passkey/login", json!({ "id_token": v.json["id_token"] }))
        .await;
    if !shared {
        assert_eq!(r.status, 200, "per-process caches let B accept it: {r:?}");
        return;
    }
    r.assert_error(401, "replayed");
    assert_eq!(on_b.session_user().await, None);
    // The twin code, exchanged on B, is refused too.
    let r = on_b
        .post("/passkey/login", json!({ "code": v.json["code"] }))
        .await;
    r.assert_error(401, "replayed");
    assert_eq!(on_b.session_user().await, None);
    // Nor does the id_token step up a session on B.
    let r = on_b.login(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(on_b.session_user().await, Some(user));
    let before = on_b.session_view().await;
    let r = on_b
        .post(
            "/passkey/step-up",
            json!({ "id_token": v.json["id_token"] }),
        )
        .await;
    r.assert_error(401, "replayed");
    assert_eq!(on_b.session_view().await, before);
}

mod shared_replay_cache {
    use super::*;

    #[tokio::test]
    async fn per_process_caches_accept_a_replay_on_another_instance() {
        let (a, b, _fake) = two_instances(None).await;
        id_token_replayed_across_instances(a, b, false).await;
    }

    #[tokio::test]
    async fn sqlite_replay_cache_refuses_a_replay_on_another_instance() {
        let pool = passlock_tests::sqlite_pool().await;
        passlock_core::store::sqlite::migrate(&pool).await.unwrap();
        let cache = Arc::new(passlock_core::store::sqlite::SqliteReplayCache::new(pool));
        let (a, b, _fake) = two_instances(Some(cache)).await;
        id_token_replayed_across_instances(a, b, true).await;
    }

    #[tokio::test]
    async fn postgres_replay_cache_refuses_a_replay_on_another_instance() {
        let (pool, _guard) = passlock_tests::pg_database().await;
        passlock_core::store::postgres::migrate(&pool)
            .await
            .unwrap();
        let cache = Arc::new(passlock_core::store::postgres::PgReplayCache::new(pool));
        let (a, b, _fake) = two_instances(Some(cache)).await;
        id_token_replayed_across_instances(a, b, true).await;
    }

    #[tokio::test]
    async fn redis_replay_cache_refuses_a_replay_on_another_instance() {
        use passlock_core::store::RedisReplayCache;
        let keys = passlock_tests::redis_prefix("test-jti").await;
        let cache = Arc::new(RedisReplayCache::new(keys.connection(), keys.prefix()));
        let (a, b, _fake) = two_instances(Some(cache)).await;
        id_token_replayed_across_instances(a, b, true).await;
        assert!(
            !keys.keys().await.is_empty(),
            "the jtis were recorded under the prefix"
        );
    }
}

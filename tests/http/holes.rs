//! Branches of the flows that the other scenarios never reached (issue 19's
//! audit): each scenario names the line of `passlock_core::flow` it guards,
//! and fails when that line is removed. Written once against [`TestApp`]
//! and instantiated per adapter with [`holes_scenarios!`]; scenarios that
//! need their own passlock take the adapter's `world_with`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use passlock_core::clock::{ManualClock, UnixMillis};
use passlock_core::error::{ProviderError, Rejection};
use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
use passlock_core::provider::{
    AuthenticationRequest, Authorization, PasskeyProvider, RegistrationRequest,
};
use passlock_core::secret::{AuthenticationToken, RegistrationToken};
use passlock_core::store::{LinkedAuthenticator, MemoryAuthenticatorStore};
use passlock_core::throttle::{Throttle, ThrottleKey};
use passlock_core::{
    AuthenticatorId, AuthenticatorStore, FlowError, Passlock, Policy, Principal, Proof, StoreError,
};
use serde_json::{Value, json};

use crate::harness::{MemoryUsers, ORIGIN, TestApp, TestRequest, World, authenticator, post_from};

/// Builds the adapter's test app around a passlock of the scenario's own.
pub(crate) trait WorldWith<A>: FnOnce(Passlock<i64>, ManualClock) -> Self::Fut {
    type Fut: Future<Output = World<A>>;
}

impl<A, F, Fut> WorldWith<A> for F
where
    F: FnOnce(Passlock<i64>, ManualClock) -> Fut,
    Fut: Future<Output = World<A>>,
{
    type Fut = Fut;
}

/// The embedded provider in memory on `clock`, for `ORIGIN`.
async fn provider(clock: &ManualClock) -> Arc<EmbeddedProvider> {
    Arc::new(
        EmbeddedProvider::in_memory(
            EmbeddedConfig::new("localhost", "passlock tests", [ORIGIN])
                .with_clock(Arc::new(clock.clone())),
        )
        .await
        .unwrap(),
    )
}

/// Whether the embedded provider of `pl` still holds `authenticator`.
async fn provider_holds(pl: &Passlock<i64>, authenticator: &str) -> bool {
    let embedded = pl.provider().embedded().expect("embedded provider");
    let aid = AuthenticatorId::new(authenticator).unwrap();
    embedded
        .credential_store()
        .get(&aid)
        .await
        .unwrap()
        .is_some()
}

fn set_cookies(headers: &[(String, String)]) -> Vec<&str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// `flow::register`'s `principal.user_handle != pending.user_handle`: a
/// proof registered for another browser's pending sign-up is refused with
/// `403 user_mismatch`; no user is created (the username stays free),
/// nothing is linked, no session is issued, and the passkey is deleted from
/// the provider.
pub(crate) async fn sign_up_with_another_pending_proof_is_user_mismatch<A: TestApp>(w: World<A>) {
    let mut alice = w.client();
    let r = alice.authorize_sign_up("alice").await;
    assert_eq!(r.status, 200, "{r:?}");

    let mut bob = w.client();
    let mut bobs_device = authenticator();
    let (bobs_proof, bobs_passkey) = bob
        .registration_ceremony(&mut bobs_device, json!({ "username": "bob" }))
        .await;

    let r = alice
        .post("/passkey/register", alice.proof(&bobs_proof))
        .await;
    r.assert_error(403, "user_mismatch");
    assert_eq!(alice.session_user().await, None, "no session issued");
    assert_eq!(w.owner(&bobs_passkey).await, None, "nothing linked");
    assert!(
        !provider_holds(&w.passlock, &bobs_passkey).await,
        "the passkey is deleted from the provider"
    );
    // No user "alice" was created: the name is still free.
    let (user, _) = w.client().sign_up(&mut authenticator(), "alice").await;
    assert!(user > 0);
}

/// `flow::register`'s sign-up hook refusal: a taken username answers
/// `409 sign_up_refused` with the app's message, links nothing and deletes
/// the new passkey from the provider.
pub(crate) async fn refused_sign_up_discards_the_passkey<A: TestApp>(w: World<A>) {
    let (first, _) = w.client().sign_up(&mut authenticator(), "alice").await;
    let mut c = w.client();
    let (proof, passkey) = c
        .registration_ceremony(&mut authenticator(), json!({ "username": "alice" }))
        .await;
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    r.assert_error(409, "sign_up_refused");
    assert_eq!(
        r.json["message"],
        "sign-up was refused: this username is taken"
    );
    assert_eq!(c.session_user().await, None);
    assert_eq!(w.owner(&passkey).await, None);
    assert!(!provider_holds(&w.passlock, &passkey).await);
    assert_eq!(w.links(first).await.len(), 1, "the first user is untouched");
}

/// `flow::check_username`: empty, too long (the policy's
/// `max_username_chars`, 64 by default) and control characters are
/// `400 invalid_username` and write no session; exactly 64 characters pass.
pub(crate) async fn usernames_are_checked_before_anything_is_stored<A: TestApp>(w: World<A>) {
    let too_long = "a".repeat(65);
    for (name, why) in [
        ("   ", "it is empty"),
        (too_long.as_str(), "it is too long"),
        ("al\u{7}ice", "it contains control characters"),
        ("al\nice", "it contains control characters"),
    ] {
        let mut c = w.client();
        let r = c.authorize_sign_up(name).await;
        r.assert_error(400, "invalid_username");
        assert_eq!(r.json["message"], format!("invalid username: {why}"));
        assert!(
            set_cookies(&r.headers).is_empty(),
            "no session for {name:?}"
        );
    }
    let mut c = w.client();
    let r = c.authorize_sign_up(&"é".repeat(64)).await;
    assert_eq!(
        r.status, 200,
        "64 characters (not bytes) are allowed: {r:?}"
    );
}

/// Session fixation, checked on the server: the session id a browser held
/// before a login or a step-up carries no sign-in afterwards (a copy of the
/// old cookie is signed out), not merely a different cookie; a pending
/// sign-up holds no session id at all (only its sealed ticket), so the
/// session a sign-up issues is new.
pub(crate) async fn pre_sign_in_session_ids_carry_no_sign_in<A: TestApp>(w: World<A>) {
    // Sign-up: nothing but the ticket before `/register`.
    let mut c = w.client();
    let mut device = authenticator();
    let (proof, _) = c
        .registration_ceremony(&mut device, json!({ "username": "alice" }))
        .await;
    assert_eq!(c.cookie_names(), vec!["passlock_signup"], "sign-up");
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let user: i64 = r.json["user_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(c.session_user().await, Some(user));

    // Step-up: the signed-in session's id before the step-up.
    let mut before_step_up = w.client();
    before_step_up.set_cookies(&c);
    let r = c.step_up(&mut device).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.session_user().await, Some(user));
    assert_eq!(before_step_up.session_user().await, None, "step-up");

    // Login: a session id planted before the login (another user's
    // session, as an attacker fixing their own session would).
    let mut victim = w.client();
    let (bob, _) = victim.sign_up(&mut authenticator(), "bob").await;
    assert_ne!(bob, user);
    let mut planted = w.client();
    planted.set_cookies(&victim);
    let r = victim.login(&mut device).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(victim.session_user().await, Some(user));
    assert_eq!(planted.session_user().await, None, "login");
    assert_eq!(planted.get("/app/me").await.json["user_id"], Value::Null);
}

/// `flow::step_up`'s `user_of(..).ok_or(UnknownAuthenticator)`: a passkey
/// the provider knows but that is linked to nobody does not step up (`401
/// unknown_authenticator`) and leaves the session as it was.
pub(crate) async fn step_up_with_a_passkey_linked_to_nobody_is_refused<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut alices_device = authenticator();
    let (alice, _) = c.sign_up(&mut alices_device, "alice").await;
    let mut bobs_device = authenticator();
    let (bob, bobs_passkey) = w.client().sign_up(&mut bobs_device, "bob").await;
    let aid = AuthenticatorId::new(&bobs_passkey).unwrap();
    assert!(w.passlock.store().unlink(&aid, &bob).await.unwrap());

    w.clock.advance_secs(120);
    let proof = c.authentication_ceremony(&mut bobs_device, "login").await;
    let r = c.post("/passkey/step-up", c.proof(&proof)).await;
    r.assert_error(401, "unknown_authenticator");
    assert_eq!(c.session_user().await, Some(alice), "the session is kept");
    let r = c.post("/app/sensitive", json!({})).await;
    r.assert_error(401, "step_up_required");
    assert_eq!(w.owner(&bobs_passkey).await, None, "nothing linked");
}

/// `flow::unlink`'s `AuthenticatorId::new(..).map_err(|_| NotFound)`: an id
/// that is not a valid authenticator id is `404 not_found` and unlinks
/// nothing; so is a valid id the user does not have.
pub(crate) async fn unlink_of_an_invalid_or_foreign_id_is_not_found<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let (user, passkey) = c.sign_up(&mut authenticator(), "alice").await;
    let (bob, bobs_passkey) = w.client().sign_up(&mut authenticator(), "bob").await;
    for id in ["%20", &"x".repeat(1025), &bobs_passkey] {
        let r = c.delete(&format!("/passkey/passkeys/{id}")).await;
        r.assert_error(404, "not_found");
    }
    assert_eq!(w.links(user).await, vec![passkey]);
    assert_eq!(w.links(bob).await, vec![bobs_passkey]);
}

/// Codes and ceremonies expire on the test clock through the routes: a
/// registration proof redeemed after the pending registration's lifetime is
/// refused and signs nobody in.
pub(crate) async fn pending_registration_expires_on_the_clock<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut device = authenticator();
    let (proof, passkey) = c
        .registration_ceremony(&mut device, json!({ "username": "alice" }))
        .await;
    w.clock.advance_secs(301);
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    r.assert_error(401, "registration_not_authorized");
    assert_eq!(c.session_user().await, None);
    assert_eq!(w.owner(&passkey).await, None);
}

/// The embedded provider runs on the test clock: a login code redeemed
/// after its 5 minutes is `401 invalid_token` and signs nobody in, one
/// redeemed in time works.
pub(crate) async fn login_code_expires_on_the_clock<A: TestApp>(w: World<A>) {
    let mut device = authenticator();
    let (user, _) = w.client().sign_up(&mut device, "alice").await;
    let mut c = w.client();
    let late = c.authentication_ceremony(&mut device, "login").await;
    w.clock.advance_secs(301);
    let r = c.post("/passkey/login", c.proof(&late)).await;
    r.assert_error(401, "invalid_token");
    assert_eq!(c.session_user().await, None);
    let on_time = c.authentication_ceremony(&mut device, "login").await;
    w.clock.advance_secs(299);
    let r = c.post("/passkey/login", c.proof(&on_time)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.session_user().await, Some(user));
}

fn bogus_code(i: usize) -> Value {
    json!({ "code": format!("bogus-register-{i:04}-aaaaaaaaaaaaaaaaaaaa") })
}

/// `flow::register`'s throttle subject (`pending:{handle}`): five bad
/// proofs for one pending registration, each from another address, and
/// the sixth is `429` with `Retry-After`, even with its good proof; the
/// pending registration itself still completes after the window.
pub(crate) async fn register_is_throttled_per_pending_registration<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut device = authenticator();
    let (proof, passkey) = c
        .registration_ceremony(&mut device, json!({ "username": "alice" }))
        .await;
    for i in 0..5 {
        let r = post_from(
            &mut c,
            &format!("198.51.100.{i}"),
            "/passkey/register",
            bogus_code(i),
        )
        .await;
        r.assert_error(401, "invalid_token");
    }
    let good = c.proof(&proof);
    let r = post_from(&mut c, "198.51.100.99", "/passkey/register", good.clone()).await;
    r.assert_error(429, "throttled");
    assert!(r.header("retry-after").is_some(), "{r:?}");
    assert_eq!(
        w.owner(&passkey).await,
        None,
        "a throttled request links nothing"
    );
    assert_eq!(c.session_user().await, None);
}

/// `flow::register`'s address counter: ten bad proofs from one address,
/// each for its own pending registration, and the eleventh browser behind
/// that address is `429`; another address is not affected.
pub(crate) async fn register_is_throttled_per_address<A: TestApp>(w: World<A>) {
    for i in 0..10 {
        let mut c = w.client();
        let r = c.authorize_sign_up(&format!("u{i}")).await;
        assert_eq!(r.status, 200, "{r:?}");
        let r = post_from(&mut c, "203.0.113.9", "/passkey/register", bogus_code(i)).await;
        r.assert_error(401, "invalid_token");
    }
    let mut late = w.client();
    let mut device = authenticator();
    let (proof, _) = late
        .registration_ceremony(&mut device, json!({ "username": "late" }))
        .await;
    let body = late.proof(&proof);
    let r = post_from(&mut late, "203.0.113.9", "/passkey/register", body.clone()).await;
    r.assert_error(429, "throttled");
    let r = post_from(&mut late, "203.0.113.10", "/passkey/register", body).await;
    assert_eq!(
        r.status, 201,
        "another address, and the proof was not consumed: {r:?}"
    );
}

/// `flow::authorize_registration`'s `SignUpDisabled`: without a sign-up
/// hook, an anonymous registration is `403 sign_up_disabled` and writes no
/// session.
pub(crate) async fn sign_up_is_disabled_without_a_hook<A: TestApp, W: WorldWith<A>>(with: W) {
    let clock = ManualClock::starting_now();
    let pl = Passlock::builder(
        provider(&clock).await,
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap();
    let w = with(pl, clock).await;
    let mut c = w.client();
    let r = c.authorize_sign_up("alice").await;
    r.assert_error(403, "sign_up_disabled");
    assert!(set_cookies(&r.headers).is_empty(), "{r:?}");
}

/// An authenticator store whose `link` fails once.
#[derive(Debug)]
struct LinkFailsOnce {
    inner: MemoryAuthenticatorStore<i64>,
    failed: AtomicBool,
}

#[async_trait::async_trait]
impl AuthenticatorStore<i64> for LinkFailsOnce {
    async fn link(&self, a: &AuthenticatorId, u: &i64, now: UnixMillis) -> Result<(), StoreError> {
        if !self.failed.swap(true, Ordering::SeqCst) {
            return Err(StoreError::backend("link failed"));
        }
        self.inner.link(a, u, now).await
    }
    async fn user_of(&self, a: &AuthenticatorId) -> Result<Option<i64>, StoreError> {
        self.inner.user_of(a).await
    }
    async fn authenticators_of(&self, u: &i64) -> Result<Vec<LinkedAuthenticator>, StoreError> {
        self.inner.authenticators_of(u).await
    }
    async fn unlink(&self, a: &AuthenticatorId, u: &i64) -> Result<bool, StoreError> {
        self.inner.unlink(a, u).await
    }
    async fn touch(&self, a: &AuthenticatorId, now: UnixMillis) -> Result<(), StoreError> {
        self.inner.touch(a, now).await
    }
}

/// `flow::register`'s link failure after the user was created: `503`, the
/// user is abandoned (the username is free again), the passkey is deleted
/// from the provider, no session.
pub(crate) async fn link_failure_abandons_the_user_and_the_passkey<A: TestApp, W: WorldWith<A>>(
    with: W,
) {
    let clock = ManualClock::starting_now();
    let pl = Passlock::builder(
        provider(&clock).await,
        Arc::new(LinkFailsOnce {
            inner: MemoryAuthenticatorStore::new(),
            failed: AtomicBool::new(false),
        }),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap();
    let w = with(pl, clock).await;
    let mut c = w.client();
    let (proof, passkey) = c
        .registration_ceremony(&mut authenticator(), json!({ "username": "alice" }))
        .await;
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    r.assert_error(503, "store_unavailable");
    assert!(
        !r.text.contains("link failed"),
        "no cause in the body: {r:?}"
    );
    assert_eq!(c.session_user().await, None);
    assert_eq!(w.owner(&passkey).await, None);
    assert!(!provider_holds(&w.passlock, &passkey).await);
    // The user was abandoned: "alice" can sign up again.
    let (user, again) = w.client().sign_up(&mut authenticator(), "alice").await;
    assert_eq!(w.links(user).await, vec![again]);
}

/// An authenticator store whose `touch` (the `last_used_at` bookkeeping)
/// always fails.
#[derive(Debug, Default)]
struct TouchFails(MemoryAuthenticatorStore<i64>);

#[async_trait::async_trait]
impl AuthenticatorStore<i64> for TouchFails {
    async fn link(&self, a: &AuthenticatorId, u: &i64, now: UnixMillis) -> Result<(), StoreError> {
        self.0.link(a, u, now).await
    }
    async fn user_of(&self, a: &AuthenticatorId) -> Result<Option<i64>, StoreError> {
        self.0.user_of(a).await
    }
    async fn authenticators_of(&self, u: &i64) -> Result<Vec<LinkedAuthenticator>, StoreError> {
        self.0.authenticators_of(u).await
    }
    async fn unlink(&self, a: &AuthenticatorId, u: &i64) -> Result<bool, StoreError> {
        self.0.unlink(a, u).await
    }
    async fn touch(&self, _: &AuthenticatorId, _: UnixMillis) -> Result<(), StoreError> {
        Err(StoreError::backend("touch failed"))
    }
}

/// `flow::touch`'s "a failure is logged, not fatal": with a store whose
/// `touch` fails, a log-in and a step-up still succeed (200, signed in),
/// and `last_used_at` stays unset.
pub(crate) async fn a_failing_touch_does_not_fail_the_sign_in<A: TestApp, W: WorldWith<A>>(
    with: W,
) {
    let clock = ManualClock::starting_now();
    let pl = Passlock::builder(provider(&clock).await, Arc::new(TouchFails::default()))
        .sign_up(Arc::new(MemoryUsers::default()))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let w = with(pl, clock).await;
    let mut device = authenticator();
    let (user, _) = w.client().sign_up(&mut device, "alice").await;
    let mut c = w.client();
    let r = c.login(&mut device).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.session_user().await, Some(user));
    w.clock.advance_secs(120);
    let r = c.step_up(&mut device).await;
    assert_eq!(r.status, 200, "{r:?}");
    let linked = w.passlock.store().authenticators_of(&user).await.unwrap();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].last_used_at, None, "nothing was recorded");
}

/// The embedded provider, except that its vault refuses every delete.
#[derive(Debug)]
struct RefusesDeletes(Arc<EmbeddedProvider>);

#[async_trait::async_trait]
impl PasskeyProvider for RefusesDeletes {
    fn name(&self) -> &'static str {
        "refuses-deletes"
    }
    async fn authorize_registration(
        &self,
        request: RegistrationRequest,
    ) -> Result<Authorization<RegistrationToken>, ProviderError> {
        self.0.authorize_registration(request).await
    }
    async fn authorize_authentication(
        &self,
        request: AuthenticationRequest,
    ) -> Result<Authorization<AuthenticationToken>, ProviderError> {
        self.0.authorize_authentication(request).await
    }
    async fn verify(&self, proof: &Proof) -> Result<Principal, ProviderError> {
        self.0.verify(proof).await
    }
    async fn delete_passkey(&self, _: &AuthenticatorId) -> Result<(), ProviderError> {
        Err(ProviderError::Rejected(Rejection::InvalidToken))
    }
    fn embedded(&self) -> Option<&EmbeddedProvider> {
        Some(&self.0)
    }
    fn sealing_key(&self) -> Option<passlock_core::SealingKey> {
        self.0.sealing_key()
    }
}

/// `flow::unlink`'s `ProviderError::Rejected(_) => NotFound`: a passkey
/// the provider's vault refuses to delete answers `404 not_found` and is
/// linked back exactly as it was (creation and last use kept).
pub(crate) async fn a_provider_refusal_on_unlink_keeps_the_link<A: TestApp, W: WorldWith<A>>(
    with: W,
) {
    let clock = ManualClock::starting_now();
    let pl = Passlock::builder(
        Arc::new(RefusesDeletes(provider(&clock).await)),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap();
    let w = with(pl, clock).await;
    let mut c = w.client();
    let mut first = authenticator();
    let (user, _) = c.sign_up(&mut first, "alice").await;
    let (proof, added) = c
        .registration_ceremony(&mut authenticator(), json!({ "username": "alice" }))
        .await;
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    assert_eq!(r.status, 201, "{r:?}");
    w.clock.advance_secs(30);
    assert_eq!(c.login(&mut first).await.status, 200);
    let before = w.passlock.store().authenticators_of(&user).await.unwrap();
    assert!(
        before.iter().any(|l| l.last_used_at.is_some()),
        "{before:?}"
    );
    let r = c.delete(&format!("/passkey/passkeys/{added}")).await;
    r.assert_error(404, "not_found");
    let mut after = w.passlock.store().authenticators_of(&user).await.unwrap();
    let mut before = before;
    before.sort_by(|a, b| a.authenticator_id.as_str().cmp(b.authenticator_id.as_str()));
    after.sort_by(|a, b| a.authenticator_id.as_str().cmp(b.authenticator_id.as_str()));
    assert_eq!(after, before, "linked back as it was");
    assert!(provider_holds(&w.passlock, &added).await);
}

/// A throttle whose backend is down: every call fails.
#[derive(Debug)]
struct ThrottleDown;

#[async_trait::async_trait]
impl Throttle for ThrottleDown {
    async fn try_acquire(&self, _: &ThrottleKey) -> Result<(), FlowError> {
        Err(FlowError::Store(StoreError::backend("throttle down")))
    }
    async fn release(&self, _: &ThrottleKey) -> Result<(), StoreError> {
        Err(StoreError::backend("throttle down"))
    }
    async fn record_failure(&self, _: &ThrottleKey) -> Result<(), StoreError> {
        Err(StoreError::backend("throttle down"))
    }
    async fn reset(&self, _: &ThrottleKey) -> Result<(), StoreError> {
        Err(StoreError::backend("throttle down"))
    }
}

/// A throttle backend that is down fails closed: starting a ceremony, a
/// log-in with a valid proof and a sign-up all answer `503
/// store_unavailable` (no cause in the body), sign nobody in and link
/// nothing.
pub(crate) async fn a_failing_throttle_backend_answers_503<A: TestApp, W: WorldWith<A>>(with: W) {
    let clock = ManualClock::starting_now();
    let pl = Passlock::builder(
        provider(&clock).await,
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .clock(Arc::new(clock.clone()))
    .throttle(Arc::new(ThrottleDown))
    .build()
    .unwrap();
    let w = with(pl, clock).await;
    let mut c = w.client();
    let r = c
        .post(
            "/passkey/authentication/authorize",
            json!({ "purpose": "login" }),
        )
        .await;
    r.assert_error(503, "store_unavailable");
    assert!(!r.text.contains("throttle down"), "{r:?}");
    let r = c.authorize_sign_up("alice").await;
    r.assert_error(503, "store_unavailable");
    assert!(set_cookies(&r.headers).is_empty(), "{r:?}");
    let r = c.post("/passkey/login", bogus_code(0)).await;
    r.assert_error(503, "store_unavailable");
    assert_eq!(c.session_user().await, None);
}

/// Two app instances sharing one `RedisThrottle` (a prefix of the test's
/// own): five bad log-ins from one address on each instance reach the
/// address limit of ten, so the next one is `429 throttled` on either
/// instance, while another address still gets its own `401`.
pub(crate) async fn redis_throttle_is_shared_by_two_instances<A: TestApp, W: WorldWith<A>>(
    with_a: W,
    with_b: W,
) {
    use passlock_core::throttle::RedisThrottle;
    let keys = passlock_tests::redis_prefix("test-throttle-e2e").await;
    let mut worlds = Vec::new();
    for with in [with_a, with_b] {
        let clock = ManualClock::starting_now();
        let pl = Passlock::builder(
            provider(&clock).await,
            Arc::new(MemoryAuthenticatorStore::<i64>::new()),
        )
        .sign_up(Arc::new(MemoryUsers::default()))
        .clock(Arc::new(clock.clone()))
        .trusted_proxy_header("x-test-client")
        .throttle(Arc::new(RedisThrottle::new(
            keys.connection(),
            keys.prefix(),
        )))
        .build()
        .unwrap();
        worlds.push(with(pl, clock).await);
    }
    let (a, b) = (&worlds[0], &worlds[1]);
    for i in 0..10 {
        let w = if i % 2 == 0 { a } else { b };
        let mut c = w.client();
        let r = post_from(&mut c, "198.51.100.7", "/passkey/login", bogus_code(i)).await;
        r.assert_error(401, "invalid_token");
    }
    for w in [a, b] {
        let mut c = w.client();
        let r = post_from(&mut c, "198.51.100.7", "/passkey/login", bogus_code(10)).await;
        r.assert_error(429, "throttled");
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((250..=300).contains(&retry), "{r:?}");
        let r = post_from(&mut c, "198.51.100.8", "/passkey/login", bogus_code(11)).await;
        r.assert_error(401, "invalid_token");
    }
    assert!(
        keys.keys()
            .await
            .iter()
            .any(|k| k.ends_with("198.51.100.7")),
        "the address counter is in Redis: {:?}",
        keys.keys().await
    );
}

/// Non-default policy values are the ones enforced: with
/// `manage_step_up_secs = 60`, deleting a passkey 61 s after the last
/// verification asks for a step-up (`max_age` 60), at 59 s it does not.
pub(crate) async fn non_default_manage_window_is_enforced<A: TestApp, W: WorldWith<A>>(with: W) {
    let clock = ManualClock::starting_now();
    let mut policy = Policy::default();
    policy.manage_step_up_secs = 60;
    let pl = Passlock::builder(
        provider(&clock).await,
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .policy(policy)
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap();
    let w = with(pl, clock).await;
    let mut c = w.client();
    let mut first = authenticator();
    let (user, passkey) = c.sign_up(&mut first, "alice").await;
    let mut second = authenticator();
    let (proof, added) = c
        .registration_ceremony(&mut second, json!({ "username": "alice" }))
        .await;
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    assert_eq!(r.status, 201, "{r:?}");

    w.clock.advance_secs(61);
    let r = c.delete(&format!("/passkey/passkeys/{added}")).await;
    r.assert_error(401, "step_up_required");
    assert_eq!(r.json["max_age"], 60);
    let r = c.step_up(&mut first).await;
    assert_eq!(r.status, 200, "{r:?}");
    w.clock.advance_secs(59);
    let r = c.delete(&format!("/passkey/passkeys/{added}")).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(w.links(user).await, vec![passkey]);
}

/// A non-default prefix: the routes answer under it and not under
/// `/passkey`, and the embedded provider sends browsers to it.
pub(crate) async fn routes_follow_a_non_default_prefix<A: TestApp, W: WorldWith<A>>(with: W) {
    let clock = ManualClock::starting_now();
    let pl = Passlock::builder(
        provider(&clock).await,
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .prefix("/auth/pk")
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap();
    let w = with(pl, clock).await;
    let mut c = w.client();
    c.get("/auth/pk/session")
        .await
        .assert_error(401, "not_authenticated");
    // `/passkey` is no longer passlock's: the app's own 404 answers.
    // (Sent past the browser, whose checks hold `/passkey` to passlock's
    // answer headers.)
    let r = w
        .app
        .send(TestRequest {
            method: "GET",
            path: "/passkey/session".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        })
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = c
        .post(
            "/auth/pk/registration/authorize",
            json!({ "username": "alice" }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["endpoint"], "/auth/pk");
    let options = c
        .post(
            &format!(
                "/auth/pk/v2/{}/passkey/registration/options",
                r.json["tenancyId"].as_str().unwrap()
            ),
            json!({ "registrationToken": r.json["registrationToken"] }),
        )
        .await;
    assert_eq!(options.status, 200, "{options:?}");
}

/// The attributes of the `Set-Cookie` named `name` in `headers`, lower
/// case, without the value.
fn cookie_attributes(headers: &[(String, String)], name: &str) -> Vec<String> {
    let cookie = set_cookies(headers)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {headers:?}"));
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

fn assert_has(attributes: &[String], wanted: &[&str], unwanted: &[&str]) {
    for w in wanted {
        assert!(
            attributes.iter().any(|a| a == w),
            "{w} missing in {attributes:?}"
        );
    }
    for u in unwanted {
        assert!(!attributes.iter().any(|a| a == u), "{u} in {attributes:?}");
    }
}

/// The names of the cookies a reply sets.
fn cookie_names(headers: &[(String, String)]) -> Vec<String> {
    set_cookies(headers)
        .iter()
        .filter_map(|c| c.split_once('=').map(|(n, _)| n.to_owned()))
        .collect()
}

/// An anonymous sign-up persists no session before its ceremony
/// completes: `registration/authorize` sets only the sealed sign-up ticket
/// (`HttpOnly`, `SameSite=Lax`, scoped to the passlock routes, as long as
/// the pending registration lives); `/register` sets the session cookie
/// (`HttpOnly`, `SameSite=Lax`, not `Secure` on `http://localhost`) and
/// removes the ticket.
pub(crate) async fn anonymous_sign_up_persists_no_session<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let r = c.authorize_sign_up("alice").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(cookie_names(&r.headers), vec!["passlock_signup"], "{r:?}");
    assert_has(
        &cookie_attributes(&r.headers, "passlock_signup"),
        &["httponly", "samesite=lax", "path=/passkey", "max-age=300"],
        &["secure"],
    );

    let mut device = authenticator();
    let (proof, passkey) = c
        .registration_ceremony(&mut device, json!({ "username": "alice" }))
        .await;
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let names = cookie_names(&r.headers);
    assert_eq!(names.len(), 2, "{r:?}");
    let session = names.iter().find(|n| *n != "passlock_signup").unwrap();
    assert_has(
        &cookie_attributes(&r.headers, session),
        &["httponly", "samesite=lax"],
        &["secure"],
    );
    assert_has(
        &cookie_attributes(&r.headers, "passlock_signup"),
        &["max-age=0"],
        &[],
    );
    assert_eq!(c.cookie("passlock_signup"), None, "the ticket is dropped");
    let user: i64 = r.json["user_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(w.links(user).await, vec![passkey]);
}

/// A sign-up ticket that was altered (or forged) does not open: `/register`
/// is `401 registration_not_authorized`, nothing is linked, no session.
pub(crate) async fn altered_sign_up_ticket_is_refused<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut device = authenticator();
    let (proof, passkey) = c
        .registration_ceremony(&mut device, json!({ "username": "alice" }))
        .await;
    let ticket = c.cookie("passlock_signup").unwrap().to_owned();
    let (payload, tag) = ticket.split_once('.').unwrap();
    let mut altered = payload.to_owned();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    // A browser holding only the altered ticket.
    let r = w
        .client()
        .send(TestRequest {
            method: "POST",
            path: "/passkey/register".to_owned(),
            headers: vec![
                ("origin".to_owned(), ORIGIN.to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
                (
                    "cookie".to_owned(),
                    format!("passlock_signup={altered}.{tag}"),
                ),
            ],
            body: c.proof(&proof).to_string().into_bytes(),
        })
        .await;
    r.assert_error(401, "registration_not_authorized");
    assert_eq!(w.owner(&passkey).await, None);
}

/// A JSON POST with an explicit `Origin`.
fn post_with_origin(origin: &str, path: &str, body: Value) -> TestRequest {
    TestRequest {
        method: "POST",
        path: path.to_owned(),
        headers: vec![
            ("origin".to_owned(), origin.to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// With an https origin, the sign-up ticket and the session cookie are
/// `Secure` too (and still `HttpOnly`, `SameSite=Lax`).
pub(crate) async fn https_cookies_are_secure<A: TestApp, W: WorldWith<A>>(with: W) {
    let clock = ManualClock::starting_now();
    let https = "https://app.example.com";
    let provider = EmbeddedProvider::in_memory(
        EmbeddedConfig::new("app.example.com", "passlock tests", [https])
            .with_clock(Arc::new(clock.clone())),
    )
    .await
    .unwrap();
    let pl = Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .sign_up(Arc::new(MemoryUsers::default()))
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap();
    assert!(pl.secure_cookies());
    let w = with(pl, clock).await;
    let mut c = w.client();
    let answer = c
        .send(post_with_origin(
            https,
            "/passkey/registration/authorize",
            json!({ "username": "alice" }),
        ))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_has(
        &cookie_attributes(&answer.headers, "passlock_signup"),
        &["httponly", "samesite=lax", "secure"],
        &[],
    );
    let base = crate::harness::service_base(&answer.json);
    let options = c
        .send(post_with_origin(
            https,
            &format!("{base}/registration/options"),
            json!({ "registrationToken": answer.json["registrationToken"] }),
        ))
        .await;
    assert_eq!(options.status, 200, "{options:?}");
    let mut device = passlock_test::authenticator::SoftAuthenticator::new(https);
    let response = device.create(&options.json["optionsJSON"]).await.unwrap();
    let verified = c
        .send(post_with_origin(
            https,
            &format!("{base}/registration/verification"),
            json!({ "response": response, "sessionToken": options.json["sessionToken"] }),
        ))
        .await;
    assert_eq!(verified.status, 200, "{verified:?}");
    let r = c
        .send(post_with_origin(
            https,
            "/passkey/register",
            json!({ "code": verified.json["code"] }),
        ))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let names = cookie_names(&r.headers);
    let session = names.iter().find(|n| *n != "passlock_signup").unwrap();
    assert_has(
        &cookie_attributes(&r.headers, session),
        &["httponly", "samesite=lax", "secure"],
        &[],
    );
}

/// Instantiates every scenario of this file for one adapter: `$world` is
/// the adapter's default world, `$with` builds it around a given passlock.
#[macro_export]
macro_rules! holes_scenarios {
    ($world:path, $with:path) => {
        $crate::holes_scenarios!(@world $world;
            sign_up_with_another_pending_proof_is_user_mismatch,
            refused_sign_up_discards_the_passkey,
            usernames_are_checked_before_anything_is_stored,
            pre_sign_in_session_ids_carry_no_sign_in,
            step_up_with_a_passkey_linked_to_nobody_is_refused,
            unlink_of_an_invalid_or_foreign_id_is_not_found,
            pending_registration_expires_on_the_clock,
            login_code_expires_on_the_clock,
            register_is_throttled_per_pending_registration,
            register_is_throttled_per_address,
            anonymous_sign_up_persists_no_session,
            altered_sign_up_ticket_is_refused,
        );
        $crate::holes_scenarios!(@with $with;
            sign_up_is_disabled_without_a_hook,
            link_failure_abandons_the_user_and_the_passkey,
            non_default_manage_window_is_enforced,
            routes_follow_a_non_default_prefix,
            https_cookies_are_secure,
            a_failing_touch_does_not_fail_the_sign_in,
            a_provider_refusal_on_unlink_keeps_the_link,
            a_failing_throttle_backend_answers_503,
        );
        #[tokio::test]
        async fn redis_throttle_is_shared_by_two_instances() {
            $crate::holes::redis_throttle_is_shared_by_two_instances($with, $with).await;
        }
    };
    (@world $world:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::holes::$name($world().await).await;
            }
        )*
    };
    (@with $with:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::holes::$name($with).await;
            }
        )*
    };
}

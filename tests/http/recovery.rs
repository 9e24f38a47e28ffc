//! Account recovery by a one-time email code (issue 16 items 1, 4 and 5),
//! on both adapters and every session store the other tests use.
//!
//! The code comes from the test kit's capturing mailer, wired through the
//! public `Recovery::new(mailer, directory)` as an app wires its own; the
//! passkeys are enrolled with the software authenticator through the
//! embedded provider's real ceremonies (or the hosted provider's against
//! `FakePasslock`). The `*_hosted_challenges_*` tests run recovery on the
//! hosted Passlock's mailbox challenges (`Recovery::hosted_challenges`),
//! the fake being the only stand-in.

use std::sync::{Arc, Mutex};

use actix_session::storage::RedisSessionStore;
use actix_web::cookie::Key;
use passlock_actix::SqlSessionStore;
use passlock_core::Passlock;
use passlock_core::StoreError;
use passlock_core::audit::{AuditEvent, AuditHook, AuditKind};
use passlock_core::clock::ManualClock;
use passlock_core::clock::UnixMillis;
use passlock_core::error::BoxError;
use passlock_core::id::ChallengeId;
use passlock_core::provider::PasskeyProvider;
use passlock_core::recovery::{HostedChallenges, Recovery};
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::store::postgres::PgRecoveryChallenges;
use passlock_core::store::sqlite::SqliteRecoveryChallenges;
use passlock_core::store::{Attempt, MemoryRecoveryChallenges, NewChallenge, RecoveryChallenges};
use passlock_test::fake_passlock::{FakePasslock, Fault, RouteFamily};
use passlock_test::recovery::{CapturingMailer, MapDirectory};
use serde_json::json;
use tower_sessions::MemoryStore;

use crate::axum::AxumApp;
use crate::harness::{self, Client, TestApp, World, authenticator, post_from};
use crate::revocation::actix_world;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// Every audited event, in order.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<AuditEvent<i64>>>);

#[async_trait::async_trait]
impl AuditHook<i64> for Recorder {
    async fn record(&self, event: &AuditEvent<i64>) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl Recorder {
    /// The recovery events, as (name, user, authenticator).
    fn recovery(&self) -> Vec<(&'static str, i64, Option<String>)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    AuditKind::RecoveryRequested
                        | AuditKind::RecoveryUsed
                        | AuditKind::PasskeyEnrolledByRecovery
                )
            })
            .map(|e| {
                (
                    e.kind.name(),
                    e.user,
                    e.authenticator_id.as_ref().map(ToString::to_string),
                )
            })
            .collect()
    }
}

/// What a recovery test looks at besides the app.
struct Rig {
    mailer: Arc<CapturingMailer>,
    directory: Arc<MapDirectory<i64>>,
    audit: Arc<Recorder>,
    /// The hosted service's fake, kept running for the test.
    fake: Option<Arc<FakePasslock>>,
    /// The length of a mailed code (Passlock's are six digits).
    code_len: usize,
}

/// The test passlock (embedded provider, memory links, `x-test-client`
/// trusted) with recovery on, its challenges in `challenges`.
async fn build(
    clock: &ManualClock,
    challenges: Option<Arc<dyn RecoveryChallenges>>,
) -> (Passlock<i64>, Rig) {
    use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
    let provider = EmbeddedProvider::in_memory(
        EmbeddedConfig::new("localhost", "passlock tests", [harness::ORIGIN])
            .with_clock(Arc::new(clock.clone())),
    )
    .await
    .unwrap();
    build_on(clock, challenges, Arc::new(provider), None, None).await
}

/// The same on the hosted Passlock provider against a fresh `FakePasslock`,
/// with passlock's own challenges or (`hosted_challenges`) Passlock's
/// mailbox challenges.
async fn build_hosted(
    clock: &ManualClock,
    hosted_challenges: Option<fn(HostedChallenges) -> HostedChallenges>,
) -> (Passlock<i64>, Rig) {
    build_hosted_on(clock, hosted_challenges, None).await
}

/// [`build_hosted`] with the challenge rows in `challenges`.
async fn build_hosted_on(
    clock: &ManualClock,
    hosted_challenges: Option<fn(HostedChallenges) -> HostedChallenges>,
    challenges: Option<Arc<dyn RecoveryChallenges>>,
) -> (Passlock<i64>, Rig) {
    use passlock_core::provider::passlock::PasslockHosted;
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
    build_on(
        clock,
        challenges,
        Arc::new(provider),
        Some(fake),
        hosted_challenges,
    )
    .await
}

async fn build_on(
    clock: &ManualClock,
    challenges: Option<Arc<dyn RecoveryChallenges>>,
    provider: Arc<dyn PasskeyProvider>,
    fake: Option<FakePasslock>,
    hosted_challenges: Option<fn(HostedChallenges) -> HostedChallenges>,
) -> (Passlock<i64>, Rig) {
    let rig = Rig {
        mailer: Arc::new(CapturingMailer::new()),
        directory: Arc::new(MapDirectory::new()),
        audit: Arc::new(Recorder::default()),
        fake: fake.map(Arc::new),
        code_len: if hosted_challenges.is_some() { 6 } else { 8 },
    };
    let mut recovery = Recovery::new(rig.mailer.clone(), rig.directory.clone());
    if let Some(store) = challenges {
        recovery = recovery.challenges(store);
    }
    if let (Some(fake), Some(configure)) = (&rig.fake, hosted_challenges) {
        // As an app wires it: the REST client of its hosted provider.
        let client = fake.provider().unwrap().client().clone();
        recovery = recovery.hosted_challenges(configure(HostedChallenges::new(client)));
    }
    let passlock = Passlock::builder(provider, Arc::new(MemoryAuthenticatorStore::<i64>::new()))
        .sign_up(Arc::new(harness::MemoryUsers::default()))
        .clock(Arc::new(clock.clone()))
        .trusted_proxy_header("x-test-client")
        .origins([harness::ORIGIN])
        .audit(rig.audit.clone())
        .recovery(recovery)
        .build()
        .unwrap();
    (passlock, rig)
}

async fn start<A: TestApp>(c: &mut Client<'_, A>, email: &str) -> harness::Reply {
    c.post("/passkey/recovery/start", json!({ "email": email }))
        .await
}

async fn verify<A: TestApp>(c: &mut Client<'_, A>, challenge: &str, code: &str) -> harness::Reply {
    c.post(
        "/passkey/recovery/verify",
        json!({ "challenge": challenge, "code": code }),
    )
    .await
}

/// A started recovery: the challenge id and the mailed code.
async fn challenge_and_code<A: TestApp>(
    c: &mut Client<'_, A>,
    rig: &Rig,
    email: &str,
    nth: usize,
) -> (String, String) {
    let r = start(c, email).await;
    assert_eq!(r.status, 202, "{r:?}");
    let challenge = r.json["challenge"].as_str().unwrap().to_owned();
    let code = rig
        .mailer
        .code_for(email, nth)
        .await
        .expect("the code was mailed");
    (challenge, code.expose_secret().to_owned())
}

/// A code of the same length that is not `code`.
fn wrong(code: &str) -> String {
    code.chars()
        .map(|d| if d == '0' { '1' } else { '0' })
        .collect()
}

/// A user who lost every passkey asks for a code, verifies it, is in a
/// recovery session that nothing accepts as signed in, enrolls a new
/// passkey and is then fully signed in; the new passkey signs in
/// elsewhere; the code cannot be replayed; the audit hook saw the three
/// recovery events.
async fn recovery_end_to_end<A: TestApp>(w: World<A>, rig: Rig) {
    let mut old = w.client();
    let mut lost = authenticator();
    let (uid, _) = old.sign_up(&mut lost, "alice").await;
    rig.directory.insert(ALICE, uid);

    let mut c = w.client();
    let (challenge, code) = challenge_and_code(&mut c, &rig, ALICE, 0).await;
    assert_eq!(
        code.len(),
        rig.code_len,
        "eight digits by default, Passlock's six"
    );
    let r = verify(&mut c, &challenge, &code).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], uid.to_string());

    // The recovery session is not a sign-in anywhere.
    assert_eq!(c.get("/app/me").await.json, json!({ "user_id": null }));
    c.post("/app/sensitive", json!({}))
        .await
        .assert_error(401, "not_authenticated");
    c.get("/passkey/session")
        .await
        .assert_error(401, "not_authenticated");
    c.get("/passkey/passkeys")
        .await
        .assert_error(401, "not_authenticated");
    c.post(
        "/passkey/authentication/authorize",
        json!({ "purpose": "step_up" }),
    )
    .await
    .assert_error(401, "not_authenticated");
    c.post_raw("/passkey/logout/everywhere", "application/json", Vec::new())
        .await
        .assert_error(401, "not_authenticated");

    // It enrolls one passkey, for its user, and becomes a full session
    // under a new session id.
    let before = c.cookie("id").map(str::to_owned);
    let mut found = authenticator();
    let (proof, aid) = c.registration_ceremony(&mut found, json!({})).await;
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json["user_id"], uid.to_string());
    assert_eq!(r.json["authenticator_id"], aid.as_str());
    assert_ne!(
        c.cookie("id").map(str::to_owned),
        before,
        "the session id cycled"
    );
    assert_eq!(c.session_user().await, Some(uid));
    let r = c.post("/app/sensitive", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(w.owner(&aid).await, Some(uid));

    // The new passkey signs in from another browser.
    let mut other = w.client();
    let r = other.login(&mut found).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], uid.to_string());

    // The code is spent.
    let mut thief = w.client();
    verify(&mut thief, &challenge, &code)
        .await
        .assert_error(401, "invalid_code");

    assert_eq!(
        rig.audit.recovery(),
        vec![
            ("recovery_requested", uid, None),
            ("recovery_used", uid, None),
            ("passkey_enrolled_by_recovery", uid, Some(aid)),
        ]
    );
}

/// `start` answers an address without an account exactly like one with
/// one (status, headers, body apart from the random challenge id) and
/// mails nothing for it; a code against its challenge is refused like a
/// wrong code.
async fn unknown_address_is_answered_like_a_known_one<A: TestApp>(w: World<A>, rig: Rig) {
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);

    let mut a = w.client();
    let mut b = w.client();
    let unknown = start(&mut a, "nobody@example.com").await;
    let known = start(&mut b, ALICE).await;
    assert_eq!(unknown.status, 202, "{unknown:?}");
    assert_eq!(known.status, 202, "{known:?}");
    let masked = |r: &harness::Reply| {
        let id = r.json["challenge"].as_str().unwrap();
        assert!(id.len() >= 16, "a random challenge id: {id}");
        r.text.replace(id, "<challenge>")
    };
    assert_eq!(masked(&unknown), masked(&known));
    let names = |r: &harness::Reply| {
        let mut h: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "date" | "content-length"))
            .cloned()
            .collect();
        h.sort();
        h
    };
    assert_eq!(names(&unknown), names(&known));
    assert_ne!(unknown.json["challenge"], known.json["challenge"]);

    // Alice's mail arrives; none was sent to the unknown address.
    let code = rig.mailer.code_for(ALICE, 0).await.unwrap();
    let sent: Vec<String> = rig
        .mailer
        .sent()
        .iter()
        .map(|s| s.to.as_str().to_owned())
        .collect();
    assert_eq!(sent, vec![ALICE.to_owned()]);

    let on_unknown = verify(
        &mut a,
        unknown.json["challenge"].as_str().unwrap(),
        code.expose_secret(),
    )
    .await;
    let wrong_on_known = verify(
        &mut b,
        known.json["challenge"].as_str().unwrap(),
        &wrong(code.expose_secret()),
    )
    .await;
    on_unknown.assert_error(401, "invalid_code");
    assert_eq!(on_unknown.text, wrong_on_known.text);
    assert_eq!(on_unknown.status, wrong_on_known.status);
    // Only the real account was audited.
    assert_eq!(
        rig.audit.recovery(),
        vec![("recovery_requested", uid, None)]
    );
}

/// Wrong codes count against the challenge: after five attempts even the
/// right code is refused with `429 code_attempts_exceeded`, and nothing
/// was signed in.
async fn wrong_codes_until_the_limit<A: TestApp>(w: World<A>, rig: Rig) {
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);
    let mut x = w.client();
    let (challenge, code) = challenge_and_code(&mut x, &rig, ALICE, 0).await;
    for _ in 0..5 {
        verify(&mut x, &challenge, &wrong(&code))
            .await
            .assert_error(401, "invalid_code");
    }
    verify(&mut x, &challenge, &code)
        .await
        .assert_error(429, "code_attempts_exceeded");
    assert_eq!(x.session_user().await, None);
    assert_eq!(
        rig.audit.recovery(),
        vec![("recovery_requested", uid, None)]
    );
}

/// An expired code, a code of another address's challenge, an unknown or
/// malformed challenge: all `401 invalid_code`; the right pair still works.
async fn expired_and_foreign_codes_are_refused<A: TestApp>(w: World<A>, rig: Rig) {
    let mut c = w.client();
    let (alice, _) = c.sign_up(&mut authenticator(), "alice").await;
    let mut d = w.client();
    let (bob, _) = d.sign_up(&mut authenticator(), "bob").await;
    rig.directory.insert(ALICE, alice);
    rig.directory.insert(BOB, bob);

    let mut x = w.client();
    let (old, old_code) = challenge_and_code(&mut x, &rig, ALICE, 0).await;
    w.clock.advance_secs(601);
    verify(&mut x, &old, &old_code)
        .await
        .assert_error(401, "invalid_code");

    let (for_alice, _) = challenge_and_code(&mut x, &rig, ALICE, 1).await;
    let mut y = w.client();
    let (for_bob, bob_code) = challenge_and_code(&mut y, &rig, BOB, 0).await;
    verify(&mut x, &for_alice, &bob_code)
        .await
        .assert_error(401, "invalid_code");
    verify(&mut x, "no-such-challenge", &bob_code)
        .await
        .assert_error(401, "invalid_code");
    verify(&mut x, "a b", &bob_code)
        .await
        .assert_error(401, "invalid_code");
    assert_eq!(x.session_user().await, None);
    let r = verify(&mut y, &for_bob, &bob_code).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], bob.to_string());
}

/// Malformed requests and limits on `start`: a non-address is `400
/// invalid_email`; the fourth request for one address within the window
/// is `429 throttled`, for an address with or without an account alike.
async fn start_is_validated_and_throttled_per_address<A: TestApp>(w: World<A>, rig: Rig) {
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);
    let mut x = w.client();
    start(&mut x, "not an address")
        .await
        .assert_error(400, "invalid_email");
    x.post("/passkey/recovery/start", json!({ "mail": ALICE }))
        .await
        .assert_error(400, "bad_request");
    for (i, email) in [ALICE, "nobody@example.com"].into_iter().enumerate() {
        let addr = format!("203.0.113.{}", 10 + i);
        for _ in 0..3 {
            let r = post_from(
                &mut x,
                &addr,
                "/passkey/recovery/start",
                json!({ "email": email }),
            )
            .await;
            assert_eq!(r.status, 202, "{r:?}");
        }
        let r = post_from(
            &mut x,
            &addr,
            "/passkey/recovery/start",
            json!({ "email": email }),
        )
        .await;
        r.assert_error(429, "throttled");
        assert!(r.header("retry-after").is_some(), "{r:?}");
    }
}

/// Without `PasslockBuilder::recovery`, the routes do not exist.
async fn routes_are_absent_when_recovery_is_off<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    start(&mut c, ALICE).await.assert_error(404, "not_found");
    verify(&mut c, "x", "12345678")
        .await
        .assert_error(404, "not_found");
}

/// The recovery session ends at its own lifetime, and when the app ends
/// the user's sessions.
async fn recovery_session_is_bounded<A: TestApp>(w: World<A>, rig: Rig) {
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);

    let mut x = w.client();
    let (challenge, code) = challenge_and_code(&mut x, &rig, ALICE, 0).await;
    assert_eq!(verify(&mut x, &challenge, &code).await.status, 200);
    w.clock.advance_secs(601);
    // Past its lifetime the session is anonymous again: an authorize is a
    // sign-up, which needs a username.
    x.post("/passkey/registration/authorize", json!({}))
        .await
        .assert_error(400, "invalid_username");

    let mut y = w.client();
    let (challenge, code) = challenge_and_code(&mut y, &rig, ALICE, 1).await;
    assert_eq!(verify(&mut y, &challenge, &code).await.status, 200);
    w.passlock.end_sessions_of(&uid).await.unwrap();
    y.post("/passkey/registration/authorize", json!({}))
        .await
        .assert_error(400, "invalid_username");
    assert_eq!(w.links(uid).await.len(), 1, "nothing was enrolled");
}

// ---- Passlock's mailbox challenges ----

/// The fake behind a rig on Passlock's mailbox challenges.
fn fake_of(rig: &Rig) -> Arc<FakePasslock> {
    rig.fake.clone().expect("a rig on the hosted provider")
}

/// Whether `secret` shows in the answer `r` (body or headers) or in the
/// cookies the browser `c` holds.
fn shows<A: TestApp>(c: &Client<'_, A>, r: &harness::Reply, secret: &str) -> bool {
    r.text.contains(secret)
        || r.headers.iter().any(|(_, v)| v.contains(secret))
        || c.cookies().contains(secret)
}

/// Passlock receives the documented wire (the `account-recovery` purpose,
/// the user's id, `sendEmail: false`: the app's mailer sends Passlock's
/// code); the browser sees neither Passlock's challenge id nor its secret;
/// the verification consumes Passlock's challenge.
async fn hosted_challenges_follow_the_wire<A: TestApp>(w: World<A>, rig: Rig) {
    let fake = fake_of(&rig);
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);

    let mut x = w.client();
    let started = start(&mut x, ALICE).await;
    assert_eq!(started.status, 202, "{started:?}");
    let challenge = started.json["challenge"].as_str().unwrap().to_owned();
    let code = rig.mailer.code_for(ALICE, 0).await.unwrap();
    let created = fake.created_challenges();
    assert_eq!(created.len(), 1, "one challenge at Passlock");
    let sent = &created[0];
    assert_eq!(sent.request.email, ALICE);
    assert_eq!(sent.request.purpose, "account-recovery");
    assert_eq!(
        sent.request.user_id.as_ref().map(|u| u.as_str().to_owned()),
        Some(uid.to_string())
    );
    assert_eq!(sent.request.send_email, Some(false));
    assert_eq!(
        fake.challenge_code(&sent.challenge_id).as_deref(),
        Some(code.expose_secret()),
        "the app mailed Passlock's code"
    );
    assert_ne!(challenge, sent.challenge_id);
    let secret = sent.secret.expose_secret();
    assert!(!shows(&x, &started, secret), "{started:?}");
    assert!(!shows(&x, &started, &sent.challenge_id), "{started:?}");

    let r = verify(&mut x, &challenge, code.expose_secret()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], uid.to_string());
    assert!(!shows(&x, &r, secret), "{r:?}");
    assert_eq!(fake.hits("verify_challenge"), 1);
    assert_eq!(
        fake.challenge_code(&sent.challenge_id),
        None,
        "the verification consumed it"
    );
}

/// Passlock counts the wrong codes of its challenge: after its third even
/// the right code is refused, `401 invalid_code` as for an address without
/// an account; passlock's own count answers `429 code_attempts_exceeded`
/// to the sixth attempt without asking Passlock. Nobody is signed in.
async fn hosted_wrong_codes_until_the_limit<A: TestApp>(w: World<A>, rig: Rig) {
    let fake = fake_of(&rig);
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);
    let mut x = w.client();
    let (challenge, code) = challenge_and_code(&mut x, &rig, ALICE, 0).await;
    for _ in 0..3 {
        verify(&mut x, &challenge, &wrong(&code))
            .await
            .assert_error(401, "invalid_code");
    }
    verify(&mut x, &challenge, &code)
        .await
        .assert_error(401, "invalid_code");
    verify(&mut x, &challenge, &wrong(&code))
        .await
        .assert_error(401, "invalid_code");
    verify(&mut x, &challenge, &code)
        .await
        .assert_error(429, "code_attempts_exceeded");
    assert_eq!(fake.hits("verify_challenge"), 5);
    assert_eq!(x.session_user().await, None);
    assert_eq!(
        rig.audit.recovery(),
        vec![("recovery_requested", uid, None)]
    );
}

/// An address without an account: answered like one with an account (the
/// shared test above), and Passlock got no challenge for it; its code
/// check takes a call to Passlock like a wrong code does.
async fn hosted_unknown_address_creates_no_challenge<A: TestApp>(w: World<A>, rig: Rig) {
    let fake = fake_of(&rig);
    unknown_address_is_answered_like_a_known_one(w, rig).await;
    let emails: Vec<String> = fake
        .created_challenges()
        .iter()
        .map(|c| c.request.email.clone())
        .collect();
    assert_eq!(emails, vec![ALICE.to_owned()]);
    assert_eq!(fake.hits("verify_challenge"), 2);
}

/// Passlock down: the code check answers `503 upstream_unavailable` and
/// signs nobody in; `start` still answers `202` (nothing tells an outage
/// from an address without an account). Once Passlock is back, the same
/// code works.
async fn hosted_outage_is_503<A: TestApp>(w: World<A>, rig: Rig) {
    let fake = fake_of(&rig);
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);
    let mut x = w.client();
    let (challenge, code) = challenge_and_code(&mut x, &rig, ALICE, 0).await;

    fake.set_route_fault(RouteFamily::Challenges, Fault::DropConnection);
    let r = verify(&mut x, &challenge, &code).await;
    r.assert_error(503, "upstream_unavailable");
    let secret = fake.created_challenges()[0].secret.clone();
    assert!(!shows(&x, &r, secret.expose_secret()), "{r:?}");
    assert_eq!(x.session_user().await, None);
    let r = start(&mut x, ALICE).await;
    assert_eq!(r.status, 202, "{r:?}");
    // The background call reached the fake (and failed) before it is back.
    let wait = async {
        while fake.hits("create_challenge") < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .expect("the second start called Passlock");

    fake.set_route_fault(RouteFamily::Challenges, Fault::None);
    let r = verify(&mut x, &challenge, &code).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], uid.to_string());
}

/// Passlock's other refusals answer as the local backend would: an expired
/// challenge `401 invalid_code`, its rate limit `429 throttled` with its
/// `Retry-After`, a refused API key `502 provider_refused`; none signs in,
/// and none reached the challenge: its code works afterwards.
async fn hosted_refusals_answer_like_local<A: TestApp>(w: World<A>, rig: Rig) {
    let fake = fake_of(&rig);
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);
    let mut x = w.client();
    let (challenge, code) = challenge_and_code(&mut x, &rig, ALICE, 0).await;
    let refusals = [
        (410, "ChallengeExpired", 401, "invalid_code"),
        (429, "ChallengeRateLimited", 429, "throttled"),
        (401, "Unauthorized", 502, "provider_refused"),
    ];
    for (status, tag, answer, error) in refusals {
        fake.set_route_fault(RouteFamily::Challenges, Fault::ApiError { status, tag });
        let r = verify(&mut x, &challenge, &code).await;
        r.assert_error(answer, error);
        if tag == "ChallengeRateLimited" {
            assert_eq!(r.header("retry-after"), Some("30"), "{r:?}");
        }
        assert_eq!(x.session_user().await, None);
    }
    fake.set_route_fault(RouteFamily::Challenges, Fault::None);
    let r = verify(&mut x, &challenge, &code).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// `passlock_sends_mail(true)`: Passlock is asked to mail the code
/// (`sendEmail: true`), the app's mailer sends nothing, and the code
/// Passlock mailed recovers the account.
async fn hosted_passlock_sends_the_mail<A: TestApp>(w: World<A>, rig: Rig) {
    let fake = fake_of(&rig);
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);
    let mut x = w.client();
    let started = start(&mut x, ALICE).await;
    assert_eq!(started.status, 202, "{started:?}");
    let challenge = started.json["challenge"].as_str().unwrap().to_owned();
    // Passlock is called after the answer, then the row is stored: wait
    // for both (a hang guard; a code before its row is an unknown
    // challenge, which counts against nothing per address).
    let mut verified = None;
    for i in 0..200 {
        if let Some(sent) = fake.created_challenges().first() {
            assert_eq!(sent.request.send_email, Some(true));
            let code = fake.challenge_code(&sent.challenge_id).unwrap();
            let body = json!({ "challenge": challenge, "code": code });
            let r = post_from(
                &mut x,
                &format!("198.51.100.{}", i % 250),
                "/passkey/recovery/verify",
                body,
            )
            .await;
            if r.status == 200 {
                verified = Some(r);
                break;
            }
            r.assert_error(401, "invalid_code");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = verified.expect("the code Passlock mailed was accepted");
    assert_eq!(r.json["user_id"], uid.to_string());
    assert!(rig.mailer.sent().is_empty(), "the app mailed nothing");
}

// ---- axum ----

fn axum_on<S: tower_sessions::SessionStore + Clone>(
    passlock: Passlock<i64>,
    clock: ManualClock,
    store: S,
) -> World<AxumApp> {
    let app = AxumApp(crate::axum::app(passlock.clone(), store));
    crate::revocation::axum_world(passlock, clock, app)
}

async fn axum_memory() -> (World<AxumApp>, Rig) {
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build(&clock, None).await;
    (axum_on(passlock, clock, MemoryStore::default()), rig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_memory_recovery_end_to_end() {
    let (w, rig) = axum_memory().await;
    recovery_end_to_end(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_sqlite_recovery_end_to_end() {
    let clock = ManualClock::starting_now();
    let pool = passlock_tests::sqlite_pool().await;
    passlock_core::store::sqlite::migrate(&pool).await.unwrap();
    let challenges = Arc::new(SqliteRecoveryChallenges::new(pool.clone()));
    let (passlock, rig) = build(&clock, Some(challenges)).await;
    let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
    store.migrate().await.unwrap();
    recovery_end_to_end(axum_on(passlock, clock, store), rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_postgres_recovery_end_to_end() {
    let (pool, guard) = passlock_tests::pg_database().await;
    passlock_core::store::postgres::migrate(&pool)
        .await
        .unwrap();
    let clock = ManualClock::starting_now();
    let challenges = Arc::new(PgRecoveryChallenges::new(pool.clone()));
    let (passlock, rig) = build(&clock, Some(challenges)).await;
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool.clone());
    store.migrate().await.unwrap();
    recovery_end_to_end(axum_on(passlock, clock, store), rig).await;
    pool.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_redis_recovery_end_to_end() {
    let keys = crate::redis::RedisKeys::default();
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build(&clock, None).await;
    let store = crate::redis::tracked(&keys).await;
    recovery_end_to_end(axum_on(passlock, clock, store), rig).await;
}

/// Recovery needs only the app's stores: the same journey on the hosted
/// Passlock provider (the new passkey is registered with the service).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_recovery_end_to_end() {
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build_hosted(&clock, None).await;
    recovery_end_to_end(axum_on(passlock, clock, MemoryStore::default()), rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_unknown_address_is_answered_like_a_known_one() {
    let (w, rig) = axum_memory().await;
    unknown_address_is_answered_like_a_known_one(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_wrong_codes_until_the_limit() {
    let (w, rig) = axum_memory().await;
    wrong_codes_until_the_limit(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_expired_and_foreign_codes_are_refused() {
    let (w, rig) = axum_memory().await;
    expired_and_foreign_codes_are_refused(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_start_is_validated_and_throttled_per_address() {
    let (w, rig) = axum_memory().await;
    start_is_validated_and_throttled_per_address(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_recovery_session_is_bounded() {
    let (w, rig) = axum_memory().await;
    recovery_session_is_bounded(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_routes_are_absent_when_recovery_is_off() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    routes_are_absent_when_recovery_is_off(axum_on(passlock, clock, MemoryStore::default())).await;
}

async fn axum_hosted_challenges() -> (World<AxumApp>, Rig) {
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build_hosted(&clock, Some(|h| h)).await;
    (axum_on(passlock, clock, MemoryStore::default()), rig)
}

/// Passlock's mailbox challenges: the journey of every backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_challenges_recovery_end_to_end() {
    let (w, rig) = axum_hosted_challenges().await;
    recovery_end_to_end(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_challenges_follow_the_wire() {
    let (w, rig) = axum_hosted_challenges().await;
    hosted_challenges_follow_the_wire(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_challenges_wrong_codes_until_the_limit() {
    let (w, rig) = axum_hosted_challenges().await;
    hosted_wrong_codes_until_the_limit(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_challenges_expired_and_foreign_codes_are_refused() {
    let (w, rig) = axum_hosted_challenges().await;
    expired_and_foreign_codes_are_refused(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_challenges_unknown_address_creates_no_challenge() {
    let (w, rig) = axum_hosted_challenges().await;
    hosted_unknown_address_creates_no_challenge(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_challenges_outage_is_503() {
    let (w, rig) = axum_hosted_challenges().await;
    hosted_outage_is_503(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_challenges_start_is_throttled_per_address() {
    let (w, rig) = axum_hosted_challenges().await;
    start_is_validated_and_throttled_per_address(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_challenges_refusals_answer_like_local() {
    let (w, rig) = axum_hosted_challenges().await;
    hosted_refusals_answer_like_local(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_challenges_passlock_sends_the_mail() {
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build_hosted(&clock, Some(|h| h.passlock_sends_mail(true))).await;
    let w = axum_on(passlock, clock, MemoryStore::default());
    hosted_passlock_sends_the_mail(w, rig).await;
}

/// A challenge store whose database refuses new rows.
#[derive(Debug)]
struct RefusingChallenges(MemoryRecoveryChallenges);

#[async_trait::async_trait]
impl RecoveryChallenges for RefusingChallenges {
    async fn create(&self, _: &NewChallenge) -> Result<(), StoreError> {
        Err(StoreError::backend("the database is down"))
    }
    async fn attempt(&self, id: &ChallengeId, now: UnixMillis) -> Result<Attempt, StoreError> {
        self.0.attempt(id, now).await
    }
    async fn mark_used(
        &self,
        id: &ChallengeId,
        now: UnixMillis,
        keep_until: UnixMillis,
    ) -> Result<bool, StoreError> {
        self.0.mark_used(id, now, keep_until).await
    }
    async fn take_used(&self, id: &ChallengeId, now: UnixMillis) -> Result<bool, StoreError> {
        self.0.take_used(id, now).await
    }
    async fn delete(&self, id: &ChallengeId) -> Result<bool, StoreError> {
        self.0.delete(id).await
    }
}

/// When the row cannot be stored after Passlock made its challenge,
/// nobody could ever verify that challenge: passlock deletes it at
/// Passlock (`DELETE /challenges/{id}`) and mails nothing; `start` still
/// answered `202`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_challenges_orphan_is_deleted() {
    let clock = ManualClock::starting_now();
    let rows = RefusingChallenges(MemoryRecoveryChallenges::new(Arc::new(clock.clone())));
    let (passlock, rig) = build_hosted_on(&clock, Some(|h| h), Some(Arc::new(rows))).await;
    let w = axum_on(passlock, clock, MemoryStore::default());
    let fake = fake_of(&rig);
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);
    let mut x = w.client();
    let r = start(&mut x, ALICE).await;
    assert_eq!(r.status, 202, "{r:?}");
    let wait = async {
        while fake.hits("delete_challenge") < 1 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .expect("the orphaned challenge was deleted");
    let created = fake.created_challenges();
    assert_eq!(created.len(), 1);
    assert_eq!(fake.challenge_code(&created[0].challenge_id), None);
    assert!(
        rig.mailer.sent().is_empty(),
        "no mail for a code nobody can verify"
    );
}

/// An outage is not the user's failure: twelve `503`s on one address's
/// challenges (more than its 10 failures per hour) leave its failure count
/// untouched, and the right code works once Passlock is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_hosted_challenges_outage_counts_no_failures() {
    let (w, rig) = axum_hosted_challenges().await;
    let fake = fake_of(&rig);
    let mut c = w.client();
    let (uid, _) = c.sign_up(&mut authenticator(), "alice").await;
    rig.directory.insert(ALICE, uid);
    let mut x = w.client();
    let mut started = Vec::new();
    for nth in 0..3 {
        started.push(challenge_and_code(&mut x, &rig, ALICE, nth).await);
    }
    fake.set_route_fault(RouteFamily::Challenges, Fault::DropConnection);
    for (i, (challenge, code)) in started.iter().enumerate() {
        for j in 0..4 {
            let body = json!({ "challenge": challenge, "code": code });
            let addr = format!("198.51.100.{}", 10 * i + j + 1);
            let r = post_from(&mut x, &addr, "/passkey/recovery/verify", body).await;
            r.assert_error(503, "upstream_unavailable");
        }
    }
    fake.set_route_fault(RouteFamily::Challenges, Fault::None);
    let (challenge, code) = &started[2];
    let r = verify(&mut x, challenge, code).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], uid.to_string());
}

// ---- actix ----

async fn actix_sqlite(challenges: bool) -> (World<crate::actix::ActixApp>, Rig) {
    let clock = ManualClock::starting_now();
    let pool = passlock_tests::sqlite_pool().await;
    passlock_core::store::sqlite::migrate(&pool).await.unwrap();
    let store: Option<Arc<dyn RecoveryChallenges>> = match challenges {
        true => Some(Arc::new(SqliteRecoveryChallenges::new(pool.clone()))),
        false => Some(Arc::new(MemoryRecoveryChallenges::new(Arc::new(
            clock.clone(),
        )))),
    };
    let (passlock, rig) = build(&clock, store).await;
    let sessions = SqlSessionStore::sqlite(pool);
    sessions.migrate().await.unwrap();
    (actix_world(passlock, clock, sessions, Key::generate()), rig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_sqlite_recovery_end_to_end() {
    let (w, rig) = actix_sqlite(true).await;
    recovery_end_to_end(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_postgres_recovery_end_to_end() {
    let (pool, guard) = passlock_tests::pg_database().await;
    passlock_core::store::postgres::migrate(&pool)
        .await
        .unwrap();
    let clock = ManualClock::starting_now();
    let challenges = Arc::new(PgRecoveryChallenges::new(pool.clone()));
    let (passlock, rig) = build(&clock, Some(challenges)).await;
    let sessions = SqlSessionStore::postgres(pool.clone());
    sessions.migrate().await.unwrap();
    let w = actix_world(passlock, clock, sessions, Key::generate());
    recovery_end_to_end(w, rig).await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_redis_recovery_end_to_end() {
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build(&clock, None).await;
    let keys = passlock_tests::redis_prefix("passlock_recovery").await;
    let prefix = keys.prefix().to_owned();
    let store = RedisSessionStore::builder(passlock_tests::redis_url())
        .cache_keygen(move |k| format!("{prefix}{k}"))
        .build()
        .await
        .unwrap();
    let w = actix_world(passlock, clock, store, Key::generate());
    recovery_end_to_end(w, rig).await;
    drop(keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_hosted_recovery_end_to_end() {
    let clock = ManualClock::starting_now();
    let (passlock, rig) = build_hosted(&clock, None).await;
    let sessions = SqlSessionStore::sqlite(passlock_tests::sqlite_pool().await);
    sessions.migrate().await.unwrap();
    let w = actix_world(passlock, clock, sessions, Key::generate());
    recovery_end_to_end(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_unknown_address_is_answered_like_a_known_one() {
    let (w, rig) = actix_sqlite(false).await;
    unknown_address_is_answered_like_a_known_one(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_wrong_codes_until_the_limit() {
    let (w, rig) = actix_sqlite(true).await;
    wrong_codes_until_the_limit(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_expired_and_foreign_codes_are_refused() {
    let (w, rig) = actix_sqlite(false).await;
    expired_and_foreign_codes_are_refused(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_start_is_validated_and_throttled_per_address() {
    let (w, rig) = actix_sqlite(false).await;
    start_is_validated_and_throttled_per_address(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_recovery_session_is_bounded() {
    let (w, rig) = actix_sqlite(true).await;
    recovery_session_is_bounded(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_routes_are_absent_when_recovery_is_off() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let pool = passlock_tests::sqlite_pool().await;
    let sessions = SqlSessionStore::sqlite(pool);
    sessions.migrate().await.unwrap();
    routes_are_absent_when_recovery_is_off(actix_world(passlock, clock, sessions, Key::generate()))
        .await;
}

async fn actix_hosted_challenges() -> (World<crate::actix::ActixApp>, Rig) {
    let clock = ManualClock::starting_now();
    let pool = passlock_tests::sqlite_pool().await;
    passlock_core::store::sqlite::migrate(&pool).await.unwrap();
    let (passlock, rig) = build_hosted(&clock, Some(|h| h)).await;
    let sessions = SqlSessionStore::sqlite(pool);
    sessions.migrate().await.unwrap();
    (actix_world(passlock, clock, sessions, Key::generate()), rig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_hosted_challenges_recovery_end_to_end() {
    let (w, rig) = actix_hosted_challenges().await;
    recovery_end_to_end(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_hosted_challenges_follow_the_wire() {
    let (w, rig) = actix_hosted_challenges().await;
    hosted_challenges_follow_the_wire(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_hosted_challenges_wrong_codes_until_the_limit() {
    let (w, rig) = actix_hosted_challenges().await;
    hosted_wrong_codes_until_the_limit(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_hosted_challenges_expired_and_foreign_codes_are_refused() {
    let (w, rig) = actix_hosted_challenges().await;
    expired_and_foreign_codes_are_refused(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_hosted_challenges_unknown_address_creates_no_challenge() {
    let (w, rig) = actix_hosted_challenges().await;
    hosted_unknown_address_creates_no_challenge(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_hosted_challenges_outage_is_503() {
    let (w, rig) = actix_hosted_challenges().await;
    hosted_outage_is_503(w, rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_hosted_challenges_refusals_answer_like_local() {
    let (w, rig) = actix_hosted_challenges().await;
    hosted_refusals_answer_like_local(w, rig).await;
}

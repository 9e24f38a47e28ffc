//! Hardening scenarios, written once against [`TestApp`] and instantiated
//! per adapter with [`hardening_scenarios!`]: throttling of failed proofs
//! and races (one code, one id_token, one ceremony token and one session
//! token each redeemed by many requests at once, concurrent sign-ups with
//! one username, concurrent deletes of one user's passkeys and a passkey
//! added while the last is deleted, logout racing a step-up). Upstream
//! faults (timeouts, bad answers, the circuit breaker) run per adapter
//! against FakePasslock.

use futures_util::future::join_all;
use serde_json::{Value, json};

use passlock_core::AuthenticatorId;
use passlock_test::authenticator::SoftAuthenticator;

use crate::harness::{
    Client, ORIGIN, Reply, TestApp, World, authenticator, post_from, service_base,
};

fn bogus_code(i: usize) -> Value {
    json!({ "code": format!("bogus-code-{i:04}-aaaaaaaaaaaaaaaaaaaaaaaa") })
}

/// Ten failed log-ins from one address throttle that address (429,
/// `Retry-After`, no session) but not another address; the window ends on
/// the clock; a signed-in session behind the throttled address can still
/// step up; a throttled request does not consume a good code.
pub(crate) async fn failed_proofs_are_throttled_per_address<A: TestApp>(w: World<A>) {
    let mut user = w.client();
    let mut auth = authenticator();
    let (uid, _) = user.sign_up(&mut auth, "alice").await;

    let mut attacker = w.client();
    for i in 0..10 {
        let r = post_from(
            &mut attacker,
            "203.0.113.7",
            "/passkey/login",
            bogus_code(i),
        )
        .await;
        r.assert_error(401, "invalid_token");
    }
    let r = post_from(
        &mut attacker,
        "203.0.113.7",
        "/passkey/login",
        bogus_code(99),
    )
    .await;
    r.assert_error(429, "throttled");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{r:?}");
    assert_eq!(
        attacker.session_user().await,
        None,
        "no session when throttled"
    );

    // Another address is not affected.
    let mut other = w.client();
    let r = post_from(&mut other, "198.51.100.1", "/passkey/login", bogus_code(0)).await;
    r.assert_error(401, "invalid_token");

    // A log-in with a good code from the throttled address waits, and its
    // code is not consumed: it works from another address.
    let mut neighbour = w.client();
    let code = neighbour.authentication_ceremony(&mut auth, "login").await;
    let r = post_from(
        &mut neighbour,
        "203.0.113.7",
        "/passkey/login",
        json!({ "code": code }),
    )
    .await;
    r.assert_error(429, "throttled");
    let r = post_from(
        &mut neighbour,
        "198.51.100.2",
        "/passkey/login",
        json!({ "code": code }),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");

    // The signed-in user behind the same address is not locked out of step-up.
    let code = user.authentication_ceremony(&mut auth, "step_up").await;
    let r = post_from(
        &mut user,
        "203.0.113.7",
        "/passkey/step-up",
        json!({ "code": code }),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(user.session_user().await, Some(uid));

    // The window ends.
    w.clock.advance_secs(301);
    let r = post_from(
        &mut attacker,
        "203.0.113.7",
        "/passkey/login",
        bogus_code(7),
    )
    .await;
    r.assert_error(401, "invalid_token");
}

/// Five failed step-ups of one user throttle that user's step-ups from any
/// address; a success after the window resets the counter.
pub(crate) async fn failed_step_ups_are_throttled_per_user<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    let (uid, _) = c.sign_up(&mut auth, "alice").await;
    for i in 0..5 {
        let addr = format!("192.0.2.{i}");
        let r = post_from(&mut c, &addr, "/passkey/step-up", bogus_code(i)).await;
        r.assert_error(401, "invalid_token");
    }
    let code = c.authentication_ceremony(&mut auth, "step_up").await;
    let r = post_from(
        &mut c,
        "192.0.2.200",
        "/passkey/step-up",
        json!({ "code": code }),
    )
    .await;
    r.assert_error(429, "throttled");
    assert!(r.header("retry-after").is_some());
    assert_eq!(c.session_user().await, Some(uid), "the session is kept");
    w.clock.advance_secs(301);
    // (The code may have expired with the window on a provider on the
    // manual clock: a fresh ceremony.)
    let code = c.authentication_ceremony(&mut auth, "step_up").await;
    let r = post_from(
        &mut c,
        "192.0.2.200",
        "/passkey/step-up",
        json!({ "code": code }),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    // The success reset the user's counter: five more failures are allowed.
    for i in 0..5 {
        let r = post_from(&mut c, "192.0.2.201", "/passkey/step-up", bogus_code(i)).await;
        r.assert_error(401, "invalid_token");
    }
}

/// One login code posted by 50 browsers at once signs in exactly one.
pub(crate) async fn one_code_redeemed_concurrently_succeeds_once<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    let (uid, _) = c.sign_up(&mut auth, "alice").await;
    let code = c.authentication_ceremony(&mut auth, "login").await;
    let mut clients: Vec<_> = (0..50).map(|_| w.client()).collect();
    let replies = join_all(clients.iter_mut().enumerate().map(|(i, c)| {
        let addr = format!("10.0.{}.{}", i / 200, i % 200);
        let body = json!({ "code": code });
        async move { post_from(c, &addr, "/passkey/login", body).await }
    }))
    .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "{replies:?}");
    for r in replies.iter().filter(|r| r.status != 200) {
        r.assert_error(401, "invalid_token");
    }
    let mut signed_in = 0;
    for c in &mut clients {
        if let Some(u) = c.session_user().await {
            assert_eq!(u, uid);
            signed_in += 1;
        }
    }
    assert_eq!(signed_in, 1);
}

/// Two sign-ups of one username finishing at once: exactly one user, the
/// other answer is a 409 and its passkey is linked to nobody.
pub(crate) async fn concurrent_sign_ups_of_one_username_create_one_user<A: TestApp>(w: World<A>) {
    let mut clients: Vec<_> = (0..8).map(|_| w.client()).collect();
    let mut codes = Vec::new();
    for c in &mut clients {
        let mut auth = authenticator();
        codes.push(
            c.registration_ceremony(&mut auth, json!({ "username": "bob" }))
                .await,
        );
    }
    let replies = join_all(
        clients
            .iter_mut()
            .zip(&codes)
            .map(|(c, (code, _))| c.post("/passkey/register", json!({ "code": code }))),
    )
    .await;
    let winners: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(winners.len(), 1, "{replies:?}");
    let uid: i64 = winners[0].json["user_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for ((r, (_, aid)), c) in replies.iter().zip(&codes).zip(&mut clients) {
        if r.status == 201 {
            assert_eq!(w.owner(aid).await, Some(uid));
        } else {
            r.assert_error(409, "sign_up_refused");
            assert_eq!(w.owner(aid).await, None, "an orphan link");
            assert_eq!(c.session_user().await, None);
        }
    }
    assert_eq!(w.links(uid).await.len(), 1);
}

/// Logout and step-up on one session at once: after both, no session of
/// that sign-in survives: the logged-out cookie is dead, the browser that
/// logged out is signed out, and the step-up's session (written or not) is
/// signed out too.
pub(crate) async fn logout_racing_a_step_up_kills_the_logged_out_cookie<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    c.sign_up(&mut auth, "alice").await;
    let code = c.authentication_ceremony(&mut auth, "step_up").await;
    let mut twin = w.client();
    twin.set_cookies(&c);
    let mut old = w.client();
    old.set_cookies(&c);
    let (logout, step_up) = futures_util::join!(
        c.post_raw("/passkey/logout", "application/json", Vec::new()),
        twin.post("/passkey/step-up", json!({ "code": code }))
    );
    assert_eq!(logout.status, 204, "{logout:?}");
    assert_eq!(c.session_user().await, None);
    assert_eq!(
        old.session_user().await,
        None,
        "the logged-out cookie is dead"
    );
    match step_up.status {
        // The step-up found no session: it must not have written one.
        401 => {
            step_up.assert_error(401, "not_authenticated");
            assert_eq!(twin.session_user().await, None);
        }
        // A step-up that loaded the session before the logout deleted it
        // may write it back under its new id: that sign-in is revoked, so
        // it reads as signed out. (The check has to be on the new id: the
        // old cookie is dead whatever happened, so asking with it proves
        // nothing.)
        200 => {
            assert_ne!(
                twin.cookies(),
                old.cookies(),
                "the step-up answered with a new session id: {step_up:?}"
            );
            assert_eq!(
                twin.session_user().await,
                None,
                "a logged-out sign-in came back"
            );
            assert_eq!(twin.get("/app/me").await.json["user_id"], Value::Null);
        }
        _ => panic!("{step_up:?}"),
    }
}

/// `n` fresh browsers, each posting `body` to `path` at once from an
/// address of its own; returns the browsers (to ask who got a session) and
/// the answers, in order.
async fn race<'w, A: TestApp>(
    w: &'w World<A>,
    n: usize,
    path: &str,
    body: &Value,
) -> (Vec<Client<'w, A>>, Vec<Reply>) {
    let mut clients: Vec<_> = (0..n).map(|_| w.client()).collect();
    let replies = join_all(clients.iter_mut().enumerate().map(|(i, c)| {
        let addr = format!("10.1.{}.{}", i / 200, i % 200);
        async move { post_from(c, &addr, path, body.clone()).await }
    }))
    .await;
    (clients, replies)
}

/// The one answer with status `ok`; every other one must satisfy `loser`.
#[track_caller]
fn exactly_one(replies: &[Reply], ok: u16, loser: impl Fn(&Reply)) -> &Reply {
    let winners: Vec<_> = replies.iter().filter(|r| r.status == ok).collect();
    assert_eq!(winners.len(), 1, "{replies:?}");
    for r in replies.iter().filter(|r| r.status != ok) {
        loser(r);
    }
    winners[0]
}

/// An embedded provider's refusal of a used or unknown token or session
/// token (`403 @error/InvalidChallenge`, code `invalid_token`), carrying
/// nothing a browser could continue with.
#[track_caller]
fn assert_invalid_challenge(r: &Reply) {
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json["_tag"], "@error/InvalidChallenge", "{r:?}");
    assert_eq!(r.json["code"], "invalid_token", "{r:?}");
    for field in ["sessionToken", "optionsJSON", "id_token", "principal"] {
        assert!(r.json.get(field).is_none(), "{field} in {r:?}");
    }
}

/// How many of `clients` are signed in; each one signed in is `user`.
async fn signed_in<A: TestApp>(clients: &mut [Client<'_, A>], user: i64) -> usize {
    let mut n = 0;
    for c in clients {
        if let Some(u) = c.session_user().await {
            assert_eq!(u, user);
            n += 1;
        }
    }
    n
}

/// The embedded provider's signature counter of `authenticator`, or `None`
/// when the provider does not hold it.
async fn sign_count<A: TestApp>(w: &World<A>, authenticator: &str) -> Option<u32> {
    let aid = AuthenticatorId::new(authenticator).unwrap();
    w.passlock
        .provider()
        .embedded()
        .unwrap()
        .credential_store()
        .get(&aid)
        .await
        .unwrap()
        .map(|c| c.sign_count)
}

/// One id_token posted by 50 browsers at once signs in exactly one; the
/// others are told it was replayed.
pub(crate) async fn one_id_token_redeemed_concurrently_succeeds_once<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    let (uid, _) = c.sign_up(&mut auth, "alice").await;
    let verified = c.authentication_verified(&mut auth, "login").await;
    let token = verified.json["id_token"].as_str().unwrap();
    let (mut clients, replies) =
        race(&w, 50, "/passkey/login", &json!({ "id_token": token })).await;
    let winner = exactly_one(&replies, 200, |r| r.assert_error(401, "replayed"));
    assert_eq!(winner.json["user_id"], uid.to_string(), "{winner:?}");
    assert_eq!(signed_in(&mut clients, uid).await, 1);
}

/// One registration token and one authentication token, each posted to the
/// provider's options route by 50 requests at once: one set of options, the
/// others refused; the winner's ceremony then completes.
pub(crate) async fn one_ceremony_token_redeemed_concurrently_succeeds_once<A: TestApp>(
    w: World<A>,
) {
    let mut c = w.client();
    let mut auth = authenticator();
    let r = raced_ceremony(&w, &mut c, &mut auth, Ceremony::Registration).await;
    assert_eq!(r.status, 201, "{r:?}");
    let uid: i64 = r.json["user_id"].as_str().unwrap().parse().unwrap();

    let mut other = w.client();
    let r = raced_ceremony(&w, &mut other, &mut auth, Ceremony::Authentication).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(other.session_user().await, Some(uid));
}

#[derive(Clone, Copy)]
enum Ceremony {
    /// Sign-up of "alice".
    Registration,
    /// Login.
    Authentication,
}

/// Authorizes a ceremony for `c`, posts its token to the provider's options
/// route from 50 browsers at once (exactly one gets options), completes the
/// winner's ceremony with `auth` and redeems its code; returns that answer.
async fn raced_ceremony<A: TestApp>(
    w: &World<A>,
    c: &mut Client<'_, A>,
    auth: &mut SoftAuthenticator,
    ceremony: Ceremony,
) -> Reply {
    let (kind, authorize_body, token, route) = match ceremony {
        Ceremony::Registration => (
            "registration",
            json!({ "username": "alice" }),
            "registrationToken",
            "/passkey/register",
        ),
        Ceremony::Authentication => (
            "authentication",
            json!({ "purpose": "login" }),
            "authenticationToken",
            "/passkey/login",
        ),
    };
    let answer = c
        .post(&format!("/passkey/{kind}/authorize"), authorize_body)
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let base = service_base(&answer.json);
    let body = json!({ token: answer.json[token] });
    let (_, replies) = race(w, 50, &format!("{base}/{kind}/options"), &body).await;
    let options = exactly_one(&replies, 200, assert_invalid_challenge);
    let response = match ceremony {
        Ceremony::Registration => auth.create(&options.json["optionsJSON"]).await,
        Ceremony::Authentication => auth.get(&options.json["optionsJSON"]).await,
    }
    .unwrap();
    let verified = c
        .post(
            &format!("{base}/{kind}/verification"),
            json!({ "response": response, "sessionToken": options.json["sessionToken"] }),
        )
        .await;
    assert_eq!(verified.status, 200, "{verified:?}");
    let proof = c.proof(verified.json["code"].as_str().unwrap());
    c.post(route, proof).await
}

/// One signed assertion and one attestation, each posted with its session
/// token to the provider's verification route by 50 requests at once: one
/// success (one code), the others refused; the signature counter moves once
/// and the new passkey is stored once.
pub(crate) async fn one_session_token_redeemed_concurrently_succeeds_once<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    let (uid, aid) = c.sign_up(&mut auth, "alice").await;
    let before = sign_count(&w, &aid).await.unwrap();

    let answer = c
        .post(
            "/passkey/authentication/authorize",
            json!({ "purpose": "step_up" }),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let base = service_base(&answer.json);
    let options = c
        .post(
            &format!("{base}/authentication/options"),
            json!({ "authenticationToken": answer.json["authenticationToken"] }),
        )
        .await;
    assert_eq!(options.status, 200, "{options:?}");
    let response = auth.get(&options.json["optionsJSON"]).await.unwrap();
    let body = json!({ "response": response, "sessionToken": options.json["sessionToken"] });
    let (_, replies) = race(
        &w,
        50,
        &format!("{base}/authentication/verification"),
        &body,
    )
    .await;
    let winner = exactly_one(&replies, 200, assert_invalid_challenge);
    assert_eq!(
        sign_count(&w, &aid).await.unwrap(),
        before + 1,
        "the counter moved once"
    );
    let r = c
        .post(
            "/passkey/step-up",
            c.proof(winner.json["code"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // A second passkey for the signed-in user: one attestation, 50 times.
    let answer = c.post("/passkey/registration/authorize", json!({})).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let base = service_base(&answer.json);
    let options = c
        .post(
            &format!("{base}/registration/options"),
            json!({ "registrationToken": answer.json["registrationToken"] }),
        )
        .await;
    assert_eq!(options.status, 200, "{options:?}");
    let mut second = authenticator();
    let response = second.create(&options.json["optionsJSON"]).await.unwrap();
    let body = json!({ "response": response, "sessionToken": options.json["sessionToken"] });
    let (_, replies) = race(&w, 50, &format!("{base}/registration/verification"), &body).await;
    let winner = exactly_one(&replies, 200, assert_invalid_challenge);
    let aid2 = winner.json["principal"]["authenticatorId"]
        .as_str()
        .unwrap();
    assert_eq!(sign_count(&w, aid2).await, Some(0), "stored once");
    let r = c
        .post(
            "/passkey/register",
            c.proof(winner.json["code"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let mut both = vec![aid.clone(), aid2.to_owned()];
    both.sort();
    assert_eq!(w.links(uid).await, both);
}

/// Deletes of one user's passkeys racing each other: one passkey deleted
/// by 50 requests is deleted once and the other is untouched; concurrent
/// deletes of both of the last two passkeys leave at least one, linked and
/// still known to the provider.
pub(crate) async fn concurrent_unlinks_keep_the_last_passkey<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auths = vec![authenticator()];
    let (uid, first) = c.sign_up(&mut auths[0], "alice").await;
    let mut aids = vec![first];
    for _ in 0..2 {
        let mut auth = authenticator();
        let (code, aid) = c.registration_ceremony(&mut auth, json!({})).await;
        let r = c.post("/passkey/register", c.proof(&code)).await;
        assert_eq!(r.status, 201, "{r:?}");
        auths.push(auth);
        aids.push(aid);
    }
    let mut clients: Vec<_> = (0..50).map(|_| w.client()).collect();
    for twin in &mut clients {
        twin.set_cookies(&c);
    }

    // One passkey, 50 deletes.
    let path = format!("/passkey/passkeys/{}", aids[0]);
    let replies = join_all(clients.iter_mut().map(|c| c.delete(&path))).await;
    exactly_one(&replies, 204, |r| r.assert_error(404, "not_found"));
    let mut rest = aids[1..].to_vec();
    rest.sort();
    assert_eq!(w.links(uid).await, rest);
    assert_eq!(sign_count(&w, &aids[0]).await, None, "deleted in the vault");
    for aid in &rest {
        assert!(sign_count(&w, aid).await.is_some(), "{aid} untouched");
    }

    // The last two passkeys, 25 deletes each, interleaved.
    let paths: Vec<_> = (0..50)
        .map(|i| format!("/passkey/passkeys/{}", rest[i % 2]))
        .collect();
    let replies = join_all(clients.iter_mut().zip(&paths).map(|(c, p)| c.delete(p))).await;
    let statuses: Vec<_> = replies.iter().map(|r| r.status).collect();
    let left = w.links(uid).await;
    assert!(
        !left.is_empty(),
        "both of the last two passkeys were deleted: {statuses:?}"
    );
    let deleted = statuses.iter().filter(|s| **s == 204).count();
    assert_eq!(deleted + left.len(), 2, "{statuses:?}");
    for r in replies.iter().filter(|r| r.status != 204) {
        assert!(
            // A twin whose request loaded the session after the passkey
            // it stands on was removed is signed out (issue 16.2).
            matches!(
                r.json["error"].as_str(),
                Some("not_found" | "last_authenticator" | "not_authenticated")
            ),
            "{r:?}"
        );
    }
    // What is left is still a working passkey.
    for aid in &left {
        assert!(sign_count(&w, aid).await.is_some(), "{aid} linked but gone");
    }
    let i = aids.iter().position(|a| *a == left[0]).unwrap();
    let mut fresh = w.client();
    let r = fresh.login(&mut auths[i]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(fresh.session_user().await, Some(uid));
}

/// A passkey added (linked) while the account's only other passkey is
/// deleted (unlinked), five times over: the new passkey is always linked,
/// and the delete either wins (204, the new one is left) or is refused as
/// the last passkey (409, both are left); never an account without one.
pub(crate) async fn adding_a_passkey_while_deleting_the_last_keeps_one<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    let (uid, mut only) = c.sign_up(&mut auth, "alice").await;
    for _ in 0..5 {
        let mut next = authenticator();
        let (code, added) = c.registration_ceremony(&mut next, json!({})).await;
        // The delete comes from another signed-in browser: a registration
        // cycles its own session's id.
        let mut twin = w.client();
        let r = twin.login(&mut auth).await;
        assert_eq!(r.status, 200, "{r:?}");
        let body = c.proof(&code);
        let path = format!("/passkey/passkeys/{only}");
        let (register, delete) =
            futures_util::join!(c.post("/passkey/register", body), twin.delete(&path));
        assert_eq!(register.status, 201, "{register:?}");
        let left = w.links(uid).await;
        match delete.status {
            204 => assert_eq!(left, vec![added.clone()]),
            409 => {
                delete.assert_error(409, "last_authenticator");
                let mut both = vec![only.clone(), added.clone()];
                both.sort();
                assert_eq!(left, both);
                let r = twin.delete(&path).await;
                assert_eq!(r.status, 204, "{r:?}");
            }
            _ => panic!("{delete:?}"),
        }
        assert_eq!(w.links(uid).await, vec![added.clone()]);
        assert!(sign_count(&w, &added).await.is_some());
        assert_eq!(sign_count(&w, &only).await, None, "deleted in the vault");
        only = added;
        auth = next;
    }
    let mut fresh = w.client();
    let r = fresh.login(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// Instantiates the hardening scenarios for one adapter, given a function
/// returning a fresh `World<impl TestApp>`.
#[macro_export]
macro_rules! hardening_scenarios {
    ($world:path) => {
        $crate::hardening_scenarios!(@each $world;
            failed_proofs_are_throttled_per_address,
            failed_step_ups_are_throttled_per_user,
            one_code_redeemed_concurrently_succeeds_once,
            concurrent_sign_ups_of_one_username_create_one_user,
            logout_racing_a_step_up_kills_the_logged_out_cookie,
            one_id_token_redeemed_concurrently_succeeds_once,
            one_ceremony_token_redeemed_concurrently_succeeds_once,
            one_session_token_redeemed_concurrently_succeeds_once,
            concurrent_unlinks_keep_the_last_passkey,
            adding_a_passkey_while_deleting_the_last_keeps_one,
        );
    };
    (@each $world:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::hardening::$name($world().await).await;
            }
        )*
    };
}

/// A passlock on the hosted provider against `fake`, with a 1 s outbound
/// timeout, user 1 linked to authenticator `auth-1`.
pub(crate) async fn hosted_passlock(
    fake: &passlock_test::fake_passlock::FakePasslock,
) -> passlock_core::Passlock<i64> {
    use passlock_core::http::HttpConfig;
    hosted_passlock_with(
        fake,
        HttpConfig::default().with_timeout(std::time::Duration::from_secs(1)),
    )
    .await
}

/// A fresh `FakePasslock` on a manual clock and a passlock on it (see
/// [`hosted_passlock`]), with the circuit breaker when `breaker`.
pub(crate) async fn hosted_setup(
    breaker: bool,
) -> (
    passlock_core::clock::ManualClock,
    passlock_test::fake_passlock::FakePasslock,
    passlock_core::Passlock<i64>,
) {
    let clock = passlock_core::clock::ManualClock::starting_now();
    let fake = passlock_test::fake_passlock::FakePasslock::start_with_clock(std::sync::Arc::new(
        clock.clone(),
    ))
    .await
    .unwrap();
    let passlock = match breaker {
        true => hosted_passlock_with(&fake, breaker_config()).await,
        false => hosted_passlock(&fake).await,
    };
    (clock, fake, passlock)
}

/// The circuit breaker of [`open_circuit_answers_at_once_and_recovers`]:
/// three outages open it for [`COOLDOWN`].
pub(crate) fn breaker_config() -> passlock_core::http::HttpConfig {
    use passlock_core::http::{CircuitBreaker, HttpConfig};
    HttpConfig::default()
        .with_timeout(std::time::Duration::from_secs(1))
        .with_circuit_breaker(CircuitBreaker {
            failures: 3,
            open_for: COOLDOWN,
        })
}

/// How long the breaker of [`breaker_config`] stays open, on the passlock's
/// (manual) clock: the tests move the clock past it, they never sleep.
const COOLDOWN: std::time::Duration = std::time::Duration::from_secs(10);

/// [`hosted_passlock`] with outbound HTTP configured by `http`.
pub(crate) async fn hosted_passlock_with(
    fake: &passlock_test::fake_passlock::FakePasslock,
    http: passlock_core::http::HttpConfig,
) -> passlock_core::Passlock<i64> {
    use passlock_core::provider::passlock::PasslockHosted;
    use std::sync::Arc;
    let config = fake.client_config().with_http(http);
    let provider = PasslockHosted::new(config, "localhost", "Fake app", fake.clock()).unwrap();
    let store = Arc::new(passlock_core::store::MemoryAuthenticatorStore::<i64>::new());
    let pl = passlock_core::Passlock::builder(Arc::new(provider), store)
        .origins([ORIGIN])
        .clock(fake.clock())
        .build()
        .unwrap();
    let aid = passlock_core::AuthenticatorId::new("auth-1").unwrap();
    pl.store().link(&aid, &1, 0).await.unwrap();
    pl
}

/// Upstream faults (slow, 5xx, malformed JSON, wrong content type, reset,
/// JWKS down) answer 502/503/504 JSON within the timeout plus a margin and
/// issue no session; the JWKS cache keeps verifying known keys through a
/// JWKS outage, and a rotated key is picked up mid-traffic.
pub(crate) async fn upstream_faults_answer_json_within_the_timeout<A: TestApp>(
    w: World<A>,
    fake: passlock_test::fake_passlock::FakePasslock,
) {
    use passlock_core::UserHandle;
    use passlock_test::fake_passlock::Fault;
    use std::time::{Duration, Instant};
    let handle = UserHandle::new("1").unwrap();
    // Each fault and its one answer. The slow service holds its answer for
    // 60 s against the 1 s timeout: an answer within 30 s can only come from
    // the timeout (a margin of seconds, whatever the machine's load).
    let faults = [
        (
            Fault::Latency(Duration::from_secs(60)),
            504,
            "upstream_timeout",
        ),
        (Fault::Status500, 502, "upstream_bad_response"),
        (Fault::MalformedJson, 502, "upstream_bad_response"),
        (Fault::WrongContentType, 502, "upstream_bad_response"),
        (Fault::DropConnection, 503, "upstream_unavailable"),
    ];
    for (fault, status, error) in faults {
        let (code, _) = fake.issue(&handle, "auth-1", true).unwrap();
        fake.set_fault(fault.clone());
        let mut c = w.client();
        let started = Instant::now();
        let r = c
            .post("/passkey/login", json!({ "code": code.expose_secret() }))
            .await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(30), "{fault:?} took {took:?}");
        r.assert_error(status, error);
        assert!(!r.text.contains(code.expose_secret()), "{r:?}");
        fake.set_fault(Fault::None);
        assert_eq!(c.session_user().await, None, "{fault:?} issued a session");
    }
    // An id_token verifies and caches the JWKS.
    let (_, token) = fake.issue(&handle, "auth-1", true).unwrap();
    let mut c = w.client();
    let r = c
        .post(
            "/passkey/login",
            json!({ "id_token": token.expose_secret() }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // JWKS down: known keys keep verifying.
    fake.set_fault(Fault::JwksDown);
    let (_, token) = fake.issue(&handle, "auth-1", true).unwrap();
    let mut c = w.client();
    let r = c
        .post(
            "/passkey/login",
            json!({ "id_token": token.expose_secret() }),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "the cache verifies through a JWKS outage: {r:?}"
    );
    // A rotated key while the JWKS is down, within the refetch cooldown of
    // the first fetch: no refetch, the key is unknown (401), no session.
    fake.rotate_key().unwrap();
    let fetches = fake.jwks_fetches();
    let (_, token) = fake.issue(&handle, "auth-1", true).unwrap();
    let mut c = w.client();
    let r = c
        .post(
            "/passkey/login",
            json!({ "id_token": token.expose_secret() }),
        )
        .await;
    r.assert_error(401, "unknown_key");
    assert_eq!(
        fake.jwks_fetches(),
        fetches,
        "no refetch within the cooldown"
    );
    assert_eq!(c.session_user().await, None);
    // After the cooldown the refetch fails: an upstream error, no session.
    w.clock.advance_secs(31);
    let (_, token) = fake.issue(&handle, "auth-1", true).unwrap();
    let mut c = w.client();
    let r = c
        .post(
            "/passkey/login",
            json!({ "id_token": token.expose_secret() }),
        )
        .await;
    r.assert_error(502, "upstream_bad_response");
    assert_eq!(fake.jwks_fetches(), fetches + 1, "one refetch");
    assert_eq!(c.session_user().await, None);
    // The JWKS is back after the next cooldown: the rotated key verifies.
    fake.set_fault(Fault::None);
    w.clock.advance_secs(31);
    let (_, token) = fake.issue(&handle, "auth-1", true).unwrap();
    let mut c = w.client();
    let r = c
        .post(
            "/passkey/login",
            json!({ "id_token": token.expose_secret() }),
        )
        .await;
    assert_eq!(r.status, 200, "the rotated key is picked up: {r:?}");
}

/// Codes that would leave their URL path segment (dot segments fold
/// `/principal/{code}` into another path that gets the API key) or that
/// cannot be codes (whitespace) are refused as an unknown code, `401
/// invalid_token`, without any request to the service.
pub(crate) async fn unsafe_codes_never_reach_the_service<A: TestApp>(
    w: World<A>,
    fake: passlock_test::fake_passlock::FakePasslock,
) {
    let before = fake.total_hits();
    for code in [
        ".",
        "..",
        "%2e%2e",
        "a/b",
        "  ",
        "a b",
        "../principal",
        "a?b",
        "a#b",
    ] {
        let mut c = w.client();
        let r = c.post("/passkey/login", json!({ "code": code })).await;
        r.assert_error(401, "invalid_token");
        assert_eq!(c.session_user().await, None, "{code:?}");
    }
    assert_eq!(fake.total_hits(), before, "no request reached the service");
}

/// The `Retry-After` values [`upstream_429_answers_503_with_its_retry_after`]
/// sends and what the app must answer, on a clock set to
/// 2026-12-04T00:00:00Z: seconds as sent, an HTTP date converted with the
/// clock, a past date as `0`, a huge delay capped at one hour, garbage or
/// none left out.
pub(crate) const RETRY_AFTER_CASES: [(Option<&str>, Option<&str>); 6] = [
    (Some("120"), Some("120")),
    (Some("Fri, 04 Dec 2026 00:01:30 GMT"), Some("90")),
    (Some("Thu, 03 Dec 2026 23:00:00 GMT"), Some("0")),
    (Some("86400"), Some("3600")),
    (Some("soon"), None),
    (None, None),
];

/// 2026-12-04T00:00:00Z in epoch milliseconds.
pub(crate) const RETRY_AFTER_NOW_MS: i64 = 1_796_342_400_000;

/// An upstream `429` (the tenancy's rate limit) answers `503
/// upstream_unavailable` JSON with the service's `Retry-After` (see
/// [`RETRY_AFTER_CASES`]) on a log-in and on an authorize route, issues no
/// session and does not spend the code.
pub(crate) async fn upstream_429_answers_503_with_its_retry_after<A: TestApp>(
    w: World<A>,
    fake: passlock_test::fake_passlock::FakePasslock,
) {
    use passlock_core::UserHandle;
    use passlock_test::fake_passlock::Fault;
    w.clock.set_millis(RETRY_AFTER_NOW_MS);
    let handle = UserHandle::new("1").unwrap();
    for (sent, expected) in RETRY_AFTER_CASES {
        fake.set_fault(Fault::TooManyRequests(sent.map(str::to_owned)));
        let (code, _) = fake.issue(&handle, "auth-1", true).unwrap();
        let mut c = w.client();
        let r = c
            .post("/passkey/login", json!({ "code": code.expose_secret() }))
            .await;
        r.assert_error(503, "upstream_unavailable");
        assert_eq!(r.header("retry-after"), expected, "{sent:?}: {r:?}");
        let r = c
            .post(
                "/passkey/authentication/authorize",
                json!({ "purpose": "login" }),
            )
            .await;
        r.assert_error(503, "upstream_unavailable");
        assert_eq!(r.header("retry-after"), expected, "{sent:?}: {r:?}");
        fake.set_fault(Fault::None);
        assert_eq!(c.session_user().await, None, "{sent:?} issued a session");
    }
}

/// With the circuit breaker on ([`breaker_config`]): three upstream 5xx
/// open it; then a log-in is answered `503 upstream_unavailable` JSON
/// without reaching the service and without spending the code; after the
/// cooldown one probe goes through (and reopens it while the service still
/// fails); once the service is back the kept code signs in.
pub(crate) async fn open_circuit_answers_at_once_and_recovers<A: TestApp>(
    w: World<A>,
    fake: passlock_test::fake_passlock::FakePasslock,
) {
    use passlock_core::UserHandle;
    use passlock_test::fake_passlock::Fault;
    let handle = UserHandle::new("1").unwrap();
    let login = |code: String| {
        let mut c = w.client();
        async move {
            let r = c.post("/passkey/login", json!({ "code": code })).await;
            let user = c.session_user().await;
            (r, user)
        }
    };
    let code = || {
        fake.issue(&handle, "auth-1", true)
            .unwrap()
            .0
            .expose_secret()
            .to_owned()
    };

    fake.set_fault(Fault::Status500);
    for _ in 0..3 {
        let (r, user) = login(code()).await;
        r.assert_error(502, "upstream_bad_response");
        assert_eq!(user, None);
    }
    let seen = fake.hits("principal");
    assert_eq!(seen, 3);
    // Open: answered at once, nothing sent, the code is not spent.
    let kept = code();
    for _ in 0..3 {
        let (r, user) = login(kept.clone()).await;
        r.assert_error(503, "upstream_unavailable");
        assert!(!r.text.contains(&kept), "{r:?}");
        assert_eq!(user, None);
    }
    assert_eq!(
        fake.hits("principal"),
        seen,
        "no request reached the service"
    );

    // Still open one second before the end of the cooldown.
    let cooldown = i64::try_from(COOLDOWN.as_secs()).unwrap();
    w.clock.advance_secs(cooldown - 1);
    let (r, _) = login(kept.clone()).await;
    r.assert_error(503, "upstream_unavailable");
    assert_eq!(fake.hits("principal"), seen, "still open");

    // Half open after the cooldown: one probe, still failing, reopens it.
    w.clock.advance_secs(1);
    let (r, _) = login(code()).await;
    r.assert_error(502, "upstream_bad_response");
    assert_eq!(fake.hits("principal"), seen + 1, "one probe");
    let (r, _) = login(kept.clone()).await;
    r.assert_error(503, "upstream_unavailable");
    assert_eq!(fake.hits("principal"), seen + 1);

    // The service is back: after the cooldown the kept code signs in.
    fake.set_fault(Fault::None);
    w.clock.advance_secs(cooldown);
    let (r, user) = login(kept.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(user, Some(1));
    let (r, user) = login(code()).await;
    assert_eq!(r.status, 200, "closed again: {r:?}");
    assert_eq!(user, Some(1));
    assert_eq!(fake.hits("principal"), seen + 3);
}

/// A delete whose vault call fails (the hosted vault answers 500) keeps
/// the passkey linked exactly as it was (dates included) and answers a
/// 5xx JSON error; once the vault is back the delete goes through.
pub(crate) async fn a_failed_vault_delete_keeps_the_link<A: TestApp>(
    w: World<A>,
    fake: passlock_test::fake_passlock::FakePasslock,
) {
    use passlock_core::UserHandle;
    use passlock_test::fake_passlock::{Fault, RouteFamily};
    let handle = UserHandle::new("1").unwrap();
    let second = AuthenticatorId::new("auth-2").unwrap();
    w.passlock.store().link(&second, &1, 0).await.unwrap();
    let (code, _) = fake.issue(&handle, "auth-1", true).unwrap();
    let mut c = w.client();
    let r = c
        .post("/passkey/login", json!({ "code": code.expose_secret() }))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let before = w.passlock.store().authenticators_of(&1).await.unwrap();
    assert!(
        before.iter().any(|l| l.last_used_at.is_some()),
        "{before:?}"
    );

    fake.set_route_fault(RouteFamily::Passkeys, Fault::Status500);
    let r = c.delete("/passkey/passkeys/auth-1").await;
    r.assert_error(502, "upstream_bad_response");
    assert_eq!(
        w.passlock.store().authenticators_of(&1).await.unwrap(),
        before,
        "the link is kept as it was"
    );

    fake.set_route_fault(RouteFamily::Passkeys, Fault::None);
    let r = c.delete("/passkey/passkeys/auth-1").await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(w.links(1).await, vec!["auth-2".to_owned()]);
}

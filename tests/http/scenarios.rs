//! The HTTP scenarios, written once against [`TestApp`] and instantiated per
//! adapter with [`http_scenarios!`]. Every refusal checks the status, the
//! JSON error code, that no session was issued and that no link changed.

use serde_json::json;

use crate::harness::{Reply, TestApp, TestRequest, World, authenticator, service_base};

/// Sign-up authorizes a pending registration, links the passkey, creates
/// the user and issues a session under a new session id.
pub(crate) async fn sign_up_links_the_passkey_and_signs_in<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    let (code, aid) = c
        .registration_ceremony(&mut auth, json!({ "username": "alice" }))
        .await;
    let pending = c.cookies();
    assert_eq!(
        c.session_user().await,
        None,
        "a pending sign-up is no session"
    );
    let r = c.post("/passkey/register", c.proof(&code)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let user: i64 = r.json["user_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(r.json["authenticator_id"], aid.as_str());
    assert_ne!(c.cookies(), pending, "the session id is cycled at sign-up");
    assert_eq!(c.session_user().await, Some(user));
    let view = c.session_view().await;
    assert_eq!(view["authenticator_id"], aid.as_str());
    assert_eq!(view["amr"][0]["type"], "passkey");
    assert_eq!(w.links(user).await, vec![aid.clone()]);
    let me = c.get("/app/me").await;
    assert_eq!(me.json["user_id"], user);
    let list = c.get("/passkey/passkeys").await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.json[0]["authenticator_id"], aid.as_str());
    assert_eq!(list.json[0]["current"], true);
}

/// Logout answers 204, forgets the session, and the old cookie is dead
/// server-side.
pub(crate) async fn logout_deletes_the_session_server_side<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    let (user, _) = c.sign_up(&mut auth, "alice").await;
    let mut stolen = w.client();
    stolen.set_cookies(&c);
    let r = c
        .post_raw("/passkey/logout", "application/json", Vec::new())
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(c.session_user().await, None);
    assert_eq!(
        stolen.session_user().await,
        None,
        "the old cookie still works"
    );
    let me = stolen.get("/app/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json["user_id"], serde_json::Value::Null);
    assert_eq!(w.links(user).await.len(), 1, "logout unlinks nothing");
}

/// A usernameless login finds the user by passkey and cycles the session id
/// (no fixation).
pub(crate) async fn usernameless_login_issues_a_fresh_session<A: TestApp>(w: World<A>) {
    let mut auth = authenticator();
    let (user, aid) = w.client().sign_up(&mut auth, "alice").await;
    let mut c = w.client();
    // Give the browser a session id first, as an attacker fixing it would.
    let r = c
        .post(
            "/passkey/registration/authorize",
            json!({ "username": "x" }),
        )
        .await;
    assert_eq!(r.status, 200);
    let before = c.cookies();
    let r = c.login(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], user.to_string());
    assert_eq!(r.json["authenticator_id"], aid.as_str());
    assert_ne!(c.cookies(), before, "login must cycle the session id");
    assert_eq!(c.session_user().await, Some(user));
}

/// Managing passkeys needs a recent passkey verification; a step-up renews
/// it, then a second passkey can be added and the first deleted.
pub(crate) async fn step_up_then_add_and_delete_a_passkey<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut first = authenticator();
    let (user, aid1) = c.sign_up(&mut first, "alice").await;

    w.clock.advance_secs(301);
    let r = c.post("/passkey/registration/authorize", json!({})).await;
    r.assert_error(401, "step_up_required");
    assert_eq!(r.json["max_age"], 300);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("insufficient_user_authentication"),
        "{challenge}"
    );
    assert!(challenge.contains("max_age=300"), "{challenge}");
    let r = c.post("/app/sensitive", json!({})).await;
    r.assert_error(401, "step_up_required");
    assert_eq!(r.json["max_age"], 60);

    let before = c.cookies();
    let verified_before = c.session_view().await["verified_at"].clone();
    let r = c.step_up(&mut first).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_ne!(c.cookies(), before, "step-up cycles the session id");
    assert_ne!(c.session_view().await["verified_at"], verified_before);
    let r = c.post("/app/sensitive", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["done"], true);

    let mut second = authenticator();
    let (code, aid2) = c.registration_ceremony(&mut second, json!({})).await;
    let r = c.post("/passkey/register", c.proof(&code)).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json["user_id"], user.to_string());
    let mut both = vec![aid1.clone(), aid2.clone()];
    both.sort();
    assert_eq!(w.links(user).await, both);
    let list = c.get("/passkey/passkeys").await;
    assert_eq!(list.json.as_array().unwrap().len(), 2);

    w.clock.advance_secs(301);
    let r = c.delete(&format!("/passkey/passkeys/{aid1}")).await;
    r.assert_error(401, "step_up_required");
    assert_eq!(
        w.links(user).await,
        both,
        "nothing unlinked without a step-up"
    );
    let r = c.step_up(&mut second).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = c.delete(&format!("/passkey/passkeys/{aid1}")).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(w.links(user).await, vec![aid2.clone()]);
    let r = c.delete(&format!("/passkey/passkeys/{aid2}")).await;
    r.assert_error(409, "last_authenticator");
    let r = c.delete("/passkey/passkeys/not-mine").await;
    r.assert_error(404, "not_found");
    assert_eq!(w.links(user).await, vec![aid2]);

    // The deleted passkey no longer signs in: the provider forgot it.
    let mut other = w.client();
    let answer = other
        .post(
            "/passkey/authentication/authorize",
            json!({ "purpose": "login" }),
        )
        .await;
    let base = service_base(&answer.json);
    let options = other
        .post(
            &format!("{base}/authentication/options"),
            json!({ "authenticationToken": answer.json["authenticationToken"] }),
        )
        .await;
    assert_eq!(options.status, 200, "{options:?}");
    let response = first.get(&options.json["optionsJSON"]).await.unwrap();
    let verified = other
        .post(
            &format!("{base}/authentication/verification"),
            json!({ "response": response, "sessionToken": options.json["sessionToken"] }),
        )
        .await;
    assert_ne!(verified.status, 200, "{verified:?}");
    assert_eq!(other.session_user().await, None);
}

/// Signed out: no session view, no passkey list, no step-up, no deletion.
pub(crate) async fn signed_out_requests_are_refused<A: TestApp>(w: World<A>) {
    let mut auth = authenticator();
    let (user, aid) = w.client().sign_up(&mut auth, "alice").await;
    let mut c = w.client();
    c.get("/passkey/session")
        .await
        .assert_error(401, "not_authenticated");
    let r = c.get("/passkey/passkeys").await;
    r.assert_error(401, "not_authenticated");
    assert!(r.header("www-authenticate").is_some());
    let code = c.authentication_ceremony(&mut auth, "login").await;
    c.post("/passkey/step-up", c.proof(&code))
        .await
        .assert_error(401, "not_authenticated");
    c.delete(&format!("/passkey/passkeys/{aid}"))
        .await
        .assert_error(401, "not_authenticated");
    c.post("/app/sensitive", json!({}))
        .await
        .assert_error(401, "not_authenticated");
    let r = c
        .post("/passkey/register", json!({ "code": "made-up" }))
        .await;
    r.assert_error(401, "registration_not_authorized");
    assert_eq!(c.session_user().await, None);
    assert_eq!(w.links(user).await, vec![aid]);
}

/// A sign-up completed after its authorization expired is refused, and the
/// passkey is not linked.
pub(crate) async fn expired_registration_is_refused<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    let (code, aid) = c
        .registration_ceremony(&mut auth, json!({ "username": "late" }))
        .await;
    w.clock.advance_secs(301);
    let r = c.post("/passkey/register", c.proof(&code)).await;
    r.assert_error(401, "registration_not_authorized");
    assert_eq!(c.session_user().await, None);
    assert_eq!(w.owner(&aid).await, None);
}

/// A passkey the provider knows but no user is linked to cannot sign in.
pub(crate) async fn login_rejects_unknown_authenticator<A: TestApp>(w: World<A>) {
    let mut auth = authenticator();
    let (_code, aid) = w
        .client()
        .registration_ceremony(&mut auth, json!({ "username": "ghost" }))
        .await;
    let mut c = w.client();
    let r = c.login(&mut auth).await;
    r.assert_error(401, "unknown_authenticator");
    assert_eq!(c.session_user().await, None);
    assert_eq!(w.owner(&aid).await, None);
}

/// Bob cannot step up with Alice's passkey.
pub(crate) async fn step_up_rejects_another_users_passkey<A: TestApp>(w: World<A>) {
    let mut alice_key = authenticator();
    let (alice, alice_aid) = w.client().sign_up(&mut alice_key, "alice").await;
    let mut bob = w.client();
    let mut bob_key = authenticator();
    let (bob_id, bob_aid) = bob.sign_up(&mut bob_key, "bob").await;
    w.clock.advance_secs(120);
    let before = bob.session_view().await;
    let code = bob.authentication_ceremony(&mut alice_key, "login").await;
    let r = bob.post("/passkey/step-up", bob.proof(&code)).await;
    r.assert_error(403, "wrong_user");
    let after = bob.session_view().await;
    assert_eq!(after["user_id"], bob_id.to_string());
    assert_eq!(after["verified_at"], before["verified_at"]);
    assert_eq!(w.links(alice).await, vec![alice_aid]);
    assert_eq!(w.links(bob_id).await, vec![bob_aid]);
}

/// A registration code is single use.
pub(crate) async fn registration_code_cannot_be_replayed<A: TestApp>(w: World<A>) {
    let mut auth = authenticator();
    let mut first = w.client();
    let (code, aid) = first
        .registration_ceremony(&mut auth, json!({ "username": "alice" }))
        .await;
    let r = first.post("/passkey/register", first.proof(&code)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let user: i64 = r.json["user_id"].as_str().unwrap().parse().unwrap();

    let mut second = w.client();
    let r = second
        .post(
            "/passkey/registration/authorize",
            json!({ "username": "mallory" }),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = second.post("/passkey/register", second.proof(&code)).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.json["error"].is_string(), "{r:?}");
    assert_eq!(second.session_user().await, None);
    assert_eq!(w.links(user).await, vec![aid.clone()]);
    assert_eq!(w.owner(&aid).await, Some(user));
}

/// The code and the id_token of one ceremony are one proof: a login with
/// the code leaves its twin id_token no step-up, and a login with the
/// id_token leaves its twin code none. The refused step-up changes nothing.
pub(crate) async fn one_ceremony_redeems_once<A: TestApp>(w: World<A>) {
    let mut auth = authenticator();
    w.client().sign_up(&mut auth, "alice").await;
    // The embedded provider drops a code with its id_token; the hosted
    // service still exchanges it, and the app's replay cache refuses it.
    let twin_code_error = match w.passlock.provider().name() {
        "embedded" => "invalid_token",
        _ => "replayed",
    };
    for (first, twin, twin_error) in [
        ("code", "id_token", "replayed"),
        ("id_token", "code", twin_code_error),
    ] {
        let mut c = w.client();
        let v = c.authentication_verified(&mut auth, "login").await;
        let r = c
            .post("/passkey/login", json!({ first: v.json[first] }))
            .await;
        assert_eq!(r.status, 200, "{first}: {r:?}");
        let before = c.session_view().await;
        let cookies = c.cookies();
        let r = c
            .post("/passkey/step-up", json!({ twin: v.json[twin] }))
            .await;
        r.assert_error(401, twin_error);
        assert!(r.header("set-cookie").is_none(), "{r:?}");
        assert_eq!(c.cookies(), cookies);
        assert_eq!(c.session_view().await, before);
        // Nor does the twin sign in another browser (a code is spent by
        // its first exchange, refused or not).
        let mut other = w.client();
        let r = other
            .post("/passkey/login", json!({ twin: v.json[twin] }))
            .await;
        r.assert_error(
            401,
            if twin == "code" {
                "invalid_token"
            } else {
                "replayed"
            },
        );
        assert_eq!(other.session_user().await, None);
    }
}

/// Request hygiene: content type, origin, size, JSON, unknown routes.
pub(crate) async fn malformed_requests_are_refused_as_json<A: TestApp>(w: World<A>) {
    let mut auth = authenticator();
    let (user, aid) = w.client().sign_up(&mut auth, "alice").await;
    let mut c = w.client();

    let r = c
        .post_raw("/passkey/login", "text/plain", br#"{"code":"x"}"#.to_vec())
        .await;
    r.assert_error(415, "unsupported_media_type");
    let r = c
        .post_raw("/passkey/logout", "text/plain", b"bye".to_vec())
        .await;
    r.assert_error(415, "unsupported_media_type");
    let r = c
        .post_raw(
            "/passkey/registration/authorize",
            "application/x-www-form-urlencoded",
            b"username=x".to_vec(),
        )
        .await;
    r.assert_error(415, "unsupported_media_type");

    for origin in [Some("https://evil.example"), Some("null"), None] {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(o) = origin {
            headers.push(("origin".to_owned(), o.to_owned()));
        }
        let r = c
            .send(TestRequest {
                method: "POST",
                path: "/passkey/registration/authorize".to_owned(),
                headers,
                body: br#"{"username":"eve"}"#.to_vec(),
            })
            .await;
        r.assert_error(403, "forbidden_origin");
    }

    let big = json!({ "code": "a".repeat(17 * 1024) });
    c.post("/passkey/register", big)
        .await
        .assert_error(413, "payload_too_large");
    c.post_raw(
        "/passkey/login",
        "application/json",
        br#"{"code":"#.to_vec(),
    )
    .await
    .assert_error(400, "bad_request");
    c.post("/passkey/login", json!({ "code": "a", "id_token": "b" }))
        .await
        .assert_error(400, "bad_request");
    c.post(
        "/passkey/authentication/authorize",
        json!({ "purpose": "admin" }),
    )
    .await
    .assert_error(400, "bad_request");
    c.get("/passkey/nope").await.assert_error(404, "not_found");
    c.get("/passkey/login")
        .await
        .assert_error(405, "method_not_allowed");

    // Bodiless authorize and logout are accepted.
    let r = c
        .send(TestRequest {
            method: "POST",
            path: "/passkey/authentication/authorize".to_owned(),
            headers: vec![("origin".to_owned(), crate::harness::ORIGIN.to_owned())],
            body: Vec::new(),
        })
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json["authenticationToken"].is_string());

    assert_eq!(c.session_user().await, None);
    assert_eq!(w.links(user).await, vec![aid]);
}

/// The browser client is served as JavaScript.
pub(crate) async fn client_js_is_served<A: TestApp>(w: World<A>) {
    let r = w.client().get("/passkey/client.js").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/javascript"),
        "{r:?}"
    );
    assert!(r.text.contains("export async function fetchJSON"));
    let jwks = w.client().get("/passkey/.well-known/jwks.json").await;
    assert_eq!(jwks.status, 200);
    // One public P-256 signing key with a `kid` (an empty set, which an
    // `is_array()` check let pass, verifies nothing).
    let keys = jwks.json["keys"].as_array().expect("a key array");
    assert_eq!(keys.len(), 1, "{}", jwks.json);
    let key = &keys[0];
    assert!(
        key["kid"].as_str().is_some_and(|kid| !kid.is_empty()),
        "{key}"
    );
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert!(key.get("d").is_none(), "no private part");
}

/// Every passlock answer, success and error, on both adapters, is
/// `Cache-Control: no-store` (the harness asserts it on every
/// `/passkey/...` answer; this walks each route and error class once), the
/// app's own step-up rejection too; `client.js` keeps `no-cache`.
pub(crate) async fn passlock_answers_are_never_stored<A: TestApp>(w: World<A>) {
    fn no_store(r: &Reply) {
        assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
    }
    let mut c = w.client();
    no_store(&c.get("/passkey/session").await);
    no_store(&c.get("/passkey/passkeys").await);
    let mut auth = authenticator();
    c.sign_up(&mut auth, "alice").await;
    let r = c.get("/passkey/session").await;
    assert_eq!(r.status, 200, "{r:?}");
    no_store(&r);
    let r = c.get("/passkey/passkeys").await;
    assert_eq!(r.status, 200, "{r:?}");
    no_store(&r);
    let r = c.step_up(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    no_store(&r);
    w.clock.advance_secs(301);
    let r = c.post("/app/sensitive", json!({})).await;
    r.assert_error(401, "step_up_required");
    no_store(&r);
    let r = c.post("/passkey/registration/authorize", json!({})).await;
    r.assert_error(401, "step_up_required");
    no_store(&r);
    let r = c.post("/passkey/logout", json!({})).await;
    assert_eq!(r.status, 204, "{r:?}");
    no_store(&r);
    let r = c.login(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    no_store(&r);
    for (r, status, error) in [
        (
            c.post("/passkey/login", json!({ "code": "nope" })).await,
            401,
            "invalid_token",
        ),
        (
            c.post_raw("/passkey/login", "text/plain", b"x".to_vec())
                .await,
            415,
            "unsupported_media_type",
        ),
        (c.get("/passkey/login").await, 405, "method_not_allowed"),
        (c.get("/passkey/nope").await, 404, "not_found"),
        (
            c.post(
                "/passkey/register",
                json!({ "code": "a".repeat(17 * 1024) }),
            )
            .await,
            413,
            "payload_too_large",
        ),
    ] {
        r.assert_error(status, error);
        no_store(&r);
    }
    let js = c.get("/passkey/client.js").await;
    assert_eq!(js.header("cache-control"), Some("no-cache"), "{js:?}");
}

/// A step-up proof redeemed 299 s after its ceremony is as old as the
/// ceremony: the app's `StepUp<60>` refuses it at once, and the 300 s
/// window of adding a passkey closes 300 s after the ceremony, not after
/// the redemption.
pub(crate) async fn step_up_freshness_starts_at_the_ceremony<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    c.sign_up(&mut auth, "alice").await;
    w.clock.advance_secs(301);
    let proof = c.authentication_ceremony(&mut auth, "step_up").await;
    w.clock.advance_secs(299);
    let r = c.post("/passkey/step-up", c.proof(&proof)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = c.post("/app/sensitive", json!({})).await;
    r.assert_error(401, "step_up_required");
    assert_eq!(r.json["max_age"], 60);
    let r = c.post("/passkey/registration/authorize", json!({})).await;
    assert_eq!(r.status, 200, "300 s window still open: {r:?}");
    w.clock.advance_secs(2);
    let r = c.post("/passkey/registration/authorize", json!({})).await;
    r.assert_error(401, "step_up_required");
    assert_eq!(r.json["max_age"], 300);
}

/// Adding a passkey: a step-up that was fresh at
/// `/registration/authorize` but is older than 300 s at `/register` is
/// `401 step_up_required`, and nothing is linked.
pub(crate) async fn adding_a_passkey_rechecks_the_step_up_at_register<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut first = authenticator();
    let (user, aid1) = c.sign_up(&mut first, "alice").await;
    w.clock.advance_secs(200);
    let mut second = authenticator();
    let (proof, _) = c.registration_ceremony(&mut second, json!({})).await;
    w.clock.advance_secs(101);
    let r = c.post("/passkey/register", c.proof(&proof)).await;
    r.assert_error(401, "step_up_required");
    assert_eq!(r.json["max_age"], 300);
    assert_eq!(w.links(user).await, vec![aid1], "nothing linked");
}

/// Instantiates every scenario for one adapter: `$world` is an async
/// function returning a fresh `World<impl TestApp>`.
#[macro_export]
macro_rules! http_scenarios {
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
            client_js_is_served,
            one_ceremony_redeems_once,
            passlock_answers_are_never_stored,
            step_up_freshness_starts_at_the_ceremony,
            adding_a_passkey_rechecks_the_step_up_at_register,
        );
    };
    (@each $world:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::scenarios::$name($world().await).await;
            }
        )*
    };
}

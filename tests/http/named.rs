//! Issue 15, server side, on both adapters: named passkeys (the list's
//! names, AAGUIDs, dates and backup flags; `PATCH {prefix}/passkeys/{id}`),
//! the sign-up hook's `username_available` refusing a taken name before any
//! ceremony, the user's name (not the numeric id) in the registration
//! options, conditional mediation for autofill sign-in and automatic
//! passkey upgrade, and related origins (`/.well-known/webauthn`).

use std::sync::Arc;

use passlock_core::clock::ManualClock;
use passlock_core::provider::embedded::{
    CeremonyStore, EmbeddedConfig, EmbeddedProvider, MemoryCeremonyStore, MemoryCredentialStore,
};
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::{AuthenticatorStore, Passlock};
use passlock_test::authenticator::SoftAuthenticator;
use serde_json::{Value, json};

use crate::harness::{
    MemoryUsers, ORIGIN, Reply, TestApp, TestRequest, World, authenticator, service_base,
};

/// 2026-12-07T03:00:00Z.
const DEC_7_2026: i64 = 1_796_601_600_000 + 3 * 3_600_000;

/// The passkey list of the signed-in browser (asserts `200`).
async fn list<A: TestApp>(c: &mut crate::harness::Client<'_, A>) -> Vec<Value> {
    let r = c.get("/passkey/passkeys").await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json.as_array().unwrap().clone()
}

fn entry<'a>(list: &'a [Value], aid: &str) -> &'a Value {
    list.iter()
        .find(|e| e["authenticator_id"] == aid)
        .unwrap_or_else(|| panic!("{aid} not in {list:?}"))
}

/// Adds a passkey on `auth` to the signed-in account with `body`; returns
/// its id.
async fn add_passkey<A: TestApp>(
    c: &mut crate::harness::Client<'_, A>,
    auth: &mut SoftAuthenticator,
    body: Value,
) -> String {
    let (code, aid) = c.registration_ceremony(auth, body).await;
    let r = c.post("/passkey/register", c.proof(&code)).await;
    assert_eq!(r.status, 201, "{r:?}");
    aid
}

/// A sign-up with a given name keeps it (trimmed); one without gets the
/// platform-and-date name; the list carries the AAGUID (none from the
/// software authenticator), its authenticator name, the backup flags as the
/// authenticator reported them, creation and last-use times.
pub(crate) async fn passkeys_are_listed_with_names_dates_and_backup_flags<A: TestApp>(w: World<A>) {
    w.clock.set_millis(DEC_7_2026);
    let mut c = w.client();
    let mut laptop = authenticator();
    let (code, first) = c
        .registration_ceremony(
            &mut laptop,
            json!({ "username": "alice", "passkey_name": "  Work laptop  " }),
        )
        .await;
    let r = c.post("/passkey/register", c.proof(&code)).await;
    assert_eq!(r.status, 201, "{r:?}");
    let l = list(&mut c).await;
    assert_eq!(l.len(), 1);
    let e = &l[0];
    assert_eq!(e["name"], "Work laptop");
    assert_eq!(e["authenticator_name"], Value::Null);
    assert_eq!(
        e["aaguid"],
        Value::Null,
        "the software authenticator sends zeros"
    );
    // passkey-rs makes synced passkeys: backup eligible and backed up.
    assert_eq!(e["backup_eligible"], true);
    assert_eq!(e["backed_up"], true);
    assert_eq!(e["created_at"], DEC_7_2026);
    assert_eq!(e["last_used_at"], Value::Null);
    assert_eq!(e["current"], true);

    // A second passkey without a name, a day later.
    w.clock.advance_secs(86_400);
    let mut phone = authenticator();
    c.step_up(&mut laptop).await;
    let second = add_passkey(&mut c, &mut phone, json!({})).await;
    let l = list(&mut c).await;
    assert_eq!(entry(&l, &second)["name"], "Passkey created 2026-12-08");
    assert_eq!(entry(&l, &first)["name"], "Work laptop");
    assert_eq!(
        entry(&l, &first)["last_used_at"],
        DEC_7_2026 + 86_400_000,
        "the step-up counts as a use"
    );

    // A third from a known password manager is named after it.
    let mut manager = authenticator();
    // 1Password's AAGUID, bada5566-a7aa-401f-bd96-45619a55120d.
    manager.set_aaguid([
        0xba, 0xda, 0x55, 0x66, 0xa7, 0xaa, 0x40, 0x1f, 0xbd, 0x96, 0x45, 0x61, 0x9a, 0x55, 0x12,
        0x0d,
    ]);
    let third = add_passkey(&mut c, &mut manager, json!({})).await;
    let l = list(&mut c).await;
    let e = entry(&l, &third);
    assert_eq!(e["name"], "1Password");
    assert_eq!(e["authenticator_name"], "1Password");
    assert_eq!(e["aaguid"], "bada5566-a7aa-401f-bd96-45619a55120d");
    let r = c
        .patch(
            &format!("/passkey/passkeys/{third}"),
            json!({ "name": "Vault" }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["name"], "Vault");
    assert_eq!(
        r.json["authenticator_name"], "1Password",
        "the authenticator stays known"
    );

    // A login updates the last use.
    w.clock.advance_secs(60);
    let mut other = w.client();
    let r = other.login(&mut phone).await;
    assert_eq!(r.status, 200, "{r:?}");
    let l = list(&mut other).await;
    assert_eq!(entry(&l, &second)["last_used_at"], DEC_7_2026 + 86_460_000);
    assert_eq!(entry(&l, &second)["current"], true);
    assert_eq!(entry(&l, &first)["current"], false);
}

/// An invalid `passkey_name` at authorization is `400 invalid_name`,
/// before anything is stored.
pub(crate) async fn an_invalid_passkey_name_is_refused_at_authorization<A: TestApp>(w: World<A>) {
    for bad in [
        json!("  "),
        json!("x".repeat(65)),
        json!("a\u{7}b"),
        json!("a\nb"),
    ] {
        let mut c = w.client();
        let r = c
            .post(
                "/passkey/registration/authorize",
                json!({ "username": "alice", "passkey_name": bad }),
            )
            .await;
        r.assert_error(400, "invalid_name");
        assert_eq!(r.header("set-cookie"), None, "{bad}: {r:?}");
    }
    // Exactly 64 characters pass.
    let mut c = w.client();
    let r = c
        .post(
            "/passkey/registration/authorize",
            json!({ "username": "alice", "passkey_name": "é".repeat(64) }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// `PATCH {prefix}/passkeys/{id}`: renames the user's own passkey (`200`
/// with the passkey as listed), under the delete rules: a recent step-up,
/// `400 invalid_name`, `404 not_found` for another user's or an unknown
/// passkey, `401` without a session; refusals change no name.
pub(crate) async fn renaming_follows_the_rules_of_delete<A: TestApp>(w: World<A>) {
    let mut alice = w.client();
    let mut laptop = authenticator();
    let (_, a1) = alice.sign_up(&mut laptop, "alice").await;
    let a2 = add_passkey(&mut alice, &mut authenticator(), json!({})).await;
    let mut bob = w.client();
    let (_, b1) = bob.sign_up(&mut authenticator(), "bob").await;
    let bob_name = list(&mut bob).await[0]["name"].clone();

    let r = alice
        .patch(
            &format!("/passkey/passkeys/{a2}"),
            json!({ "name": " Phone " }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["authenticator_id"], a2.as_str());
    assert_eq!(r.json["name"], "Phone");
    assert_eq!(r.json["current"], true, "the session last verified a2");
    assert_eq!(r.json, *entry(&list(&mut alice).await, &a2));

    for bad in [json!(""), json!("x".repeat(65)), json!("tab\there")] {
        let r = alice
            .patch(&format!("/passkey/passkeys/{a2}"), json!({ "name": bad }))
            .await;
        r.assert_error(400, "invalid_name");
    }
    let r = alice
        .patch(&format!("/passkey/passkeys/{a2}"), json!({ "nom": "x" }))
        .await;
    r.assert_error(400, "bad_request");
    let r = alice
        .patch(
            &format!("/passkey/passkeys/{b1}"),
            json!({ "name": "Mine" }),
        )
        .await;
    r.assert_error(404, "not_found");
    let r = alice
        .patch("/passkey/passkeys/unknown", json!({ "name": "Mine" }))
        .await;
    r.assert_error(404, "not_found");
    assert_eq!(
        list(&mut bob).await[0]["name"],
        bob_name,
        "bob's name changed"
    );
    assert_eq!(entry(&list(&mut alice).await, &a2)["name"], "Phone");

    // The step-up window of delete.
    w.clock.advance_secs(301);
    let r = alice
        .patch(
            &format!("/passkey/passkeys/{a1}"),
            json!({ "name": "Laptop" }),
        )
        .await;
    r.assert_error(401, "step_up_required");
    assert_eq!(r.json["max_age"], 300);
    assert_ne!(entry(&list(&mut alice).await, &a1)["name"], "Laptop");
    let r = alice.step_up(&mut laptop).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = alice
        .patch(
            &format!("/passkey/passkeys/{a1}"),
            json!({ "name": "Laptop" }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["current"], true);

    let mut nobody = w.client();
    let r = nobody
        .patch(&format!("/passkey/passkeys/{a1}"), json!({ "name": "x" }))
        .await;
    r.assert_error(401, "not_authenticated");
    assert_eq!(entry(&list(&mut alice).await, &a1)["name"], "Laptop");
}

/// The registration options name the user: at sign-up the username is
/// `user.name` and `user.displayName`; when a signed-in user adds a
/// passkey it is their username again (from the sign-up hook), never the
/// app's numeric id, under the same WebAuthn `user.id`.
pub(crate) async fn registration_options_carry_the_username_not_the_id<A: TestApp>(w: World<A>) {
    let mut c = w.client();
    let mut auth = authenticator();
    let signup = registration_options(&mut c, json!({ "username": "alice" })).await;
    assert_eq!(signup["user"]["name"], "alice");
    assert_eq!(signup["user"]["displayName"], "alice");
    let (user, _) = c.sign_up(&mut auth, "alice").await;
    let added = registration_options(&mut c, json!({})).await;
    assert_eq!(added["user"]["name"], "alice", "{added}");
    assert_eq!(added["user"]["displayName"], "alice");
    assert_ne!(added["user"]["name"], user.to_string());
    let excluded = added["excludeCredentials"].as_array().unwrap();
    assert_eq!(excluded.len(), 1, "the passkey the user has is excluded");
}

/// `POST registration/authorize` then `registration/options`: the
/// `optionsJSON` (the creation options).
async fn registration_options<A: TestApp>(
    c: &mut crate::harness::Client<'_, A>,
    body: Value,
) -> Value {
    let (answer, _) = options_of(c, "registration", body).await;
    answer["optionsJSON"].clone()
}

/// An authorize call for `kind` with `body` and the options answer; also
/// returns the authorize answer.
async fn options_of<A: TestApp>(
    c: &mut crate::harness::Client<'_, A>,
    kind: &str,
    body: Value,
) -> (Value, Value) {
    let a = c.post(&format!("/passkey/{kind}/authorize"), body).await;
    assert_eq!(a.status, 200, "{a:?}");
    let token = if kind == "registration" {
        json!({ "registrationToken": a.json["registrationToken"] })
    } else {
        json!({ "authenticationToken": a.json["authenticationToken"] })
    };
    let o = c
        .post(&format!("{}/{kind}/options", service_base(&a.json)), token)
        .await;
    assert_eq!(o.status, 200, "{o:?}");
    (o.json, a.json)
}

/// Conditional mediation: a login authorized with `"mediation":
/// "conditional"` gets a discoverable challenge (no `allowCredentials`,
/// user verification per policy) with `mediation: "conditional"` in the
/// options answer, and signs in like any login; a plain one says
/// `optional`; a step-up cannot be conditional. A signed-in user's
/// registration may be conditional too (automatic passkey upgrade).
pub(crate) async fn conditional_mediation_for_autofill_and_upgrade<A: TestApp>(w: World<A>) {
    let mut auth = authenticator();
    let (user, aid) = w.client().sign_up(&mut auth, "alice").await;

    let mut c = w.client();
    let (o, a) = options_of(
        &mut c,
        "authentication",
        json!({ "purpose": "login", "mediation": "conditional" }),
    )
    .await;
    assert_eq!(o["mediation"], "conditional");
    let options = &o["optionsJSON"];
    assert!(
        options["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{options}"
    );
    assert_eq!(options["userVerification"], "required");
    assert!(options["challenge"].is_string());
    let response = auth.get(options).await.unwrap();
    let v = c
        .post(
            &format!("{}/authentication/verification", service_base(&a)),
            json!({ "response": response, "sessionToken": o["sessionToken"] }),
        )
        .await;
    assert_eq!(v.status, 200, "{v:?}");
    let field = if v.json["code"].is_string() {
        "code"
    } else {
        "id_token"
    };
    let proof = c.proof(v.json[field].as_str().unwrap());
    let r = c.post("/passkey/login", proof).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["authenticator_id"], aid.as_str());
    assert_eq!(c.session_user().await, Some(user));

    let (o, _) = options_of(
        &mut w.client(),
        "authentication",
        json!({ "purpose": "login" }),
    )
    .await;
    assert_eq!(o["mediation"], "optional");

    let r = c
        .post(
            "/passkey/authentication/authorize",
            json!({ "purpose": "step_up", "mediation": "conditional" }),
        )
        .await;
    r.assert_error(400, "bad_request");
    let r = c
        .post(
            "/passkey/authentication/authorize",
            json!({ "purpose": "login", "mediation": "silent" }),
        )
        .await;
    r.assert_error(400, "bad_request");

    // Automatic passkey upgrade: the same route and rules, carried through.
    let (o, a) = options_of(
        &mut c,
        "registration",
        json!({ "mediation": "conditional" }),
    )
    .await;
    assert_eq!(o["mediation"], "conditional");
    let mut device = authenticator();
    let response = device.create(&o["optionsJSON"]).await.unwrap();
    let v = c
        .post(
            &format!("{}/registration/verification", service_base(&a)),
            json!({ "response": response, "sessionToken": o["sessionToken"] }),
        )
        .await;
    assert_eq!(v.status, 200, "{v:?}");
    let proof = c.proof(v.json[field].as_str().unwrap());
    let r = c.post("/passkey/register", proof).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(w.links(user).await.len(), 2);
    let (o, _) = options_of(&mut c, "registration", json!({})).await;
    assert_eq!(o.get("mediation"), None, "{o}");
}

/// Memory stores the test keeps handles to, behind one passlock.
struct Counted {
    passlock: Passlock<i64>,
    ceremonies: Arc<MemoryCeremonyStore>,
    credentials: Arc<MemoryCredentialStore>,
}

async fn counted(clock: &ManualClock, config: EmbeddedConfig) -> Counted {
    let ceremonies = Arc::new(MemoryCeremonyStore::new());
    let credentials = Arc::new(MemoryCredentialStore::new());
    let provider = EmbeddedProvider::new(
        config.with_clock(Arc::new(clock.clone())),
        credentials.clone(),
        ceremonies.clone() as Arc<dyn CeremonyStore>,
    )
    .await
    .unwrap();
    let store: Arc<dyn AuthenticatorStore<i64>> = Arc::new(MemoryAuthenticatorStore::new());
    let passlock = Passlock::builder(Arc::new(provider), store)
        .sign_up(Arc::new(MemoryUsers::default()))
        .clock(Arc::new(clock.clone()))
        .trusted_proxy_header("x-test-client")
        .build()
        .unwrap();
    Counted {
        passlock,
        ceremonies,
        credentials,
    }
}

/// A taken username is `409 username_taken` at authorization: no ceremony
/// state, no sign-up ticket, no session, and the device never creates a
/// passkey; the first account is untouched.
pub(crate) async fn a_taken_username_is_refused_before_any_ceremony<A, F, Fut>(with: F)
where
    A: TestApp,
    F: Fn(Passlock<i64>, ManualClock) -> Fut,
    Fut: std::future::Future<Output = World<A>>,
{
    let clock = ManualClock::starting_now();
    let counted = counted(&clock, EmbeddedConfig::new("localhost", "t", [ORIGIN])).await;
    let w = with(counted.passlock.clone(), clock).await;
    let mut first = authenticator();
    let (alice, aid) = w.client().sign_up(&mut first, "alice").await;
    let ceremonies = counted.ceremonies.len();
    let handle = counted
        .passlock
        .provider()
        .passkey_details(&[passlock_core::AuthenticatorId::new(&aid).unwrap()])
        .await
        .unwrap();
    assert_eq!(handle.len(), 1);

    let mut c = w.client();
    let device = authenticator();
    let r = c.authorize_sign_up(" alice ").await;
    r.assert_error(409, "username_taken");
    assert_eq!(r.json["message"], "this username is taken");
    assert_eq!(r.header("set-cookie"), None, "no ticket, no session: {r:?}");
    assert_eq!(
        counted.ceremonies.len(),
        ceremonies,
        "a ceremony was stored"
    );
    assert!(device.credential_ids().is_empty());
    assert_eq!(c.session_user().await, None);
    assert_eq!(w.links(alice).await, vec![aid.clone()]);
    let stored = passlock_core::store::CredentialStore::get(
        counted.credentials.as_ref(),
        &passlock_core::AuthenticatorId::new(&aid).unwrap(),
    )
    .await
    .unwrap();
    assert!(stored.is_some());
    // A free name still signs up.
    let (bob, _) = c.sign_up(&mut authenticator(), "bob").await;
    assert_ne!(bob, alice);
}

/// A sign-up hook that only creates users (no `username_of`, no
/// `username_available`): the defaults.
#[derive(Debug, Default)]
struct PlainUsers(MemoryUsers);

#[async_trait::async_trait]
impl passlock_core::SignUpHook<i64> for PlainUsers {
    async fn create_user(&self, username: &str) -> Result<i64, passlock_core::SignUpError> {
        self.0.create_user(username).await
    }

    async fn abandon_user(&self, user: &i64) -> Result<(), passlock_core::SignUpError> {
        self.0.abandon_user(user).await
    }
}

/// Without `SignUpHook::username_of`, a passkey the user adds is still
/// created under the username stored with their first passkey (embedded
/// provider), not the app's id; without `username_available` a taken name
/// is refused only at `/register` (`409 sign_up_refused`).
pub(crate) async fn hook_defaults_use_the_stored_username<A, F, Fut>(with: F)
where
    A: TestApp,
    F: Fn(Passlock<i64>, ManualClock) -> Fut,
    Fut: std::future::Future<Output = World<A>>,
{
    let clock = ManualClock::starting_now();
    let provider = EmbeddedProvider::in_memory(
        EmbeddedConfig::new("localhost", "t", [ORIGIN]).with_clock(Arc::new(clock.clone())),
    )
    .await
    .unwrap();
    let store: Arc<dyn AuthenticatorStore<i64>> = Arc::new(MemoryAuthenticatorStore::new());
    let passlock = Passlock::builder(Arc::new(provider), store)
        .sign_up(Arc::new(PlainUsers::default()))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let w = with(passlock, clock).await;
    let mut c = w.client();
    let (user, _) = c.sign_up(&mut authenticator(), "carol").await;
    let added = registration_options(&mut c, json!({})).await;
    assert_eq!(added["user"]["name"], "carol", "{added}");
    assert_ne!(added["user"]["name"], user.to_string());
    let mut late = w.client();
    let (code, _) = late
        .registration_ceremony(&mut authenticator(), json!({ "username": "carol" }))
        .await;
    let r = late.post("/passkey/register", late.proof(&code)).await;
    r.assert_error(409, "sign_up_refused");
}

/// A request from `origin` (not the app's main origin).
fn from_origin(origin: &str, method: &'static str, path: &str, body: Value) -> TestRequest {
    TestRequest {
        method,
        path: path.to_owned(),
        headers: vec![
            ("origin".to_owned(), origin.to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// A full sign-up run on a page of `origin` (the authenticator puts that
/// origin in the client data): the verification answer.
async fn sign_up_on<A: TestApp>(
    c: &mut crate::harness::Client<'_, A>,
    auth: &mut SoftAuthenticator,
    origin: &str,
    username: &str,
) -> (Reply, Option<Reply>) {
    auth.set_extra_client_data(Some(json!({ "origin": origin })));
    let a = c
        .send(from_origin(
            origin,
            "POST",
            "/passkey/registration/authorize",
            json!({ "username": username }),
        ))
        .await;
    if a.status != 200 {
        return (a, None);
    }
    let base = service_base(&a.json);
    let o = c
        .send(from_origin(
            origin,
            "POST",
            &format!("{base}/registration/options"),
            json!({ "registrationToken": a.json["registrationToken"] }),
        ))
        .await;
    assert_eq!(o.status, 200, "{o:?}");
    let response = auth.create(&o.json["optionsJSON"]).await.unwrap();
    let v = c
        .send(from_origin(
            origin,
            "POST",
            &format!("{base}/registration/verification"),
            json!({ "response": response, "sessionToken": o.json["sessionToken"] }),
        ))
        .await;
    if v.status != 200 {
        return (v, None);
    }
    let field = if v.json["code"].is_string() {
        "code"
    } else {
        "id_token"
    };
    let r = c
        .send(from_origin(
            origin,
            "POST",
            "/passkey/register",
            c.proof(v.json[field].as_str().unwrap()),
        ))
        .await;
    (v, Some(r))
}

/// Related origins: `GET /.well-known/webauthn` (mounted at the root) lists
/// exactly the configured origins; a page on a related origin signs up and
/// signs in; another origin is refused by the `Origin` check (`403
/// forbidden_origin`) and by the ceremony's client data check (`403`
/// `origin_mismatch`), and nothing is linked.
pub(crate) async fn related_origins_are_served_and_accepted<A, F, Fut>(with: F)
where
    A: TestApp,
    F: Fn(Passlock<i64>, ManualClock) -> Fut,
    Fut: std::future::Future<Output = World<A>>,
{
    const SHOP: &str = "https://shop.example";
    const EVIL: &str = "https://evil.example";
    let clock = ManualClock::starting_now();
    let config = EmbeddedConfig::new("localhost", "t", [ORIGIN])
        .with_related_origins([format!("{SHOP}/"), SHOP.to_owned()]);
    let counted = counted(&clock, config).await;
    let w = with(counted.passlock.clone(), clock).await;

    let mut c = w.client();
    let r = c.get("/.well-known/webauthn").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json, json!({ "origins": [ORIGIN, SHOP] }));
    assert_eq!(r.header("content-type"), Some("application/json"));

    let mut auth = authenticator();
    let (_, registered) = sign_up_on(&mut c, &mut auth, SHOP, "alice").await;
    let r = registered.expect("signed up on the related origin");
    assert_eq!(r.status, 201, "{r:?}");
    let user: i64 = r.json["user_id"].as_str().unwrap().parse().unwrap();

    // A login from the related origin.
    let mut shopper = w.client();
    let a = shopper
        .send(from_origin(
            SHOP,
            "POST",
            "/passkey/authentication/authorize",
            json!({ "purpose": "login" }),
        ))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let base = service_base(&a.json);
    let o = shopper
        .send(from_origin(
            SHOP,
            "POST",
            &format!("{base}/authentication/options"),
            json!({ "authenticationToken": a.json["authenticationToken"] }),
        ))
        .await;
    let response = auth.get(&o.json["optionsJSON"]).await.unwrap();
    let v = shopper
        .send(from_origin(
            SHOP,
            "POST",
            &format!("{base}/authentication/verification"),
            json!({ "response": response, "sessionToken": o.json["sessionToken"] }),
        ))
        .await;
    assert_eq!(v.status, 200, "{v:?}");
    let field = if v.json["code"].is_string() {
        "code"
    } else {
        "id_token"
    };
    let r = shopper
        .send(from_origin(
            SHOP,
            "POST",
            "/passkey/login",
            shopper.proof(v.json[field].as_str().unwrap()),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(shopper.session_user().await, Some(user));

    // Another origin: the app's Origin check refuses it...
    let mut evil = w.client();
    let mut evil_auth = authenticator();
    let (r, registered) = sign_up_on(&mut evil, &mut evil_auth, EVIL, "mallory").await;
    r.assert_error(403, "forbidden_origin");
    assert!(registered.is_none());
    // ...and a ceremony whose client data names it is refused by the
    // provider, even when the requests carry an allowed Origin.
    let mut c = w.client();
    let a = c.authorize_sign_up("mallory").await;
    assert_eq!(a.status, 200, "{a:?}");
    let base = service_base(&a.json);
    let o = c
        .post(
            &format!("{base}/registration/options"),
            json!({ "registrationToken": a.json["registrationToken"] }),
        )
        .await;
    evil_auth.set_extra_client_data(Some(json!({ "origin": EVIL })));
    let response = evil_auth.create(&o.json["optionsJSON"]).await.unwrap();
    let v = c
        .post(
            &format!("{base}/registration/verification"),
            json!({ "response": response, "sessionToken": o.json["sessionToken"] }),
        )
        .await;
    assert_eq!(v.status, 403, "{v:?}");
    assert_eq!(v.json["_tag"], "@error/Forbidden");
    assert_eq!(v.json["code"], "origin_mismatch");
    assert_eq!(c.session_user().await, None);
}

/// Every scenario of this file, for one adapter: `$world` builds the
/// default world, `$with` a world around a given passlock.
#[macro_export]
macro_rules! named_scenarios {
    ($world:path, $with:path) => {
        $crate::named_scenarios!(@world $world;
            passkeys_are_listed_with_names_dates_and_backup_flags,
            an_invalid_passkey_name_is_refused_at_authorization,
            renaming_follows_the_rules_of_delete,
            registration_options_carry_the_username_not_the_id,
            conditional_mediation_for_autofill_and_upgrade,
        );
        $crate::named_scenarios!(@with $with;
            a_taken_username_is_refused_before_any_ceremony,
            related_origins_are_served_and_accepted,
            hook_defaults_use_the_stored_username,
        );
    };
    (@world $world:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::named::$name($world().await).await;
            }
        )*
    };
    (@with $with:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::named::$name($with).await;
            }
        )*
    };
}

//! The embedded provider: real WebAuthn ceremonies with the software
//! authenticator, no browser. The suite is written over
//! `(Arc<dyn CredentialStore>, Arc<dyn CeremonyStore>)` so every store
//! implementation runs it; `memory` instantiates it for the memory stores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passlock_core::clock::ManualClock;
use passlock_core::provider::embedded::{
    BrowserOp, BrowserResponse, CeremonyStore, CredentialStore, EmbeddedConfig, EmbeddedProvider,
    IdTokens, MemoryCeremonyStore, MemoryCredentialStore, SigningKey,
};
use passlock_core::provider::{AuthenticationRequest, PasskeyProvider, RegistrationRequest};
use passlock_core::secret::{Code, IdToken};
use passlock_core::{AuthenticatorId, Proof, ProviderError, Rejection, UserHandle};
use passlock_test::authenticator::SoftAuthenticator;
use serde_json::{Value, json};

const ORIGIN: &str = "http://localhost:3000";
const TENANCY: &str = "embedded";

type Stores = (Arc<dyn CredentialStore>, Arc<dyn CeremonyStore>);

/// A provider under test with its manual clock and stores.
struct Harness {
    provider: EmbeddedProvider,
    clock: ManualClock,
    stores: Stores,
}

/// The suite's configuration: every answer carries an id_token, since the
/// suite redeems them (the default, code-only answers unless asked, is
/// `code_only_unless_asked`).
fn config(clock: &ManualClock) -> EmbeddedConfig {
    EmbeddedConfig::new("localhost", "Test app", [ORIGIN])
        .with_clock(Arc::new(clock.clone()))
        .with_id_tokens(IdTokens::Always)
}

impl Harness {
    async fn new(stores: Stores) -> Self {
        let clock = ManualClock::starting_now();
        Self::with_config(stores, config(&clock), clock).await
    }

    async fn with_config(stores: Stores, config: EmbeddedConfig, clock: ManualClock) -> Self {
        let provider = EmbeddedProvider::new(config, stores.0.clone(), stores.1.clone())
            .await
            .unwrap();
        Self {
            provider,
            clock,
            stores,
        }
    }

    async fn call(&self, op: BrowserOp, body: &Value) -> BrowserResponse {
        self.provider
            .handle(TENANCY, op, body.to_string().as_bytes())
            .await
    }

    async fn registration_token(&self, user: &UserHandle, username: &str) -> String {
        self.provider
            .authorize_registration(RegistrationRequest::new(user.clone(), username))
            .await
            .unwrap()
            .token
            .expose_secret()
            .to_owned()
    }

    async fn authentication_token(&self, request: AuthenticationRequest) -> String {
        self.provider
            .authorize_authentication(request)
            .await
            .unwrap()
            .token
            .expose_secret()
            .to_owned()
    }

    /// Authorize + options: `(sessionToken, optionsJSON)`.
    async fn registration_options(&self, user: &UserHandle, username: &str) -> (String, Value) {
        let token = self.registration_token(user, username).await;
        let res = self
            .call(
                BrowserOp::RegistrationOptions,
                &json!({ "registrationToken": token }),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        (
            res.body["sessionToken"].as_str().unwrap().to_owned(),
            res.body["optionsJSON"].clone(),
        )
    }

    async fn authentication_options(&self, request: AuthenticationRequest) -> (String, Value) {
        let token = self.authentication_token(request).await;
        let res = self
            .call(
                BrowserOp::AuthenticationOptions,
                &json!({ "authenticationToken": token }),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["mediation"], "optional");
        (
            res.body["sessionToken"].as_str().unwrap().to_owned(),
            res.body["optionsJSON"].clone(),
        )
    }

    /// A full registration; returns the success body.
    async fn register(&self, auth: &mut SoftAuthenticator, user: &UserHandle) -> Value {
        let (session, options) = self.registration_options(user, "alice").await;
        let response = auth.create(&options).await.unwrap();
        let res = self
            .call(
                BrowserOp::RegistrationVerification,
                &json!({ "response": response, "sessionToken": session }),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        res.body
    }

    /// A full usernameless login attempt.
    async fn login(&self, auth: &mut SoftAuthenticator) -> BrowserResponse {
        let (session, options) = self
            .authentication_options(AuthenticationRequest::discoverable())
            .await;
        let response = auth.get(&options).await.unwrap();
        self.call(
            BrowserOp::AuthenticationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await
    }

    async fn stored_count(&self, user: &UserHandle) -> usize {
        self.stores.0.list_for_user(user).await.unwrap().len()
    }

    async fn sign_count(&self, id: &str) -> u32 {
        self.stores
            .0
            .get(&AuthenticatorId::new(id).unwrap())
            .await
            .unwrap()
            .unwrap()
            .sign_count
    }
}

/// Asserts a refusal with the given status and `code`.
#[track_caller]
fn assert_refused(res: &BrowserResponse, status: u16, code: &str) {
    assert_eq!(res.status, status, "{}", res.body);
    assert_eq!(res.body["code"], code, "{}", res.body);
    assert!(
        res.body["_tag"].as_str().unwrap().starts_with("@error/"),
        "{}",
        res.body
    );
    assert!(res.body["message"].is_string(), "{}", res.body);
}

fn rejection(e: ProviderError) -> Rejection {
    match e {
        ProviderError::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The suite.
// ---------------------------------------------------------------------------

/// Register, then log in usernameless; codes and id_tokens verify once.
async fn register_then_login(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();

    let reg = h.register(&mut auth, &user).await;
    assert_eq!(reg["_tag"], "RegistrationSuccess");
    assert_eq!(reg["principal"]["userId"], user.as_str());
    let cred_id = reg["principal"]["authenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(auth.credential_ids(), vec![cred_id.clone()]);
    assert_eq!(h.stored_count(&user).await, 1);

    // The registration code exchanges once, in the hosted wire form.
    let code = Code::new(reg["code"].as_str().unwrap());
    let principal = h.provider.exchange_code(&code).await.unwrap();
    assert_eq!(principal.tag, "ExtendedPrincipal");
    assert_eq!(principal.user_id, user);
    assert_eq!(principal.authenticator_id.as_str(), cred_id);
    assert_eq!(principal.authenticator_type, "passkey");
    assert!(principal.passkey.as_ref().unwrap().user_verified);
    let wire = serde_json::to_value(&principal).unwrap();
    assert_eq!(wire["userId"], user.as_str());
    assert!(wire["metadata"].is_object());
    assert_eq!(
        rejection(h.provider.verify(&Proof::Code(code)).await.unwrap_err()),
        Rejection::InvalidToken
    );

    // Usernameless login.
    let res = h.login(&mut auth).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["_tag"], "AuthenticationSuccess");
    assert_eq!(res.body["principal"]["userId"], user.as_str());
    assert_eq!(res.body["principal"]["authenticatorId"], cred_id.as_str());
    assert!(h.sign_count(&cred_id).await >= 1);

    let code = Code::new(res.body["code"].as_str().unwrap());
    let p = h.provider.verify(&Proof::Code(code.clone())).await.unwrap();
    assert_eq!(p.user_handle, user);
    assert_eq!(p.authenticator_id.as_str(), cred_id);
    assert!(p.user_verified);
    assert_eq!(
        rejection(h.provider.verify(&Proof::Code(code)).await.unwrap_err()),
        Rejection::InvalidToken
    );

    // The id_token (of another ceremony: this one's code is redeemed):
    // ES256, the hosted claims, single use.
    let res = h.login(&mut auth).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let token = res.body["id_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    // The header names the JWKS's one key (both sides being absent, an
    // empty set and no `kid`, must not pass as equal).
    let kid = header["kid"].as_str().expect("a kid in the header");
    assert!(!kid.is_empty());
    let jwks = h.provider.jwks();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1), "{jwks}");
    assert_eq!(jwks["keys"][0]["kid"].as_str(), Some(kid));
    assert_eq!(claims["iss"], "passlock-embedded");
    assert_eq!(claims["aud"], TENANCY);
    assert_eq!(claims["sub"], user.as_str());
    assert_eq!(claims["a:id"], cred_id.as_str());
    assert_eq!(claims["a:typ"], "passkey");
    assert_eq!(claims["pk:uv"], true);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
    let p = h
        .provider
        .verify(&Proof::IdToken(IdToken::new(token.clone())))
        .await
        .unwrap();
    assert_eq!(p.user_handle, user);
    assert_eq!(p.authenticator_id.as_str(), cred_id);
    assert_eq!(
        rejection(
            h.provider
                .verify(&Proof::IdToken(IdToken::new(token)))
                .await
                .unwrap_err()
        ),
        Rejection::Replayed
    );

    // JWKS: one P-256 key.
    let jwks = h.provider.jwks();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1), "{jwks}");
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert!(key.get("d").is_none());

    // Nonces are not this provider's proof.
    assert_eq!(
        rejection(
            h.provider
                .verify(&Proof::Nonce(passlock_core::secret::PassageNonce::new("n")))
                .await
                .unwrap_err()
        ),
        Rejection::Malformed
    );
}

/// Synced passkeys keep their counter at zero: that is no regression.
async fn counterless_passkey(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    auth.set_signature_counter(false);
    let reg = h.register(&mut auth, &UserHandle::random()).await;
    let id = reg["principal"]["authenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        let res = h.login(&mut auth).await;
        assert_eq!(res.status, 200, "{}", res.body);
    }
    assert_eq!(h.sign_count(&id).await, 0);
    // A clone of a counterless passkey cannot be told apart: it signs in.
    let mut clone = auth.clone();
    assert_eq!(h.login(&mut clone).await.status, 200);
}

/// Step-up: authentication restricted to the user's passkeys.
async fn restricted_authentication(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();
    let reg = h.register(&mut auth, &user).await;
    let id = AuthenticatorId::new(reg["principal"]["authenticatorId"].as_str().unwrap()).unwrap();

    let (session, options) = h
        .authentication_options(AuthenticationRequest::restricted(vec![id.clone()]))
        .await;
    assert_eq!(
        options["allowCredentials"][0]["id"].as_str().unwrap(),
        id.as_str()
    );
    let response = auth.get(&options).await.unwrap();
    let res = h
        .call(
            BrowserOp::AuthenticationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);

    // A passkey of another user does not pass a ceremony restricted to this one.
    let mut other = SoftAuthenticator::new(ORIGIN);
    h.register(&mut other, &UserHandle::random()).await;
    let (session, mut options) = h
        .authentication_options(AuthenticationRequest::restricted(vec![id]))
        .await;
    options["allowCredentials"] = json!([]);
    let response = other.get(&options).await.unwrap();
    let res = h
        .call(
            BrowserOp::AuthenticationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_refused(&res, 403, "ceremony_failed");

    // Unknown ids only: nothing to authenticate with.
    let token = h
        .authentication_token(AuthenticationRequest::restricted(vec![
            AuthenticatorId::new("AAAA").unwrap(),
        ]))
        .await;
    let res = h
        .call(
            BrowserOp::AuthenticationOptions,
            &json!({ "authenticationToken": token }),
        )
        .await;
    assert_eq!(res.status, 404, "{}", res.body);
}

/// The same assertion presented again is refused, whatever session it uses.
async fn replayed_assertion(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let reg = h.register(&mut auth, &UserHandle::random()).await;
    let id = reg["principal"]["authenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();

    let (session, options) = h
        .authentication_options(AuthenticationRequest::discoverable())
        .await;
    let response = auth.get(&options).await.unwrap();
    let body = json!({ "response": response, "sessionToken": session });
    assert_eq!(
        h.call(BrowserOp::AuthenticationVerification, &body)
            .await
            .status,
        200
    );
    let count = h.sign_count(&id).await;

    // Same session token: gone.
    let res = h.call(BrowserOp::AuthenticationVerification, &body).await;
    assert_refused(&res, 403, "invalid_token");

    // A fresh session: the challenge does not match.
    let (session2, _) = h
        .authentication_options(AuthenticationRequest::discoverable())
        .await;
    let res = h
        .call(
            BrowserOp::AuthenticationVerification,
            &json!({ "response": body["response"], "sessionToken": session2 }),
        )
        .await;
    assert_refused(&res, 403, "ceremony_failed");
    assert_eq!(h.sign_count(&id).await, count, "nothing stored");
}

/// A session token verifies at most once, also under concurrency.
async fn session_token_single_use(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();

    // Registration: second use refused, one credential stored.
    let (session, options) = h.registration_options(&user, "alice").await;
    let response = auth.create(&options).await.unwrap();
    let body = json!({ "response": response, "sessionToken": session });
    assert_eq!(
        h.call(BrowserOp::RegistrationVerification, &body)
            .await
            .status,
        200
    );
    let res = h.call(BrowserOp::RegistrationVerification, &body).await;
    assert_refused(&res, 403, "invalid_token");
    assert_eq!(h.stored_count(&user).await, 1);

    // Tokens are single use too.
    let token = h.registration_token(&user, "alice").await;
    let body = json!({ "registrationToken": token });
    assert_eq!(
        h.call(BrowserOp::RegistrationOptions, &body).await.status,
        200
    );
    let res = h.call(BrowserOp::RegistrationOptions, &body).await;
    assert_refused(&res, 403, "invalid_token");

    // Two concurrent verifications of one session: exactly one succeeds.
    for _ in 0..5 {
        let (session, options) = h
            .authentication_options(AuthenticationRequest::discoverable())
            .await;
        let response = auth.get(&options).await.unwrap();
        let body = json!({ "response": response, "sessionToken": session });
        let (a, b) = tokio::join!(
            h.call(BrowserOp::AuthenticationVerification, &body),
            h.call(BrowserOp::AuthenticationVerification, &body)
        );
        let ok = [a.status, b.status].iter().filter(|s| **s == 200).count();
        assert_eq!(ok, 1, "{} / {}", a.body, b.body);
    }

    // Concurrent options for one token: exactly one succeeds.
    let token = h
        .authentication_token(AuthenticationRequest::discoverable())
        .await;
    let body = json!({ "authenticationToken": token });
    let (a, b) = tokio::join!(
        h.call(BrowserOp::AuthenticationOptions, &body),
        h.call(BrowserOp::AuthenticationOptions, &body)
    );
    assert_eq!(
        [a.status, b.status].iter().filter(|s| **s == 200).count(),
        1
    );
}

/// Tokens, ceremonies and codes expire.
async fn expiry(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();

    // An expired registration token.
    let token = h.registration_token(&user, "alice").await;
    h.clock.advance_secs(301);
    let res = h
        .call(
            BrowserOp::RegistrationOptions,
            &json!({ "registrationToken": token }),
        )
        .await;
    assert_refused(&res, 403, "invalid_token");

    // An expired ceremony.
    let (session, options) = h.registration_options(&user, "alice").await;
    let response = auth.create(&options).await.unwrap();
    h.clock.advance_secs(301);
    let res = h
        .call(
            BrowserOp::RegistrationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_refused(&res, 403, "invalid_token");
    assert_eq!(h.stored_count(&user).await, 0, "nothing stored");

    // An expired code.
    auth.clear();
    let reg = h.register(&mut auth, &user).await;
    h.clock.advance_secs(299);
    let fresh = h.login(&mut auth).await;
    assert_eq!(fresh.status, 200);
    h.clock.advance_secs(2);
    let code = Code::new(reg["code"].as_str().unwrap());
    // An expired code is gone from the store: unknown, like a used one.
    assert_eq!(
        rejection(h.provider.verify(&Proof::Code(code)).await.unwrap_err()),
        Rejection::InvalidToken
    );
    // ...while the one issued 2 s ago still works.
    let code = Code::new(fresh.body["code"].as_str().unwrap());
    h.provider.verify(&Proof::Code(code)).await.unwrap();

    // An expired authentication token.
    let token = h
        .authentication_token(AuthenticationRequest::discoverable())
        .await;
    h.clock.advance_secs(301);
    let res = h
        .call(
            BrowserOp::AuthenticationOptions,
            &json!({ "authenticationToken": token }),
        )
        .await;
    assert_refused(&res, 403, "invalid_token");

    // An expired id_token.
    let res = h.login(&mut auth).await;
    assert_eq!(res.status, 200);
    h.clock.advance_secs(400);
    let token = IdToken::new(res.body["id_token"].as_str().unwrap());
    assert_eq!(
        rejection(h.provider.verify(&Proof::IdToken(token)).await.unwrap_err()),
        Rejection::Expired
    );
}

/// A ceremony run on another origin is refused.
async fn wrong_origin(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();

    auth.set_origin("http://localhost:4000");
    let (session, options) = h.registration_options(&user, "alice").await;
    let response = auth.create(&options).await.unwrap();
    let res = h
        .call(
            BrowserOp::RegistrationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_refused(&res, 403, "origin_mismatch");
    assert_eq!(h.stored_count(&user).await, 0);

    auth.clear();
    auth.set_origin(ORIGIN);
    let reg = h.register(&mut auth, &user).await;
    let id = reg["principal"]["authenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = h.sign_count(&id).await;
    auth.set_origin("http://localhost:4000");
    let res = h.login(&mut auth).await;
    assert_refused(&res, 403, "origin_mismatch");
    assert_eq!(h.sign_count(&id).await, before);
}

/// A ceremony for another RP id (valid for the origin) is refused.
async fn wrong_rp_id(stores: Stores) {
    let clock = ManualClock::starting_now();
    let config = EmbeddedConfig::new("example.com", "Example", ["https://login.example.com"])
        .with_clock(Arc::new(clock.clone()));
    let h = Harness::with_config(stores, config, clock).await;
    let mut auth = SoftAuthenticator::new("https://login.example.com");
    let user = UserHandle::random();

    let (session, mut options) = h.registration_options(&user, "alice").await;
    assert_eq!(options["rp"]["id"], "example.com");
    options["rp"]["id"] = json!("login.example.com");
    let response = auth.create(&options).await.unwrap();
    let res = h
        .call(
            BrowserOp::RegistrationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_refused(&res, 403, "rp_id_mismatch");
    assert_eq!(h.stored_count(&user).await, 0);

    // Authentication: a credential for the right RP, asserted for a subdomain RP id.
    auth.clear();
    let reg = h.register(&mut auth, &user).await;
    let id = reg["principal"]["authenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (session, mut options) = h
        .authentication_options(AuthenticationRequest::discoverable())
        .await;
    // Re-bind the device's credential to the other RP id, as a proxy would.
    let mut sub = auth.clone();
    sub.rebind_rp_id("login.example.com");
    options["rpId"] = json!("login.example.com");
    let response = sub.get(&options).await.unwrap();
    let res = h
        .call(
            BrowserOp::AuthenticationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_refused(&res, 403, "rp_id_mismatch");
    assert_eq!(h.sign_count(&id).await, 0);
}

/// Without user verification, nothing passes when it is required.
async fn user_verification_required(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();

    let (session, options) = h.registration_options(&user, "alice").await;
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["requireResidentKey"],
        true
    );
    auth.set_user_verification(false);
    let response = auth.create(&options).await.unwrap();
    let res = h
        .call(
            BrowserOp::RegistrationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_refused(&res, 403, "user_not_verified");
    assert_eq!(h.stored_count(&user).await, 0);

    auth.clear();
    auth.set_user_verification(true);
    let reg = h.register(&mut auth, &user).await;
    let id = reg["principal"]["authenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = h.sign_count(&id).await;
    auth.set_user_verification(false);
    let res = h.login(&mut auth).await;
    assert_refused(&res, 403, "user_not_verified");
    assert_eq!(h.sign_count(&id).await, before);
}

/// Rewrites the credential id of a registration response (attestation
/// "none" does not sign it): the id-hijack attack.
fn with_credential_id(response: &Value, new_id: &str) -> Value {
    let old = URL_SAFE_NO_PAD
        .decode(response["rawId"].as_str().unwrap())
        .unwrap();
    let new = URL_SAFE_NO_PAD.decode(new_id).unwrap();
    assert_eq!(old.len(), new.len());
    let mut out = response.clone();
    out["id"] = json!(new_id);
    out["rawId"] = json!(new_id);
    for field in ["attestationObject", "authenticatorData"] {
        if let Some(s) = response["response"][field].as_str() {
            let bytes = URL_SAFE_NO_PAD.decode(s).unwrap();
            let pos = bytes
                .windows(old.len())
                .position(|w| w == old.as_slice())
                .unwrap();
            let mut bytes = bytes;
            bytes[pos..pos + new.len()].copy_from_slice(&new);
            out["response"][field] = json!(URL_SAFE_NO_PAD.encode(bytes));
        }
    }
    out
}

/// A credential id that exists is never registered again, for any user.
async fn duplicate_credential(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let alice = UserHandle::random();
    let reg = h.register(&mut auth, &alice).await;
    let id = reg["principal"]["authenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();

    for (user, n) in [(alice.clone(), 1), (UserHandle::random(), 0)] {
        let mut attacker = SoftAuthenticator::new(ORIGIN);
        let (session, options) = h.registration_options(&user, "mallory").await;
        let response = attacker.create(&options).await.unwrap();
        let forged = with_credential_id(&response, &id);
        let res = h
            .call(
                BrowserOp::RegistrationVerification,
                &json!({ "response": forged, "sessionToken": session }),
            )
            .await;
        assert_refused(&res, 409, "credential_exists");
        assert_eq!(h.stored_count(&user).await, n);
    }
    // The original is untouched and still belongs to alice.
    let stored = h
        .stores
        .0
        .get(&AuthenticatorId::new(id.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.user_handle, alice);
    assert_eq!(h.login(&mut auth).await.status, 200);
}

/// A response whose `id`/`rawId` names another credential than the one in
/// its attestation is refused: the passkey would be stored under an id the
/// browser never uses.
async fn attested_id_differs_from_raw_id(stores: Stores) {
    let h = Harness::new(stores).await;
    let user = UserHandle::random();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let (session, options) = h.registration_options(&user, "alice").await;
    let mut response = auth.create(&options).await.unwrap();
    let raw = URL_SAFE_NO_PAD
        .decode(response["rawId"].as_str().unwrap())
        .unwrap();
    let other = URL_SAFE_NO_PAD.encode(raw.iter().map(|b| b ^ 0xff).collect::<Vec<u8>>());
    response["id"] = json!(other);
    response["rawId"] = json!(other);
    let res = h
        .call(
            BrowserOp::RegistrationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_refused(&res, 400, "malformed_proof");
    assert_eq!(h.stored_count(&user).await, 0);
}

/// A cloned authenticator whose counter fell behind is refused.
async fn counter_regression(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let reg = h.register(&mut auth, &UserHandle::random()).await;
    let id = reg["principal"]["authenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut clone = auth.clone();
    assert_eq!(h.login(&mut auth).await.status, 200);
    assert_eq!(h.login(&mut auth).await.status, 200);
    let count = h.sign_count(&id).await;
    assert!(count >= 2);

    let res = h.login(&mut clone).await;
    assert_refused(&res, 403, "counter_regressed");
    assert_eq!(h.sign_count(&id).await, count);

    // Equal counters are a regression too.
    clone.set_counters(count - 1);
    let res = h.login(&mut clone).await;
    assert_refused(&res, 403, "counter_regressed");
    assert_eq!(h.sign_count(&id).await, count);

    // The genuine device goes on.
    assert_eq!(h.login(&mut auth).await.status, 200);
    assert!(h.sign_count(&id).await > count);
}

/// A response made for one ceremony does not complete another.
async fn crossed_ceremonies(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();

    let (_session_a, options_a) = h.registration_options(&user, "alice").await;
    let (session_b, _options_b) = h.registration_options(&user, "alice").await;
    let response = auth.create(&options_a).await.unwrap();
    let res = h
        .call(
            BrowserOp::RegistrationVerification,
            &json!({ "response": response, "sessionToken": session_b }),
        )
        .await;
    assert_refused(&res, 403, "ceremony_failed");
    assert_eq!(h.stored_count(&user).await, 0);

    auth.clear();
    let reg = h.register(&mut auth, &user).await;
    let id = reg["principal"]["authenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = h.sign_count(&id).await;
    let (_session_a, options_a) = h
        .authentication_options(AuthenticationRequest::discoverable())
        .await;
    let (session_b, _) = h
        .authentication_options(AuthenticationRequest::discoverable())
        .await;
    let response = auth.get(&options_a).await.unwrap();
    let res = h
        .call(
            BrowserOp::AuthenticationVerification,
            &json!({ "response": response, "sessionToken": session_b }),
        )
        .await;
    assert_refused(&res, 403, "ceremony_failed");
    assert_eq!(h.sign_count(&id).await, before);

    // A registration session on the authentication route (and back) is refused.
    let (session, options) = h.registration_options(&user, "alice").await;
    let mut other = SoftAuthenticator::new(ORIGIN);
    let response = other.create(&options).await.unwrap();
    let res = h
        .call(
            BrowserOp::AuthenticationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_refused(&res, 400, "malformed_proof");
    assert_eq!(h.stored_count(&user).await, 1);
}

/// Truncates every string in `value` at path `path` to half its length.
fn truncate_at(value: &Value, path: &[&str]) -> Value {
    let mut out = value.clone();
    let mut cur = &mut out;
    for p in path {
        cur = cur.get_mut(*p).unwrap();
    }
    if let Some(s) = cur.as_str() {
        *cur = json!(s[..s.len() / 2].to_owned());
    }
    out
}

/// Every path to a string in `value`.
fn string_paths(value: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::String(_) => out.push(prefix),
        Value::Object(map) => {
            for (k, v) in map {
                let mut p = prefix.clone();
                p.push(k.clone());
                string_paths(v, p, out);
            }
        }
        _ => {}
    }
}

/// Garbage and truncated JSON in every field: a 4xx, never a panic, nothing stored.
async fn garbage_everywhere(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();

    let garbage: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"x\"".to_vec(),
        b"{".to_vec(),
        b"{\"registrationToken\":".to_vec(),
        b"\xff\xfe\x00".to_vec(),
        b"{}".to_vec(),
        br#"{"registrationToken":5,"authenticationToken":[],"sessionToken":{},"response":1}"#
            .to_vec(),
        br#"{"registrationToken":"","authenticationToken":"","sessionToken":"","response":{}}"#
            .to_vec(),
        br#"{"registrationToken":"nope","authenticationToken":"nope","sessionToken":"nope","response":{"id":"x"}}"#
            .to_vec(),
        format!(
            r#"{{"registrationToken":"{0}","authenticationToken":"{0}","sessionToken":"{0}"}}"#,
            "a".repeat(100_000)
        )
        .into_bytes(),
        br#"{"registrationToken":"a\u0000b","sessionToken":"a\nb","response":{}}"#.to_vec(),
    ];
    for op in [
        BrowserOp::RegistrationOptions,
        BrowserOp::RegistrationVerification,
        BrowserOp::AuthenticationOptions,
        BrowserOp::AuthenticationVerification,
    ] {
        for (i, body) in garbage.iter().enumerate() {
            let res = h.provider.handle(TENANCY, op, body).await;
            // Over the body cap: 413. Well-formed tokens nobody issued (empty,
            // unknown, with control characters): 403. Anything else: 400.
            let (status, code) = match i {
                11 => (413, "payload_too_large"),
                9 | 10 => (403, "invalid_token"),
                12 if op != BrowserOp::AuthenticationOptions => (403, "invalid_token"),
                _ => (400, "bad_request"),
            };
            assert_eq!(
                (res.status, res.body["code"].as_str()),
                (status, Some(code)),
                "{op:?}, garbage #{i}: {}",
                res.body
            );
            assert!(res.body["_tag"].as_str().unwrap().starts_with("@error/"));
        }
        // Unknown tenancy.
        let res = h.provider.handle("other", op, b"{}").await;
        assert_refused(&res, 404, "invalid_tenancy");
        assert_eq!(res.body["_tag"], "@error/InvalidTenancy");
    }

    // A valid registration body, truncated at every length.
    let (session, options) = h.registration_options(&user, "alice").await;
    let response = auth.create(&options).await.unwrap();
    let body = json!({ "response": response, "sessionToken": session }).to_string();
    for cut in (0..body.len()).step_by(37) {
        let res = h
            .provider
            .handle(
                TENANCY,
                BrowserOp::RegistrationVerification,
                &body.as_bytes()[..cut],
            )
            .await;
        assert_refused(&res, 400, "bad_request");
    }

    // Every string field of the response truncated, each on a fresh ceremony.
    let mut paths = Vec::new();
    string_paths(&response, Vec::new(), &mut paths);
    assert!(paths.len() >= 4);
    for path in &paths {
        let mut fresh = SoftAuthenticator::new(ORIGIN);
        let (session, options) = h.registration_options(&user, "alice").await;
        let response = fresh.create(&options).await.unwrap();
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let broken = truncate_at(&response, &path);
        let res = h
            .call(
                BrowserOp::RegistrationVerification,
                &json!({ "response": broken, "sessionToken": session }),
            )
            .await;
        // Truncating a field nobody checks (e.g. the attachment) may still
        // verify; everything that matters is refused with a 4xx.
        if res.status == 200 {
            assert!(
                matches!(
                    path.last().copied(),
                    Some("authenticatorAttachment" | "publicKey" | "authenticatorData")
                ),
                "{path:?} accepted: {}",
                broken
            );
        } else {
            assert_refused(&res, 400, "malformed_proof");
        }
    }
    let registered = h.stored_count(&user).await;

    // Same for authentication.
    auth.clear();
    h.register(&mut auth, &user).await;
    let (session, options) = h
        .authentication_options(AuthenticationRequest::discoverable())
        .await;
    let response = auth.get(&options).await.unwrap();
    let body = json!({ "response": response, "sessionToken": session }).to_string();
    for cut in (0..body.len()).step_by(29) {
        let res = h
            .provider
            .handle(
                TENANCY,
                BrowserOp::AuthenticationVerification,
                &body.as_bytes()[..cut],
            )
            .await;
        assert_refused(&res, 400, "bad_request");
    }
    let mut paths = Vec::new();
    string_paths(&response, Vec::new(), &mut paths);
    for path in &paths {
        let (session, options) = h
            .authentication_options(AuthenticationRequest::discoverable())
            .await;
        let response = auth.get(&options).await.unwrap();
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let broken = truncate_at(&response, &path);
        let res = h
            .call(
                BrowserOp::AuthenticationVerification,
                &json!({ "response": broken, "sessionToken": session }),
            )
            .await;
        if res.status == 200 {
            assert!(
                matches!(path.last().copied(), Some("authenticatorAttachment")),
                "{path:?} accepted"
            );
        } else {
            // Half a base64url string is sometimes still base64url (the
            // signature's length varies): then the signature fails.
            assert!(
                matches!(
                    (res.status, res.body["code"].as_str()),
                    (400, Some("malformed_proof")) | (403, Some("ceremony_failed"))
                ),
                "{path:?}: {}",
                res.body
            );
        }
        // Replace the field by garbage of another type.
        let (session, options) = h
            .authentication_options(AuthenticationRequest::discoverable())
            .await;
        let response = auth.get(&options).await.unwrap();
        let mut broken = response.clone();
        let mut cur = &mut broken;
        for p in &path {
            cur = cur.get_mut(*p).unwrap();
        }
        *cur = json!({ "nested": [1, 2, 3] });
        let res = h
            .call(
                BrowserOp::AuthenticationVerification,
                &json!({ "response": broken, "sessionToken": session }),
            )
            .await;
        if res.status == 200 {
            assert!(
                matches!(path.last().copied(), Some("authenticatorAttachment")),
                "{path:?} accepted"
            );
        } else {
            assert_refused(&res, 400, "malformed_proof");
        }
    }
    assert!(h.stored_count(&user).await >= registered);

    // Proofs that are garbage.
    for raw in [
        "",
        "x",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        &"z".repeat(600),
    ] {
        assert_eq!(
            rejection(
                h.provider
                    .verify(&Proof::Code(Code::new(raw)))
                    .await
                    .unwrap_err()
            ),
            Rejection::InvalidToken,
            "{raw:?}"
        );
        let expected = match raw.starts_with("eyJhbGciOiJub25lIn0") {
            true => Rejection::DisallowedAlgorithm,
            false => Rejection::Malformed,
        };
        assert_eq!(
            rejection(
                h.provider
                    .verify(&Proof::IdToken(IdToken::new(raw)))
                    .await
                    .unwrap_err()
            ),
            expected,
            "{raw:?}"
        );
    }
}

/// A passkey deleted from the store: authentication answers PasskeyNotFound.
async fn deleted_passkey(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let reg = h.register(&mut auth, &UserHandle::random()).await;
    let id = AuthenticatorId::new(reg["principal"]["authenticatorId"].as_str().unwrap()).unwrap();
    h.provider.delete_passkey(&id).await.unwrap();
    let res = h.login(&mut auth).await;
    assert_refused(&res, 404, "unknown_credential");
    assert_eq!(res.body["_tag"], "@error/PasskeyNotFound");
    assert_eq!(res.body["credentialId"], id.as_str());
    assert_eq!(res.body["rpId"], "localhost");
}

/// A provider rebuilt over the same stores verifies what the first issued.
async fn restart(stores: Stores) {
    let clock = ManualClock::starting_now();
    let h = Harness::with_config(stores.clone(), config(&clock), clock.clone()).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();
    h.register(&mut auth, &user).await;
    let res = h.login(&mut auth).await;
    assert_eq!(res.status, 200);
    let jwks = h.provider.jwks();
    // A ceremony in flight across the restart.
    let (session, options) = h
        .authentication_options(AuthenticationRequest::discoverable())
        .await;
    drop(h);

    let h2 = Harness::with_config(stores, config(&clock), clock).await;
    assert_eq!(h2.provider.jwks(), jwks, "the signing key persisted");
    let token = IdToken::new(res.body["id_token"].as_str().unwrap());
    let p = h2
        .provider
        .verify(&Proof::IdToken(token.clone()))
        .await
        .unwrap();
    assert_eq!(p.user_handle, user);
    assert_eq!(
        rejection(
            h2.provider
                .verify(&Proof::IdToken(token))
                .await
                .unwrap_err()
        ),
        Rejection::Replayed
    );
    // Its twin code went with it.
    let code = Code::new(res.body["code"].as_str().unwrap());
    assert_eq!(
        rejection(h2.provider.verify(&Proof::Code(code)).await.unwrap_err()),
        Rejection::InvalidToken
    );
    let response = auth.get(&options).await.unwrap();
    let res = h2
        .call(
            BrowserOp::AuthenticationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
}

/// Two instances over the same stores act as one server.
async fn two_instances(stores: Stores) {
    let clock = ManualClock::starting_now();
    let a = Harness::with_config(stores.clone(), config(&clock), clock.clone()).await;
    let b = Harness::with_config(stores, config(&clock), clock).await;
    assert_eq!(a.provider.jwks(), b.provider.jwks());
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();

    // Authorized on A, options on B, verification on A.
    let token = a.registration_token(&user, "alice").await;
    let res = b
        .call(
            BrowserOp::RegistrationOptions,
            &json!({ "registrationToken": token }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let response = auth.create(&res.body["optionsJSON"]).await.unwrap();
    let body = json!({ "response": response, "sessionToken": res.body["sessionToken"] });
    let reg = a.call(BrowserOp::RegistrationVerification, &body).await;
    assert_eq!(reg.status, 200, "{}", reg.body);
    // The session is gone for B too.
    let again = b.call(BrowserOp::RegistrationVerification, &body).await;
    assert_refused(&again, 403, "invalid_token");

    // A code issued by A exchanges once, on B; its twin id_token then on
    // neither.
    let code = Code::new(reg.body["code"].as_str().unwrap());
    b.provider.verify(&Proof::Code(code.clone())).await.unwrap();
    assert_eq!(
        rejection(a.provider.verify(&Proof::Code(code)).await.unwrap_err()),
        Rejection::InvalidToken
    );
    let token = IdToken::new(reg.body["id_token"].as_str().unwrap());
    assert_eq!(
        rejection(a.provider.verify(&Proof::IdToken(token)).await.unwrap_err()),
        Rejection::Replayed
    );

    // Login across instances, both ways; an id_token verifies once, on
    // either.
    let login = b.login(&mut auth).await;
    assert_eq!(login.status, 200);
    let token = IdToken::new(login.body["id_token"].as_str().unwrap());
    b.provider
        .verify(&Proof::IdToken(token.clone()))
        .await
        .unwrap();
    assert_eq!(
        rejection(a.provider.verify(&Proof::IdToken(token)).await.unwrap_err()),
        Rejection::Replayed
    );
    assert_eq!(a.login(&mut auth).await.status, 200);
}

/// Error bodies never echo what the client sent.
async fn errors_carry_no_secrets(stores: Stores) {
    let h = Harness::new(stores).await;
    let marker = "SECRETMARKER4242";
    for op in [
        BrowserOp::RegistrationOptions,
        BrowserOp::RegistrationVerification,
        BrowserOp::AuthenticationOptions,
        BrowserOp::AuthenticationVerification,
    ] {
        let body = json!({
            "registrationToken": marker,
            "authenticationToken": marker,
            "sessionToken": marker,
            "response": { "id": marker, "rawId": marker, "type": marker, "response": {} },
        });
        let res = h.call(op, &body).await;
        assert_refused(&res, 403, "invalid_token");
        assert!(!res.body.to_string().contains(marker), "{}", res.body);
    }
    // A real session with a response carrying the marker.
    let (session, _) = h
        .authentication_options(AuthenticationRequest::discoverable())
        .await;
    let res = h
        .call(
            BrowserOp::AuthenticationVerification,
            &json!({ "sessionToken": session, "response": { "id": marker, "rawId": marker } }),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(!res.body.to_string().contains(marker));
    assert!(!res.body.to_string().contains(&session));
}

/// User verification not required: a passkey without UV registers.
async fn user_verification_optional(stores: Stores) {
    let clock = ManualClock::starting_now();
    let h = Harness::with_config(
        stores,
        config(&clock).with_user_verification_required(false),
        clock,
    )
    .await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    auth.set_user_verification(false);
    let user = UserHandle::random();
    let (session, options) = h.registration_options(&user, "bob").await;
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "preferred"
    );
    let response = auth.create(&options).await.unwrap();
    let res = h
        .call(
            BrowserOp::RegistrationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let id =
        AuthenticatorId::new(res.body["principal"]["authenticatorId"].as_str().unwrap()).unwrap();
    let res = h.login(&mut auth).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let p = h
        .provider
        .verify(&Proof::Code(Code::new(res.body["code"].as_str().unwrap())))
        .await
        .unwrap();
    assert!(!p.user_verified);
    // A ceremony restricted to the passkey (step-up) takes it too: webauthn-rs
    // verifies both kinds of authentication under the relaxed policy.
    let (session, options) = h
        .authentication_options(AuthenticationRequest::restricted(vec![id]))
        .await;
    assert_eq!(options["userVerification"], "preferred");
    let response = auth.get(&options).await.unwrap();
    let res = h
        .call(
            BrowserOp::AuthenticationVerification,
            &json!({ "response": response, "sessionToken": session }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let p = h
        .provider
        .verify(&Proof::Code(Code::new(res.body["code"].as_str().unwrap())))
        .await
        .unwrap();
    assert!(!p.user_verified);
}

/// One code exchanged by 50 tasks at once (on the runtime's threads):
/// exactly one gets the principal, the others an invalid-token rejection.
/// For a registration code and a login code.
async fn code_exchanged_concurrently_succeeds_once(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();
    let reg = h.register(&mut auth, &user).await;
    let login = h.login(&mut auth).await;
    assert_eq!(login.status, 200, "{}", login.body);
    for body in [reg, login.body] {
        let raw = body["code"].as_str().unwrap().to_owned();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let provider = h.provider.clone();
                let code = Code::new(raw.as_str());
                tokio::spawn(async move { provider.exchange_code(&code).await })
            })
            .collect();
        let mut won = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(principal) => won.push(principal),
                Err(e) => assert_eq!(rejection(e), Rejection::InvalidToken),
            }
        }
        assert_eq!(won.len(), 1, "{won:?}");
        assert_eq!(won[0].user_id.as_str(), user.as_str());
    }
}

/// The code and the id_token of one ceremony are one proof: whichever is
/// redeemed first consumes the other, in either order, for a registration
/// and a login ceremony.
async fn twin_proofs_redeem_once(stores: Stores) {
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();
    let reg = h.register(&mut auth, &user).await;
    let first = h.login(&mut auth).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = h.login(&mut auth).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let proofs = |body: &Value| {
        (
            Proof::Code(Code::new(body["code"].as_str().unwrap())),
            Proof::IdToken(IdToken::new(body["id_token"].as_str().unwrap())),
        )
    };
    // Code first: its id_token is a replay.
    for body in [&reg, &first.body] {
        let (code, id_token) = proofs(body);
        h.provider.verify(&code).await.unwrap();
        assert_eq!(
            rejection(h.provider.verify(&id_token).await.unwrap_err()),
            Rejection::Replayed
        );
    }
    // id_token first: its code is gone.
    let (code, id_token) = proofs(&second.body);
    h.provider.verify(&id_token).await.unwrap();
    assert_eq!(
        rejection(h.provider.verify(&code).await.unwrap_err()),
        Rejection::InvalidToken
    );
}

/// With the default configuration ([`IdTokens::OnRequest`]) an answer
/// carries the code alone, which exchanges once (also under 50 concurrent
/// exchanges); a verification asking with `"idToken": true` gets an
/// id_token that verifies, twinned with its code; any other `idToken` is a
/// bad request that leaves the ceremony untouched.
async fn code_only_unless_asked(stores: Stores) {
    let clock = ManualClock::starting_now();
    let default =
        EmbeddedConfig::new("localhost", "Test app", [ORIGIN]).with_clock(Arc::new(clock.clone()));
    assert_eq!(default.id_tokens, IdTokens::OnRequest);
    let h = Harness::with_config(stores, default, clock).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();

    let reg = h.register(&mut auth, &user).await;
    assert_eq!(reg["_tag"], "RegistrationSuccess");
    assert!(reg.get("id_token").is_none(), "{reg}");
    let principal = h
        .provider
        .exchange_code(&Code::new(reg["code"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(principal.user_id, user);
    assert_eq!(principal.id.len(), 22, "a fresh jti-like principal id");

    let login = h.login(&mut auth).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.body["_tag"], "AuthenticationSuccess");
    assert!(login.body.get("id_token").is_none(), "{}", login.body);
    let raw = login.body["code"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let provider = h.provider.clone();
            let code = Code::new(raw.as_str());
            tokio::spawn(async move { provider.verify(&Proof::Code(code)).await })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(p) => won.push(p),
            Err(e) => assert_eq!(rejection(e), Rejection::InvalidToken),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(won[0].user_handle, user);
    assert!(won[0].user_verified);

    // Asked for: an id_token that verifies, once, and consumes its code.
    let (session, options) = h
        .authentication_options(AuthenticationRequest::discoverable())
        .await;
    let response = auth.get(&options).await.unwrap();
    for bad in [json!("yes"), json!(1), json!(null)] {
        let res = h
            .call(
                BrowserOp::AuthenticationVerification,
                &json!({ "response": response, "sessionToken": session, "idToken": bad }),
            )
            .await;
        assert_refused(&res, 400, "bad_request");
    }
    let asked = h
        .call(
            BrowserOp::AuthenticationVerification,
            &json!({ "response": response, "sessionToken": session, "idToken": true }),
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let id_token = Proof::IdToken(IdToken::new(asked.body["id_token"].as_str().unwrap()));
    let p = h.provider.verify(&id_token).await.unwrap();
    assert_eq!(p.user_handle, user);
    assert_eq!(
        rejection(h.provider.verify(&id_token).await.unwrap_err()),
        Rejection::Replayed
    );
    let code = Code::new(asked.body["code"].as_str().unwrap());
    assert_eq!(
        rejection(h.provider.verify(&Proof::Code(code)).await.unwrap_err()),
        Rejection::InvalidToken
    );
    // `"idToken": false` is the default: the code alone.
    let (session, options) = h
        .authentication_options(AuthenticationRequest::discoverable())
        .await;
    let response = auth.get(&options).await.unwrap();
    let plain = h
        .call(
            BrowserOp::AuthenticationVerification,
            &json!({ "response": response, "sessionToken": session, "idToken": false }),
        )
        .await;
    assert_eq!(plain.status, 200, "{}", plain.body);
    assert!(plain.body.get("id_token").is_none(), "{}", plain.body);
}

/// Keeps whatever backs a store (a PostgreSQL database guard) alive.
type Guard = Box<dyn std::any::Any + Send>;

fn memory_stores() -> (Stores, Guard) {
    (
        (
            Arc::new(MemoryCredentialStore::new()),
            Arc::new(MemoryCeremonyStore::new()),
        ),
        Box::new(()),
    )
}

async fn sqlite_stores() -> (Stores, Guard) {
    use passlock_core::store::sqlite::{self, SqliteCeremonyStore, SqliteCredentialStore};
    let pool = passlock_tests::sqlite_pool().await;
    sqlite::migrate(&pool).await.unwrap();
    (
        (
            Arc::new(SqliteCredentialStore::new(pool.clone())),
            Arc::new(SqliteCeremonyStore::new(pool)),
        ),
        Box::new(()),
    )
}

async fn postgres_stores() -> (Stores, Guard) {
    use passlock_core::store::postgres::{self, PgCeremonyStore, PgCredentialStore};
    let (pool, guard) = passlock_tests::pg_database().await;
    postgres::migrate(&pool).await.unwrap();
    (
        (
            Arc::new(PgCredentialStore::new(pool.clone())),
            Arc::new(PgCeremonyStore::new(pool)),
        ),
        Box::new(guard),
    )
}

macro_rules! suite {
    ($module:ident, $setup:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let (stores, guard): (super::Stores, super::Guard) = $setup;
                        super::$name(stores).await;
                        drop(guard);
                    }
                };
            }

            case!(register_then_login);
            case!(restricted_authentication);
            case!(replayed_assertion);
            case!(session_token_single_use);
            case!(expiry);
            case!(wrong_origin);
            case!(wrong_rp_id);
            case!(user_verification_required);
            case!(user_verification_optional);
            case!(duplicate_credential);
            case!(attested_id_differs_from_raw_id);
            case!(counter_regression);
            case!(counterless_passkey);
            case!(crossed_ceremonies);
            case!(garbage_everywhere);
            case!(deleted_passkey);
            case!(restart);
            case!(two_instances);
            case!(errors_carry_no_secrets);
            case!(code_exchanged_concurrently_succeeds_once);
            case!(twin_proofs_redeem_once);
            case!(code_only_unless_asked);
        }
    };
}

suite!(memory, memory_stores());
suite!(sqlite, sqlite_stores().await);
suite!(postgres, postgres_stores().await);

// ---------------------------------------------------------------------------
// Configuration and key handling.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn config_is_validated() {
    let ok = || EmbeddedConfig::new("localhost", "App", [ORIGIN]);
    let cases: Vec<(EmbeddedConfig, &str)> = vec![
        (EmbeddedConfig::new("", "App", [ORIGIN]), "rp_id"),
        (
            EmbeddedConfig::new("https://x.com", "App", [ORIGIN]),
            "rp_id",
        ),
        (EmbeddedConfig::new("localhost", "", [ORIGIN]), "rp_name"),
        (
            EmbeddedConfig::new("localhost", "App", Vec::<String>::new()),
            "origins",
        ),
        (
            EmbeddedConfig::new("localhost", "App", ["not a url"]),
            "origins",
        ),
        (
            EmbeddedConfig::new("example.com", "App", ["https://notexample.com"]),
            "origins",
        ),
        (
            EmbeddedConfig::new("example.com", "App", ["https://example.com.evil.org"]),
            "origins",
        ),
        (
            EmbeddedConfig::new("example.com", "App", ["http://example.com"]),
            "origins",
        ),
        (
            EmbeddedConfig::new("example.com", "App", ["https://example.com/path"]),
            "origins",
        ),
        (
            EmbeddedConfig::new("localhost", "App", ["http://127.0.0.1:3000"]),
            "origins",
        ),
        (
            ok().with_ceremony_timeout(Duration::ZERO),
            "ceremony_timeout",
        ),
    ];
    for (config, field) in cases {
        let err = EmbeddedProvider::in_memory(config).await.unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    let p = EmbeddedProvider::in_memory(EmbeddedConfig::new(
        "example.com",
        "App",
        ["https://example.com/", "https://app.example.com:8443"],
    ))
    .await
    .unwrap();
    assert_eq!(
        p.origins(),
        ["https://example.com", "https://app.example.com:8443"]
    );
    assert_eq!(p.tenancy_id().as_str(), "embedded");
}

#[tokio::test]
async fn explicit_signing_key() {
    let key = SigningKey::generate().unwrap();
    assert!(!format!("{key:?}").contains(&URL_SAFE_NO_PAD.encode(key.expose_pkcs8_der())));
    assert!(format!("{key:?}").contains("redacted"));
    let der = key.expose_pkcs8_der().to_vec();
    let a = EmbeddedProvider::in_memory(
        EmbeddedConfig::new("localhost", "App", [ORIGIN])
            .with_signing_key(SigningKey::from_pkcs8_der(&der).unwrap()),
    )
    .await
    .unwrap();
    let b = EmbeddedProvider::in_memory(
        EmbeddedConfig::new("localhost", "App", [ORIGIN]).with_signing_key(key),
    )
    .await
    .unwrap();
    assert_eq!(a.jwks(), b.jwks());
    let c = EmbeddedProvider::in_memory(EmbeddedConfig::new("localhost", "App", [ORIGIN]))
        .await
        .unwrap();
    assert_ne!(a.jwks(), c.jwks());
    assert!(SigningKey::from_pkcs8_der(b"garbage").is_err());
    assert!(!format!("{a:?}").contains(&URL_SAFE_NO_PAD.encode(&der)));
}

/// Client data of a ceremony run in a cross-origin iframe (`crossOrigin:
/// true`, a `topOrigin`) is refused as `origin_mismatch` at registration
/// and at sign-in, changing nothing, unless the app opted in with
/// `with_cross_origin_iframes(true)` (sign-in only: webauthn-rs refuses a
/// cross-origin registration either way). Same-origin ceremonies pass.
#[tokio::test]
async fn cross_origin_iframes_are_refused_unless_allowed() {
    let iframes = [
        json!({ "crossOrigin": true }),
        json!({ "topOrigin": "https://evil.example" }),
        json!({ "crossOrigin": true, "topOrigin": "https://evil.example" }),
    ];
    let (stores, _guard) = memory_stores();
    let h = Harness::new(stores).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();
    for extra in &iframes {
        auth.set_extra_client_data(Some(extra.clone()));
        let (session, options) = h.registration_options(&user, "alice").await;
        let response = auth.create(&options).await.unwrap();
        let res = h
            .call(
                BrowserOp::RegistrationVerification,
                &json!({ "response": response, "sessionToken": session }),
            )
            .await;
        assert_refused(&res, 403, "origin_mismatch");
        assert_eq!(h.stored_count(&user).await, 0, "{extra}");
        auth.clear();
    }
    auth.set_extra_client_data(None);
    let reg = h.register(&mut auth, &user).await;
    let id = reg["principal"]["authenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = h.sign_count(&id).await;
    for extra in &iframes {
        auth.set_extra_client_data(Some(extra.clone()));
        let res = h.login(&mut auth).await;
        assert_refused(&res, 403, "origin_mismatch");
        assert_eq!(h.sign_count(&id).await, before, "{extra}");
    }
    auth.set_extra_client_data(Some(json!({ "crossOrigin": false })));
    let res = h.login(&mut auth).await;
    assert_eq!(res.status, 200, "same origin passes: {}", res.body);

    // Opted in: an iframe sign-in passes.
    let (stores, _guard) = memory_stores();
    let clock = ManualClock::starting_now();
    let allowed = config(&clock).with_cross_origin_iframes(true);
    let h = Harness::with_config(stores, allowed, clock).await;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    h.register(&mut auth, &UserHandle::random()).await;
    for extra in &iframes {
        auth.set_extra_client_data(Some(extra.clone()));
        let res = h.login(&mut auth).await;
        assert_eq!(res.status, 200, "{extra}: {}", res.body);
    }
}

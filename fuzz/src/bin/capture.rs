//! Runs one registration and one authentication ceremony with a
//! `SoftAuthenticator` against the embedded provider and writes
//! `fixtures/ceremony.json` (the server-side states and the credential) and
//! the matching seed bodies into `corpus/embedded_verification/`.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --bin capture` (from the
//! repository root). Rewriting the fixture invalidates the old seeds: both
//! are written together.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use passlock_core::provider::embedded::BrowserOp;
use passlock_core::store::CredentialStore as _;
use passlock_core::provider::{AuthenticationRequest, PasskeyProvider, RegistrationRequest};
use passlock_test::authenticator::SoftAuthenticator;
use passlock_core::{AuthenticatorId, UserHandle};
use passlock_fuzz::{FIXTURE_SESSION, Harness, TENANCY, credential_to_json, runtime};
use serde_json::{Value, json};

async fn options(h: &Harness, op: BrowserOp, field: &str, token: &str) -> (String, Value, String) {
    let res = h
        .provider
        .handle(TENANCY, op, json!({ field: token }).to_string().as_bytes())
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let (_, state) = h.ceremonies.last_put.lock().unwrap().clone().unwrap();
    (
        res.body["sessionToken"].as_str().unwrap().to_owned(),
        res.body["optionsJSON"].clone(),
        state,
    )
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    runtime().block_on(async {
        let h = Harness::new().await;
        let mut auth = SoftAuthenticator::new(passlock_fuzz::ORIGIN);
        // A counter of zero is never checked: the same assertion verifies
        // on every iteration.
        auth.set_signature_counter(false);
        let user = UserHandle::new("fuzz-user").unwrap();

        let grant = h
            .provider
            .authorize_registration(RegistrationRequest::new(user, "alice"))
            .await
            .unwrap();
        let (session, opts, registration_state) = options(
            &h,
            BrowserOp::RegistrationOptions,
            "registrationToken",
            grant.token.expose_secret(),
        )
        .await;
        let response = auth.create(&opts).await.unwrap();
        let registration_body = json!({ "sessionToken": FIXTURE_SESSION, "response": response });
        let res = h
            .provider
            .handle(
                TENANCY,
                BrowserOp::RegistrationVerification,
                json!({ "sessionToken": session, "response": response })
                    .to_string()
                    .as_bytes(),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let id = AuthenticatorId::new(res.body["principal"]["authenticatorId"].as_str().unwrap())
            .unwrap();

        let grant = h
            .provider
            .authorize_authentication(AuthenticationRequest::discoverable())
            .await
            .unwrap();
        let (session, opts, authentication_state) = options(
            &h,
            BrowserOp::AuthenticationOptions,
            "authenticationToken",
            grant.token.expose_secret(),
        )
        .await;
        let response = auth.get(&opts).await.unwrap();
        let authentication_body = json!({ "sessionToken": FIXTURE_SESSION, "response": response });
        let res = h
            .provider
            .handle(
                TENANCY,
                BrowserOp::AuthenticationVerification,
                json!({ "sessionToken": session, "response": response })
                    .to_string()
                    .as_bytes(),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let credential = h.credentials.get(&id).await.unwrap().unwrap();

        let fixture = json!({
            "registration_state": registration_state,
            "authentication_state": authentication_state,
            "credential": credential_to_json(&credential),
        });
        std::fs::write(
            root.join("fixtures/ceremony.json"),
            serde_json::to_string_pretty(&fixture).unwrap(),
        )
        .unwrap();
        let dir = root.join("corpus/embedded_verification");
        std::fs::create_dir_all(&dir).unwrap();
        // First byte: 0 = registration verification, 1 = authentication.
        for (name, op, body) in [
            ("registration", 0u8, &registration_body),
            ("authentication", 1u8, &authentication_body),
        ] {
            let mut bytes = vec![op];
            bytes.extend_from_slice(body.to_string().as_bytes());
            std::fs::write(dir.join(format!("{name}-ok")), bytes).unwrap();
        }
        println!("wrote fixtures/ceremony.json and corpus/embedded_verification seeds");
    });
}

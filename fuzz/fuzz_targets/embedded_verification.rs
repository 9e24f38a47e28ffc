//! The embedded provider's `registration/verification` and
//! `authentication/verification` bodies (first byte: 0 registration, else
//! authentication). The session token [`FIXTURE_SESSION`] always finds the
//! captured ceremony state, so a mutated WebAuthn response reaches
//! webauthn-rs against a matching challenge; the seeds are the real bodies.
//!
//! Invariants: no panic; every answer is 200 or a 4xx/5xx tagged error; a
//! 200 only for a response whose signature verifies (the seeds).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use passlock_core::AuthenticatorId;
use passlock_core::provider::embedded::BrowserOp;
use passlock_core::store::CredentialStore as _;
use passlock_fuzz::{
    FIXTURE_SESSION, Fixture, Harness, TENANCY, insert_credential, runtime, store_key,
};

struct Setup {
    registration: Harness,
    authentication: Harness,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        runtime().block_on(async {
            let fixture = Fixture::committed();
            let registration = Harness::new().await;
            registration.ceremonies.pin(
                store_key("session", FIXTURE_SESSION),
                fixture.registration_state.clone(),
            );
            let authentication = Harness::new().await;
            authentication.ceremonies.pin(
                store_key("session", FIXTURE_SESSION),
                fixture.authentication_state.clone(),
            );
            insert_credential(authentication.credentials.as_ref(), &fixture.credential).await;
            Setup {
                registration,
                authentication,
            }
        })
    })
}

/// `PASSLOCK_FUZZ_DEBUG=1` prints every answer (to check the seeds reach a 200).
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("PASSLOCK_FUZZ_DEBUG").is_some())
}

fuzz_target!(
    // Key generation and provider set-up run before fuzzing (outside the
    // 1 s per-input timeout).
    init: {
        setup();
    },
    |data: &[u8]| {
    let Some((&op, body)) = data.split_first() else {
        return;
    };
    let setup = setup();
    runtime().block_on(async {
        let (h, op) = if op == 0 {
            (&setup.registration, BrowserOp::RegistrationVerification)
        } else {
            (&setup.authentication, BrowserOp::AuthenticationVerification)
        };
        let res = h.provider.handle(TENANCY, op, body).await;
        if debug() {
            eprintln!("{op:?}: {} {}", res.status, res.body);
        }
        assert!(
            res.status == 200 || (400..600).contains(&res.status),
            "status {}",
            res.status
        );
        if res.status == 200 {
            assert!(res.body["id_token"].is_string() && res.body["code"].is_string());
            // A registration leaves its credential: remove it so the next
            // iteration registers again instead of conflicting.
            if op == BrowserOp::RegistrationVerification
                && let Some(id) = res.body["principal"]["authenticatorId"].as_str()
                && let Ok(id) = AuthenticatorId::new(id)
            {
                h.credentials.delete(&id).await.unwrap();
            }
        } else {
            let tag = res.body["_tag"].as_str().unwrap_or_default();
            assert!(tag.starts_with("@error/"), "{}", res.body);
        }
        h.ceremonies.sweep().await;
    });
}
);

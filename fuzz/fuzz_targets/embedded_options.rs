//! The embedded provider's `registration/options` and
//! `authentication/options` bodies (first byte: op selector). Each
//! iteration authorizes a fresh single-use token and substitutes it for
//! every `@TOKEN@` in the body, so the fuzzer reaches past the token check;
//! what the iteration left in the ceremony store is swept afterwards.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use passlock_core::provider::embedded::BrowserOp;
use passlock_core::provider::{AuthenticationRequest, PasskeyProvider, RegistrationRequest};
use passlock_core::{AuthenticatorId, UserHandle};
use passlock_fuzz::{Fixture, Harness, TENANCY, insert_credential, runtime, substitute};

fn setup() -> &'static (Harness, AuthenticatorId) {
    static SETUP: OnceLock<(Harness, AuthenticatorId)> = OnceLock::new();
    SETUP.get_or_init(|| {
        runtime().block_on(async {
            let h = Harness::new().await;
            let credential = Fixture::committed().credential;
            insert_credential(h.credentials.as_ref(), &credential).await;
            (h, credential.credential_id)
        })
    })
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
    let (h, known) = setup();
    runtime().block_on(async {
        let user = UserHandle::new("fuzz-user").unwrap();
        let (op, token) = match op % 4 {
            0 => {
                let g = h
                    .provider
                    .authorize_registration(RegistrationRequest::new(user, "alice"))
                    .await
                    .unwrap();
                (
                    BrowserOp::RegistrationOptions,
                    g.token.expose_secret().to_owned(),
                )
            }
            1 => {
                let g = h
                    .provider
                    .authorize_authentication(AuthenticationRequest::discoverable())
                    .await
                    .unwrap();
                (
                    BrowserOp::AuthenticationOptions,
                    g.token.expose_secret().to_owned(),
                )
            }
            2 => {
                let allow = vec![known.clone()];
                let g = h
                    .provider
                    .authorize_authentication(AuthenticationRequest::restricted(allow))
                    .await
                    .unwrap();
                (
                    BrowserOp::AuthenticationOptions,
                    g.token.expose_secret().to_owned(),
                )
            }
            _ => {
                // An allow list of unknown ids: refused at options time.
                let allow = vec![AuthenticatorId::new("AAAA").unwrap()];
                let g = h
                    .provider
                    .authorize_authentication(AuthenticationRequest::restricted(allow))
                    .await
                    .unwrap();
                (
                    BrowserOp::AuthenticationOptions,
                    g.token.expose_secret().to_owned(),
                )
            }
        };
        let body = substitute(body, &token);
        let res = h.provider.handle(TENANCY, op, &body).await;
        if res.status == 200 {
            assert!(res.body["sessionToken"].is_string() && res.body["optionsJSON"].is_object());
        } else {
            assert!((400..600).contains(&res.status), "status {}", res.status);
            let tag = res.body["_tag"].as_str().unwrap_or_default();
            assert!(tag.starts_with("@error/"), "{}", res.body);
        }
        h.ceremonies.sweep().await;
    });
}
);

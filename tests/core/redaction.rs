//! `Debug` of every public type that holds a secret (keys, one-time tokens,
//! codes, session ids) never prints the secret, in `{:?}` nor `{:#?}`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use passlock_core::adapter::wire::AuthorizeAnswer;
use passlock_core::provider::embedded::{
    BrowserOp, CeremonyStore, EmbeddedConfig, EmbeddedProvider, MemoryCeremonyStore,
    MemoryCredentialStore, SigningKey,
};
use passlock_core::provider::{PasskeyProvider, RegistrationRequest};
use passlock_core::secret::{ApiKey, Code};
use passlock_core::{Passlock, Proof, TenancyId, UserHandle};
use passlock_test::fake_passlock::FakePasslock;

/// Asserts that neither Debug form of `value` contains any of `secrets`.
fn hides(what: &str, value: &impl std::fmt::Debug, secrets: &[&str]) {
    for out in [format!("{value:?}"), format!("{value:#?}")] {
        for secret in secrets {
            assert!(!secret.is_empty());
            assert!(
                !out.contains(secret),
                "{what} prints a secret ({secret}): {out}"
            );
        }
    }
}

#[tokio::test]
async fn debug_never_prints_a_secret() {
    // The authorize answer: its one-time tokens.
    let answer = AuthorizeAnswer {
        registration_token: Some("registration-token-secret-1".to_owned()),
        authentication_token: Some("authentication-token-secret-2".to_owned()),
        expires_at: 0,
        endpoint: "/passkey".to_owned(),
        tenancy_id: TenancyId::new("embedded").unwrap(),
    };
    hides(
        "AuthorizeAnswer",
        &answer,
        &[
            "registration-token-secret-1",
            "authentication-token-secret-2",
        ],
    );

    // The in-memory ceremony store: tokens as keys, the signing key as a value.
    let ceremonies = Arc::new(MemoryCeremonyStore::new());
    ceremonies
        .put("one-time-token-key-3", "ceremony-value-secret-4", i64::MAX)
        .await
        .unwrap();
    hides(
        "MemoryCeremonyStore",
        &ceremonies,
        &["one-time-token-key-3", "ceremony-value-secret-4"],
    );

    // The embedded provider on memory stores, its id_token signing key
    // generated and persisted in the ceremony store; and a Passlock on it.
    let provider = EmbeddedProvider::new(
        EmbeddedConfig::new("localhost", "Test app", ["http://localhost:3000"]),
        Arc::new(MemoryCredentialStore::new()),
        ceremonies.clone(),
    )
    .await
    .unwrap();
    let stored_key = ceremonies
        .get_or_insert("signing-key", "unused")
        .await
        .unwrap();
    assert_ne!(stored_key, "unused", "the provider persisted its key");
    let key_der = STANDARD.decode(stored_key.trim()).unwrap();
    let key_b64 = stored_key.trim().to_owned();
    // A slice from the middle of the key, in its base64 and its byte-list forms.
    let key_bytes = format!("{:?}", &key_der[8..16]);
    let key_bytes = key_bytes.trim_matches(|c| c == '[' || c == ']');
    hides("EmbeddedProvider", &provider, &[&key_b64, key_bytes]);
    let passlock = Passlock::<i64>::builder(
        Arc::new(provider.clone()),
        Arc::new(passlock_core::store::MemoryAuthenticatorStore::<i64>::new()),
    )
    .origins(["http://localhost:3000"])
    .build()
    .unwrap();
    hides("Passlock", &passlock, &[&key_b64, key_bytes]);

    // An explicit signing key, and a config holding it.
    let explicit = SigningKey::generate().unwrap();
    let explicit_bytes = format!("{:?}", &explicit.expose_pkcs8_der()[8..16]);
    let explicit_bytes = explicit_bytes
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned();
    let config = EmbeddedConfig::new("localhost", "Test app", ["http://localhost:3000"])
        .with_signing_key(explicit.clone());
    hides("SigningKey", &explicit, &[&explicit_bytes]);
    hides("EmbeddedConfig", &config, &[&explicit_bytes]);

    // A browser-facing answer holding a session token.
    let token = provider
        .authorize_registration(RegistrationRequest::new(
            UserHandle::new("u1").unwrap(),
            "alice",
        ))
        .await
        .unwrap();
    hides("Authorization", &token, &[token.token.expose_secret()]);
    let body = serde_json::json!({ "registrationToken": token.token.expose_secret() });
    let options = provider
        .handle(
            "embedded",
            BrowserOp::RegistrationOptions,
            body.to_string().as_bytes(),
        )
        .await;
    assert_eq!(options.status, 200, "{}", options.body);
    let session_token = options.body["sessionToken"].as_str().unwrap().to_owned();
    hides("BrowserResponse", &options, &[&session_token]);

    // Proofs and hosted configs.
    hides(
        "Proof",
        &Proof::Code(Code::new("exchange-code-secret-5")),
        &["exchange-code-secret-5"],
    );
    let fake = FakePasslock::start().await.unwrap();
    let api_key = fake.api_key().expose_secret().to_owned();
    hides("FakePasslock", &fake, &[&api_key]);
    hides("PasslockConfig", &fake.client_config(), &[&api_key]);
    let passage = passlock_test::fake_passage::FakePassage::start()
        .await
        .unwrap();
    let passage_key = passage.api_key().expose_secret().to_owned();
    hides("FakePassage", &passage, &[&passage_key]);
    hides("PassageConfig", &passage.config(), &[&passage_key]);
    hides(
        "ApiKey",
        &ApiKey::new("api-key-secret-6"),
        &["api-key-secret-6"],
    );

    // The axum session: its id is the cookie's secret.
    let session =
        tower_sessions::Session::new(None, Arc::new(tower_sessions::MemoryStore::default()), None);
    session.insert("app", 1).await.unwrap();
    session.save().await.unwrap();
    let id = session.id().unwrap();
    let session = passlock_axum::PasslockSession::<i64>::load(session, &passlock)
        .await
        .unwrap();
    hides(
        "PasslockSession (axum)",
        &session,
        &[&id.to_string(), &id.0.to_string()],
    );
}

/// Recovery (issue 16): the code in a request body, in the test kit's
/// capturing mailer, and the address's local part in an `EmailAddress`.
#[tokio::test]
async fn recovery_values_are_redacted() {
    use passlock_core::adapter::flow::RecoveryVerifyBody;
    use passlock_core::recovery::{EmailAddress, Mailer as _};
    use passlock_core::secret::RecoveryCode;
    use passlock_test::recovery::CapturingMailer;

    let body: RecoveryVerifyBody =
        serde_json::from_str(r#"{"challenge":"ch-1","code":"73519046"}"#).unwrap();
    hides("RecoveryVerifyBody", &body, &["73519046"]);
    let email = EmailAddress::parse("secret.person@example.com").unwrap();
    hides("EmailAddress", &email, &["secret.person"]);
    let mailer = CapturingMailer::new();
    mailer
        .send_recovery_code(&email, &RecoveryCode::new("48213907"), 0)
        .await
        .unwrap();
    hides("CapturingMailer", &mailer, &["48213907", "secret.person"]);
    hides("SentCode", &mailer.sent(), &["48213907", "secret.person"]);
    // The stored challenge and an attempt at it hold the code's keyed
    // hash: a log line must not carry it either.
    use passlock_core::store::{Attempt, NewChallenge};
    let challenge = NewChallenge::new(
        passlock_core::id::ChallengeId::new("ch-1").unwrap(),
        "address-hash",
        Some("7".into()),
        "c0dehash",
        0,
        1,
        5,
    );
    hides("NewChallenge", &challenge, &["c0dehash"]);
    let open = Attempt::Open {
        code_hash: "c0dehash".into(),
        user: Some("7".into()),
        address: "address-hash".into(),
    };
    hides("Attempt", &open, &["c0dehash"]);
}

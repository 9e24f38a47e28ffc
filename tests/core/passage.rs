//! The Passage Passkey Flex client and provider against FakePassage: every
//! call, every error code, nonce single use and expiry, faults, timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use passlock_core::clock::{Clock, ManualClock, SharedClock};
use passlock_core::error::{ProviderError, Rejection, UpstreamError};
use passlock_core::http::HttpConfig;
use passlock_core::proof::Proof;
use passlock_core::provider::passage::{
    PassageApiError, PassageClient, PassageError, PassageFlex, authenticator_id_of,
};
use passlock_core::provider::{
    AuthenticationRequest, Endpoint, PasskeyProvider, RegistrationRequest,
};
use passlock_core::secret::{ApiKey, Code, IdToken, PassageNonce};
use passlock_core::{AuthenticatorId, UserHandle};
use passlock_test::fake_passage::{CompleteError, FakePassage, Fault, NONCE_TTL_MS};

fn user(s: &str) -> UserHandle {
    UserHandle::new(s).unwrap()
}

fn client(fake: &FakePassage) -> PassageClient {
    PassageClient::new(fake.config()).unwrap()
}

/// The timeout of [`fast_client`]: seconds, so that a busy machine never
/// turns a fault other than latency into a timeout.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The latency of a slow service: far beyond [`TIMEOUT`], so an answer
/// well before it can only come from the timeout.
const SLOW: Duration = Duration::from_secs(60);

fn fast_client(fake: &FakePassage) -> PassageClient {
    let http = HttpConfig::default().with_timeout(TIMEOUT);
    PassageClient::new(fake.config().with_http(http)).unwrap()
}

fn api(e: &PassageError) -> (PassageApiError, u16) {
    match e {
        PassageError::Api { error, status } => (error.clone(), *status),
        other => panic!("expected a typed error, got {other:?}"),
    }
}

async fn fake_on_manual_clock() -> (FakePassage, ManualClock) {
    let clock = ManualClock::new(1_800_000_000_000);
    let shared: SharedClock = Arc::new(clock.clone());
    (FakePassage::start_with_clock(shared).await.unwrap(), clock)
}

// ---------------------------------------------------------------------------
// Client calls
// ---------------------------------------------------------------------------

#[tokio::test]
async fn register_transaction_then_nonce_gives_the_external_id_once() {
    let fake = FakePassage::start().await.unwrap();
    let c = client(&fake);
    let tx = c
        .create_register_transaction(&user("ext-1"), "alice@example.com")
        .await
        .unwrap();
    assert!(!tx.is_empty());
    assert_eq!(fake.hits("register_transaction"), 1);
    let nonce = fake.complete(tx.expose_secret()).unwrap();
    // A transaction completes once.
    assert_eq!(
        fake.complete(tx.expose_secret()).unwrap_err(),
        CompleteError::UnknownTransaction
    );
    assert_eq!(c.verify_nonce(&nonce).await.unwrap(), user("ext-1"));
    // Single use.
    let e = c.verify_nonce(&nonce).await.unwrap_err();
    assert_eq!(api(&e), (PassageApiError::InvalidNonce, 401));
    assert_eq!(fake.hits("verify_nonce"), 2);
    assert_eq!(fake.devices_of("ext-1").len(), 1);
}

#[tokio::test]
async fn authenticate_transaction_needs_a_user_with_a_passkey() {
    let fake = FakePassage::start().await.unwrap();
    let c = client(&fake);
    let e = c
        .create_authenticate_transaction(&user("nobody"))
        .await
        .unwrap_err();
    assert_eq!(api(&e), (PassageApiError::UserNotFound, 404));
    fake.add_user("empty");
    let e = c
        .create_authenticate_transaction(&user("empty"))
        .await
        .unwrap_err();
    assert_eq!(api(&e), (PassageApiError::UserHasNoPasskeys, 409));

    fake.add_device("ext-2", "laptop");
    let tx = c
        .create_authenticate_transaction(&user("ext-2"))
        .await
        .unwrap();
    let nonce = fake.complete(tx.expose_secret()).unwrap();
    assert_eq!(c.verify_nonce(&nonce).await.unwrap(), user("ext-2"));
    assert_eq!(fake.hits("authenticate_transaction"), 3);
}

#[tokio::test]
async fn users_and_devices() {
    let fake = FakePassage::start().await.unwrap();
    let c = client(&fake);
    assert_eq!(c.find_user(&user("ext-3")).await.unwrap(), None);
    let (uid, d1) = fake.add_device("ext-3", "phone");
    let (_, d2) = fake.add_device("ext-3", "laptop");
    fake.add_device("someone-else", "tablet");

    let found = c.find_user(&user("ext-3")).await.unwrap().unwrap();
    assert_eq!(found.id, uid);
    assert_eq!(found.external_id, "ext-3");
    assert_eq!(c.get_user(&uid).await.unwrap(), found);

    let devices = c.list_devices(&uid).await.unwrap();
    let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, [d1.as_str(), d2.as_str()]);
    assert_eq!(devices[0].friendly_name.as_deref(), Some("phone"));

    c.revoke_device(&uid, &d1).await.unwrap();
    assert_eq!(fake.devices_of("ext-3"), std::slice::from_ref(&d2));
    let e = c.revoke_device(&uid, &d1).await.unwrap_err();
    assert_eq!(
        api(&e),
        (PassageApiError::Other("device_not_found".into()), 404)
    );
    let e = c.get_user("usr_missing").await.unwrap_err();
    assert_eq!(api(&e), (PassageApiError::UserNotFound, 404));
    let e = c.list_devices("usr_missing").await.unwrap_err();
    assert_eq!(api(&e), (PassageApiError::UserNotFound, 404));
    for name in ["list_users", "get_user", "list_devices", "revoke_device"] {
        assert!(fake.hits(name) >= 1, "{name}");
    }
}

#[tokio::test]
async fn a_wrong_key_is_invalid_access_token() {
    let fake = FakePassage::start().await.unwrap();
    let mut config = fake.config();
    config.api_key = ApiKey::new("wrong-key");
    let c = PassageClient::new(config).unwrap();
    let e = c
        .create_register_transaction(&user("u"), "u")
        .await
        .unwrap_err();
    assert_eq!(api(&e), (PassageApiError::InvalidAccessToken, 401));
    assert!(!format!("{e} {e:?}").contains("wrong-key"));
    let p: ProviderError = e.into();
    assert!(
        matches!(p, ProviderError::Refused { status: 401, .. }),
        "{p:?}"
    );
}

#[tokio::test]
async fn nonces_expire() {
    let (fake, clock) = fake_on_manual_clock().await;
    let c = client(&fake);
    let tx = c
        .create_register_transaction(&user("ext-4"), "d")
        .await
        .unwrap();
    let nonce = fake.complete(tx.expose_secret()).unwrap();
    clock.advance_secs(NONCE_TTL_MS / 1000 + 1);
    let e = c.verify_nonce(&nonce).await.unwrap_err();
    assert_eq!(api(&e), (PassageApiError::InvalidNonce, 401));
    // Unknown and empty nonces too, the empty one without a request.
    let before = fake.hits("verify_nonce");
    let e = c.verify_nonce(&PassageNonce::new("")).await.unwrap_err();
    assert_eq!(api(&e), (PassageApiError::InvalidNonce, 401));
    assert_eq!(fake.hits("verify_nonce"), before);
    let e = c
        .verify_nonce(&PassageNonce::new("never-issued"))
        .await
        .unwrap_err();
    assert_eq!(api(&e), (PassageApiError::InvalidNonce, 401));
}

// ---------------------------------------------------------------------------
// Error codes and faults
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_error_code_is_typed_and_mapped() {
    let fake = FakePassage::start().await.unwrap();
    let c = client(&fake);
    let cases: [(u16, &str, PassageApiError); 7] = [
        (
            401,
            "invalid_access_token",
            PassageApiError::InvalidAccessToken,
        ),
        (401, "invalid_nonce", PassageApiError::InvalidNonce),
        (404, "user_not_found", PassageApiError::UserNotFound),
        (
            409,
            "user_has_no_passkeys",
            PassageApiError::UserHasNoPasskeys,
        ),
        (400, "invalid_request", PassageApiError::InvalidRequest),
        (
            500,
            "internal_server_error",
            PassageApiError::InternalServerError,
        ),
        (
            403,
            "app_disabled",
            PassageApiError::Other("app_disabled".into()),
        ),
    ];
    for (status, code, want) in cases {
        fake.set_fault(Fault::ApiError { status, code });
        let e = c.verify_nonce(&PassageNonce::new("n")).await.unwrap_err();
        assert_eq!(api(&e), (want.clone(), status), "{code}");
        let p: ProviderError = e.into();
        match want {
            PassageApiError::InvalidNonce => {
                assert!(matches!(
                    p,
                    ProviderError::Rejected(Rejection::InvalidToken)
                ))
            }
            PassageApiError::UserNotFound | PassageApiError::UserHasNoPasskeys => {
                assert!(matches!(
                    p,
                    ProviderError::Rejected(Rejection::UnknownCredential)
                ))
            }
            PassageApiError::InternalServerError => {
                assert!(matches!(p, ProviderError::Upstream(_)), "{p:?}")
            }
            _ => assert!(
                matches!(&p, ProviderError::Refused { code: c, status: s } if c == code && *s == status),
                "{p:?}"
            ),
        }
    }
}

#[tokio::test]
async fn faults_are_typed_upstream_errors() {
    let fake = FakePassage::start().await.unwrap();
    let c = client(&fake);
    for fault in [
        Fault::Status500,
        Fault::MalformedJson,
        Fault::WrongContentType,
    ] {
        fake.set_fault(fault.clone());
        let e = c
            .create_register_transaction(&user("u"), "u")
            .await
            .unwrap_err();
        assert!(
            matches!(e, PassageError::Upstream(UpstreamError::BadResponse { .. })),
            "{fault:?}: {e:?}"
        );
    }
    fake.set_fault(Fault::DropConnection);
    let e = c.find_user(&user("u")).await.unwrap_err();
    assert!(
        matches!(
            e,
            PassageError::Upstream(
                UpstreamError::Unavailable(_) | UpstreamError::BadResponse { .. }
            )
        ),
        "{e:?}"
    );
    fake.set_fault(Fault::None);
    assert!(c.find_user(&user("u")).await.unwrap().is_none());
}

#[tokio::test]
async fn a_slow_service_is_a_bounded_timeout() {
    let fake = FakePassage::start().await.unwrap();
    let c = fast_client(&fake);
    fake.set_fault(Fault::Latency(SLOW));
    let start = Instant::now();
    let e = c.verify_nonce(&PassageNonce::new("n")).await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(e, PassageError::Upstream(UpstreamError::Timeout)),
        "{e:?}"
    );
    assert!(elapsed < SLOW / 2, "{elapsed:?}");
    let p: ProviderError = e.into();
    assert_eq!(p.code(), "upstream_timeout");
    // Not retried: the nonce is sent at most once.
    assert_eq!(fake.hits("verify_nonce"), 1);
}

// ---------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------

#[tokio::test]
async fn provider_registration_and_verification() {
    let (fake, clock) = fake_on_manual_clock().await;
    let p = fake.provider().unwrap();
    assert_eq!(p.name(), "passage");
    let authz = p
        .authorize_registration(RegistrationRequest::new(user("ext-5"), "alice"))
        .await
        .unwrap();
    assert_eq!(authz.tenancy_id, fake.app_id());
    assert_eq!(authz.endpoint, Endpoint::Remote(fake.endpoint()));
    assert!(authz.expires_at > clock.now_millis());
    let nonce = fake.complete(authz.token.expose_secret()).unwrap();
    let proof = Proof::Nonce(nonce);
    let principal = p.verify(&proof).await.unwrap();
    assert_eq!(principal.user_handle, user("ext-5"));
    assert_eq!(
        principal.authenticator_id,
        AuthenticatorId::new("passage:ext-5").unwrap()
    );
    assert_eq!(principal.authenticated_at, 1_800_000_000_000);
    // The same nonce twice: refused.
    assert!(matches!(
        p.verify(&proof).await,
        Err(ProviderError::Rejected(Rejection::InvalidToken))
    ));
    // Codes and id_tokens are not Passage proofs; no request is made.
    let before = fake.hits("verify_nonce");
    for proof in [
        Proof::Code(Code::new("c")),
        Proof::IdToken(IdToken::new("a.b.c")),
    ] {
        assert!(matches!(
            p.verify(&proof).await,
            Err(ProviderError::Rejected(Rejection::Malformed))
        ));
    }
    assert_eq!(fake.hits("verify_nonce"), before);
    // Debug shows neither the key nor the nonce.
    let dbg = format!("{p:?} {proof:?}");
    assert!(!dbg.contains(fake.api_key().expose_secret()), "{dbg}");
}

#[tokio::test]
async fn provider_authentication_needs_a_known_user() {
    let fake = FakePassage::start().await.unwrap();
    let p = fake.provider().unwrap();
    let e = p
        .authorize_authentication(AuthenticationRequest::discoverable())
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Unsupported("usernameless login")),
        "{e:?}"
    );
    assert_eq!(fake.hits("authenticate_transaction"), 0);

    fake.add_device("ext-6", "phone");
    // The linked authenticator names the Passage user.
    let aid = authenticator_id_of(&user("ext-6")).unwrap();
    let authz = p
        .authorize_authentication(
            AuthenticationRequest::restricted(vec![aid.clone()]).with_user(user("app-user-1")),
        )
        .await
        .unwrap();
    let nonce = fake.complete(authz.token.expose_secret()).unwrap();
    let principal = p.verify(&Proof::Nonce(nonce)).await.unwrap();
    assert_eq!(principal.authenticator_id, aid);

    // Without a Passage authenticator, the request's user is used.
    fake.add_device("app-user-2", "phone");
    let authz = p
        .authorize_authentication(
            AuthenticationRequest::restricted(vec![AuthenticatorId::new("other").unwrap()])
                .with_user(user("app-user-2")),
        )
        .await
        .unwrap();
    let nonce = fake.complete(authz.token.expose_secret()).unwrap();
    let principal = p.verify(&Proof::Nonce(nonce)).await.unwrap();
    assert_eq!(principal.user_handle, user("app-user-2"));

    // A user without passkeys.
    let e = p
        .authorize_authentication(
            AuthenticationRequest::restricted(vec![]).with_user(user("nobody")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Rejected(Rejection::UnknownCredential)),
        "{e:?}"
    );
    let e = p
        .authorize_authentication(AuthenticationRequest::restricted(vec![]))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::BadRequest(_)), "{e:?}");
}

#[tokio::test]
async fn provider_delete_revokes_every_device_of_the_user() {
    let fake = FakePassage::start().await.unwrap();
    let p: PassageFlex = fake.provider().unwrap();
    fake.add_device("ext-7", "phone");
    fake.add_device("ext-7", "laptop");
    fake.add_device("ext-8", "keep");
    let aid = authenticator_id_of(&user("ext-7")).unwrap();
    p.delete_passkey(&aid).await.unwrap();
    assert!(fake.devices_of("ext-7").is_empty());
    assert_eq!(fake.devices_of("ext-8").len(), 1);
    assert_eq!(fake.hits("revoke_device"), 2);
    // Idempotent; unknown users and foreign ids are not errors.
    p.delete_passkey(&aid).await.unwrap();
    p.delete_passkey(&authenticator_id_of(&user("ghost")).unwrap())
        .await
        .unwrap();
    let before = fake.hits("list_users");
    p.delete_passkey(&AuthenticatorId::new("not-passage").unwrap())
        .await
        .unwrap();
    assert_eq!(fake.hits("list_users"), before);
    // An outage is reported.
    fake.set_fault(Fault::Status500);
    assert!(matches!(
        p.delete_passkey(&aid).await,
        Err(ProviderError::Upstream(_))
    ));
}

#[tokio::test]
async fn provider_timeout_is_bounded() {
    let fake = FakePassage::start().await.unwrap();
    let http = HttpConfig::default().with_timeout(TIMEOUT);
    let p = PassageFlex::new(fake.config().with_http(http), fake.clock()).unwrap();
    fake.set_fault(Fault::Latency(SLOW));
    let start = Instant::now();
    let e = p
        .authorize_registration(RegistrationRequest::new(user("u"), "u"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Upstream(UpstreamError::Timeout)),
        "{e:?}"
    );
    assert!(start.elapsed() < SLOW / 2);
}

/// A nonce does not say whether the user was verified: the principal says
/// what the app states about its Passage app, unverified by default (which
/// the default policy refuses).
#[tokio::test]
async fn user_verified_is_what_the_config_states() {
    let fake = FakePassage::start().await.unwrap();
    fake.add_device("ext-uv", "phone");
    for (enforced, expected) in [(false, false), (true, true)] {
        let config = fake
            .config()
            .with_service_enforced_user_verification(enforced);
        let p = PassageFlex::new(config, fake.clock()).unwrap();
        let tx = p
            .client()
            .create_authenticate_transaction(&user("ext-uv"))
            .await
            .unwrap();
        let nonce = fake.complete(tx.expose_secret()).unwrap();
        let principal = p.verify(&Proof::Nonce(nonce)).await.unwrap();
        assert_eq!(principal.user_verified, expected);
    }
    assert!(!fake.config().service_enforced_user_verification);
}

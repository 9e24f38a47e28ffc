//! The hosted Passlock client and provider against FakePasslock: every call,
//! every error tag, every fault; and the outbound HTTP wrapper.

// Helpers outside #[test] functions may unwrap and panic too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use passlock_core::clock::{ManualClock, SharedClock};
use passlock_core::error::{ProviderError, Rejection, Status, UpstreamError};
use passlock_core::http::{HttpClient, HttpConfig, Retry};
use passlock_core::id::ChallengeId;
use passlock_core::proof::Proof;
use passlock_core::provider::passlock::{HostedError, PasslockApiError, PasslockClient};
use passlock_core::provider::v2::{
    AuthorizeAuthentication, AuthorizeRegistration, CreateChallenge, DeleteTarget, PrepareUpdate,
    VerifyChallenge,
};
use passlock_core::provider::{
    AuthenticationRequest, Endpoint, PasskeyProvider, RegistrationRequest,
};
use passlock_core::secret::{ApiKey, ChallengeSecret, Code, PassageNonce};
use passlock_core::{AuthenticatorId, PasskeyId, TenancyId, UserHandle};
use passlock_test::fake_passlock::{FakePasslock, Fault, RouteFamily};
use serde_json::{Value, json};

fn user(s: &str) -> UserHandle {
    UserHandle::new(s).unwrap()
}

async fn fake_on_manual_clock() -> (FakePasslock, ManualClock) {
    let clock = ManualClock::new(1_800_000_000_000);
    let shared: SharedClock = Arc::new(clock.clone());
    (FakePasslock::start_with_clock(shared).await.unwrap(), clock)
}

fn client(fake: &FakePasslock) -> PasslockClient {
    PasslockClient::new(fake.client_config()).unwrap()
}

/// The timeout of [`fast_client`]: seconds, so that a busy machine never
/// turns a fault other than latency into a timeout.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The latency of a slow service: far beyond [`TIMEOUT`], so an answer
/// well before it can only come from the timeout.
const SLOW: Duration = Duration::from_secs(60);

fn fast_client(fake: &FakePasslock) -> PasslockClient {
    let http = HttpConfig::default().with_timeout(TIMEOUT);
    PasslockClient::new(fake.client_config().with_http(http)).unwrap()
}

fn api(e: &HostedError) -> PasslockApiError {
    e.api()
        .cloned()
        .unwrap_or_else(|| panic!("expected a typed error, got {e:?}"))
}

fn status(e: &HostedError) -> u16 {
    match e {
        HostedError::Api { status, .. } => *status,
        other => panic!("expected a typed error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Code exchange
// ---------------------------------------------------------------------------

#[tokio::test]
async fn exchange_code_returns_the_principal_once() {
    let fake = FakePasslock::start().await.unwrap();
    let c = client(&fake);
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let p = c.exchange_code(&code).await.unwrap();
    assert_eq!(p.tag, "ExtendedPrincipal");
    assert_eq!(p.user_id, user("u1"));
    assert_eq!(p.authenticator_id.as_str(), "auth-1");
    assert_eq!(p.authenticator_type, "passkey");
    assert!(p.to_principal().user_verified);
    assert!(p.expires_at > p.created_at);

    let e = c.exchange_code(&code).await.unwrap_err();
    assert_eq!(api(&e), PasslockApiError::InvalidCode);
    assert_eq!(status(&e), 404);
    assert_eq!(fake.hits("principal"), 2);
}

#[tokio::test]
async fn exchange_of_an_expired_code_is_invalid() {
    let (fake, clock) = fake_on_manual_clock().await;
    let (code, _) = fake.issue(&user("u1"), "auth-1", false).unwrap();
    clock.advance_secs(301);
    let e = client(&fake).exchange_code(&code).await.unwrap_err();
    assert_eq!(api(&e), PasslockApiError::InvalidCode);
}

#[tokio::test]
async fn unknown_and_odd_codes_are_invalid_codes() {
    let fake = FakePasslock::start().await.unwrap();
    let c = client(&fake);
    for code in ["nope", "a/b", "../../jwks.json", "%2e%2e", "x?y=z#w"] {
        let e = c.exchange_code(&Code::new(code)).await.unwrap_err();
        assert_eq!(api(&e), PasslockApiError::InvalidCode, "{code}");
    }
    assert_eq!(fake.jwks_fetches(), 0);
}

#[tokio::test]
async fn wrong_api_key_is_unauthorized_and_refused() {
    let fake = FakePasslock::start().await.unwrap();
    let mut config = fake.client_config();
    config.api_key = ApiKey::new("sk_wrong");
    let c = PasslockClient::new(config).unwrap();
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let e = c.exchange_code(&code).await.unwrap_err();
    assert_eq!(api(&e), PasslockApiError::Unauthorized);
    assert_eq!(status(&e), 401);
    match ProviderError::from(e) {
        ProviderError::Refused { code, status } => {
            assert_eq!(code, "Unauthorized");
            assert_eq!(status, 401);
        }
        other => panic!("{other:?}"),
    }
    // The code was not consumed by the refused call.
    client(&fake).exchange_code(&code).await.unwrap();
}

#[tokio::test]
async fn right_key_on_another_tenancy_is_forbidden() {
    let fake = FakePasslock::start().await.unwrap();
    let mut config = fake.client_config();
    config.tenancy_id = TenancyId::new("someone-else").unwrap();
    let e = PasslockClient::new(config)
        .unwrap()
        .list_passkeys_page(None)
        .await
        .unwrap_err();
    assert_eq!(api(&e), PasslockApiError::Forbidden);
    assert_eq!(status(&e), 403);
    assert!(matches!(
        ProviderError::from(e),
        ProviderError::Refused { .. }
    ));
}

#[tokio::test]
async fn error_bodies_are_exactly_json_with_a_tag() {
    let fake = FakePasslock::start().await.unwrap();
    let url = format!(
        "{}/v2/{}/principal/nope",
        fake.endpoint(),
        fake.tenancy_id()
    );
    let http = reqwest::Client::new();
    let r = http
        .get(&url)
        .bearer_auth(fake.api_key().expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["_tag"], "@error/InvalidCode");
    assert!(body["message"].is_string());
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["_tag"], "@error/Unauthorized");
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_slow_exchange_times_out_within_the_bound_and_is_not_retried() {
    let fake = FakePasslock::start().await.unwrap();
    fake.set_fault(Fault::Latency(SLOW));
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let started = Instant::now();
    let e = fast_client(&fake).exchange_code(&code).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(e, HostedError::Upstream(UpstreamError::Timeout)),
        "{e:?}"
    );
    assert!(took < SLOW / 2, "took {took:?}");
    assert_eq!(fake.hits("principal"), 1);
    let pe = ProviderError::from(e);
    assert_eq!(pe.status(), Status::GatewayTimeout);
}

#[tokio::test]
async fn a_slow_get_times_out_and_is_not_retried_either() {
    let fake = FakePasslock::start().await.unwrap();
    fake.set_route_fault(RouteFamily::Passkeys, Fault::Latency(SLOW));
    let e = fast_client(&fake)
        .list_passkeys_page(None)
        .await
        .unwrap_err();
    assert!(matches!(e, HostedError::Upstream(UpstreamError::Timeout)));
    assert_eq!(fake.hits("list_passkeys"), 1, "only connect failures retry");
}

#[tokio::test]
async fn a_500_is_a_bad_response_and_not_retried() {
    let fake = FakePasslock::start().await.unwrap();
    fake.set_fault(Fault::Status500);
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let e = client(&fake).exchange_code(&code).await.unwrap_err();
    assert!(
        matches!(
            e,
            HostedError::Upstream(UpstreamError::BadResponse {
                status: Some(500),
                ..
            })
        ),
        "{e:?}"
    );
    assert_eq!(fake.hits("principal"), 1);
    assert_eq!(ProviderError::from(e).status(), Status::BadGateway);
}

#[tokio::test]
async fn malformed_json_is_a_bad_response() {
    let fake = FakePasslock::start().await.unwrap();
    fake.set_fault(Fault::MalformedJson);
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let e = client(&fake).exchange_code(&code).await.unwrap_err();
    assert!(
        matches!(
            e,
            HostedError::Upstream(UpstreamError::BadResponse {
                reason: "unexpected body",
                ..
            })
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_wrong_content_type_is_a_bad_response() {
    let fake = FakePasslock::start().await.unwrap();
    fake.set_fault(Fault::WrongContentType);
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let e = client(&fake).exchange_code(&code).await.unwrap_err();
    assert!(
        matches!(
            e,
            HostedError::Upstream(UpstreamError::BadResponse {
                reason: "wrong content type",
                ..
            })
        ),
        "{e:?}"
    );
    // Error bodies with the wrong content type are not trusted either.
    let e = client(&fake)
        .exchange_code(&Code::new("nope"))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        HostedError::Upstream(UpstreamError::BadResponse { .. })
    ));
}

#[tokio::test]
async fn a_dropped_connection_is_unavailable_and_the_exchange_is_sent_once() {
    let fake = FakePasslock::start().await.unwrap();
    fake.set_fault(Fault::DropConnection);
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let e = client(&fake).exchange_code(&code).await.unwrap_err();
    assert!(
        matches!(
            e,
            HostedError::Upstream(
                UpstreamError::Unavailable(_) | UpstreamError::BadResponse { .. }
            )
        ),
        "{e:?}"
    );
    assert_eq!(fake.hits("principal"), 1);
}

#[tokio::test]
async fn errors_never_carry_the_code_or_the_key() {
    let fake = FakePasslock::start().await.unwrap();
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let key = fake.api_key();
    for fault in [
        Fault::DropConnection,
        Fault::Latency(SLOW),
        Fault::Status500,
        Fault::MalformedJson,
    ] {
        fake.set_fault(fault);
        let e = fast_client(&fake).exchange_code(&code).await.unwrap_err();
        let mut text = format!("{e} {e:?}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            text.push_str(&format!(" {s} {s:?}"));
            src = s.source();
        }
        assert!(!text.contains(code.expose_secret()), "{text}");
        assert!(!text.contains(key.expose_secret()), "{text}");
    }
    let c = client(&fake);
    assert!(!format!("{c:?}").contains(key.expose_secret()));
    assert!(!format!("{:?}", fake.client_config()).contains(key.expose_secret()));
}

#[tokio::test]
async fn every_error_tag_is_typed() {
    let fake = FakePasslock::start().await.unwrap();
    let c = client(&fake);
    let cases = [
        (401, "Unauthorized", PasslockApiError::Unauthorized),
        (403, "Forbidden", PasslockApiError::Forbidden),
        (404, "InvalidCode", PasslockApiError::InvalidCode),
        (400, "InvalidPrincipal", PasslockApiError::InvalidPrincipal),
        (400, "InvalidChallenge", PasslockApiError::InvalidChallenge),
        (
            400,
            "InvalidChallengeCode",
            PasslockApiError::InvalidChallengeCode,
        ),
        (410, "ChallengeExpired", PasslockApiError::ChallengeExpired),
        (
            429,
            "ChallengeAttemptsExceeded",
            PasslockApiError::ChallengeAttemptsExceeded,
        ),
        (
            429,
            "ChallengeRateLimited",
            PasslockApiError::ChallengeRateLimited {
                retry_after_seconds: 30,
            },
        ),
        (404, "InvalidTenancy", PasslockApiError::InvalidTenancy),
        (
            404,
            "PasskeyNotFound",
            PasslockApiError::PasskeyNotFound {
                credential_id: "injected-credential".into(),
                rp_id: "localhost".into(),
            },
        ),
        (404, "NotFound", PasslockApiError::NotFound),
        (400, "InvalidEmail", PasslockApiError::InvalidEmail),
        (409, "DuplicateEmail", PasslockApiError::DuplicateEmail),
        (400, "BadRequest", PasslockApiError::BadRequest),
        (418, "Teapot", PasslockApiError::Other("Teapot".into())),
    ];
    for (code, tag, expected) in cases {
        fake.set_fault(Fault::ApiError { status: code, tag });
        let e = c
            .get_passkey(&PasskeyId::new("p1").unwrap())
            .await
            .unwrap_err();
        assert_eq!(api(&e), expected, "{tag}");
        assert_eq!(status(&e), code);
        assert_eq!(expected.name(), tag);
    }
}

// ---------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------

#[tokio::test]
async fn provider_verifies_codes_and_id_tokens() {
    let fake = FakePasslock::start().await.unwrap();
    let provider = fake.provider().unwrap();
    assert_eq!(provider.name(), "passlock");
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();

    let p = provider.verify(&Proof::Code(code.clone())).await.unwrap();
    assert_eq!(p.authenticator_id.as_str(), "auth-1");
    assert_eq!(p.user_handle, user("u1"));
    assert!(matches!(
        provider.verify(&Proof::Code(code)).await,
        Err(ProviderError::Rejected(Rejection::InvalidToken))
    ));

    // The id_token of another ceremony (this one's twin is consumed).
    let (_, token) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let p = provider
        .verify(&Proof::IdToken(token.clone()))
        .await
        .unwrap();
    assert_eq!(p.authenticator_id.as_str(), "auth-1");
    assert!(matches!(
        provider.verify(&Proof::IdToken(token)).await,
        Err(ProviderError::Rejected(Rejection::Replayed))
    ));
    assert!(matches!(
        provider.verify(&Proof::Nonce(PassageNonce::new("n"))).await,
        Err(ProviderError::Rejected(Rejection::Malformed))
    ));
}

/// The code and the id_token of one ceremony are twins: the code's
/// principal id is the id_token's jti, and redeeming either consumes both.
#[tokio::test]
async fn provider_redeems_a_ceremony_once_by_code_or_id_token() {
    let fake = FakePasslock::start().await.unwrap();
    let provider = fake.provider().unwrap();
    // Code first: the twin id_token is a replay.
    let (code, token) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    provider.verify(&Proof::Code(code)).await.unwrap();
    assert!(matches!(
        provider.verify(&Proof::IdToken(token)).await,
        Err(ProviderError::Rejected(Rejection::Replayed))
    ));
    // id_token first: the twin code is refused once exchanged.
    let (code, token) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    provider.verify(&Proof::IdToken(token)).await.unwrap();
    assert!(matches!(
        provider.verify(&Proof::Code(code)).await,
        Err(ProviderError::Rejected(Rejection::Replayed))
    ));
    assert_eq!(fake.hits("principal"), 2);
    // Codes and id_tokens of other ceremonies are unaffected.
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    provider.verify(&Proof::Code(code)).await.unwrap();
    let (_, token) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    provider.verify(&Proof::IdToken(token)).await.unwrap();
}

/// The fake keeps DESIGN's wire contract: the principal id of a code is the
/// `jti` of the same ceremony's id_token.
#[tokio::test]
async fn a_codes_principal_id_is_its_id_tokens_jti() {
    use base64::Engine as _;
    let fake = FakePasslock::start().await.unwrap();
    let (code, token) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let principal = client(&fake).exchange_code(&code).await.unwrap();
    let payload = token.expose_secret().split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["jti"], principal.id.as_str());
}

#[tokio::test]
async fn provider_times_out_as_an_upstream_error() {
    let fake = FakePasslock::start().await.unwrap();
    let http = HttpConfig::default().with_timeout(TIMEOUT);
    let provider = passlock_core::provider::passlock::PasslockHosted::new(
        fake.client_config().with_http(http),
        "localhost",
        "App",
        fake.clock(),
    )
    .unwrap();
    fake.set_fault(Fault::Latency(SLOW));
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let e = provider.verify(&Proof::Code(code)).await.unwrap_err();
    assert!(matches!(e, ProviderError::Upstream(UpstreamError::Timeout)));
    assert_eq!(fake.hits("principal"), 1);
}

/// Runs the browser half of a ceremony against the fake, like client.js.
async fn browser(
    fake: &FakePasslock,
    kind: &str,
    token_field: &str,
    token: &str,
    cred: &str,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let base = format!(
        "{}/v2/{}/passkey/{kind}",
        fake.endpoint(),
        fake.tenancy_id()
    );
    let r = http
        .post(format!("{base}/options"))
        .header("content-type", "application/json")
        .body(json!({ token_field: token }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let options: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(options["optionsJSON"]["challenge"].is_string());
    let r = http
        .post(format!("{base}/verification"))
        .header("content-type", "application/json")
        .body(
            json!({"sessionToken": options["sessionToken"], "response": {"id": cred}}).to_string(),
        )
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn provider_authorizes_a_registration_that_the_browser_completes() {
    let fake = FakePasslock::start().await.unwrap();
    let provider = fake.provider().unwrap();
    let mut request = RegistrationRequest::new(user("new-user"), "jdoe@example.com");
    request.exclude = vec![AuthenticatorId::new("old-passkey").unwrap()];
    let auth = provider.authorize_registration(request).await.unwrap();
    assert_eq!(auth.endpoint, Endpoint::Remote(fake.endpoint()));
    assert_eq!(auth.tenancy_id, fake.tenancy_id());
    assert!(auth.expires_at > 0);
    assert_eq!(fake.hits("authorize_registration"), 1);

    let (status, body) = browser(
        &fake,
        "registration",
        "registrationToken",
        auth.token.expose_secret(),
        "cred-new",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["_tag"], "RegistrationSuccess");
    assert_eq!(body["principal"]["userId"], "new-user");
    let code = Code::new(body["code"].as_str().unwrap());
    let p = provider.verify(&Proof::Code(code)).await.unwrap();
    assert_eq!(p.user_handle, user("new-user"));
    assert_eq!(p.authenticator_id.as_str(), "cred-new");
    assert!(fake.has_passkey("cred-new"));
    // The twin id_token was spent with the code.
    let token = passlock_core::secret::IdToken::new(body["id_token"].as_str().unwrap());
    assert!(matches!(
        provider.verify(&Proof::IdToken(token)).await,
        Err(ProviderError::Rejected(Rejection::Replayed))
    ));
    // The response carried no authenticator data: not user-verified.
    assert!(!p.user_verified);
}

#[tokio::test]
async fn provider_authorizes_authentications() {
    let fake = FakePasslock::start().await.unwrap();
    let provider = fake.provider().unwrap();
    fake.add_passkey("cred-1", &user("u1"), "jdoe");

    let auth = provider
        .authorize_authentication(AuthenticationRequest::discoverable())
        .await
        .unwrap();
    let (status, body) = browser(
        &fake,
        "authentication",
        "authenticationToken",
        auth.token.expose_secret(),
        "cred-1",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["_tag"], "AuthenticationSuccess");
    let p = provider
        .verify(&Proof::Code(Code::new(body["code"].as_str().unwrap())))
        .await
        .unwrap();
    assert_eq!(p.user_handle, user("u1"));

    // An orphaned credential: PasskeyNotFound with its ids.
    let auth = provider
        .authorize_authentication(AuthenticationRequest::restricted(vec![
            AuthenticatorId::new("cred-1").unwrap(),
        ]))
        .await
        .unwrap();
    let (status, body) = browser(
        &fake,
        "authentication",
        "authenticationToken",
        auth.token.expose_secret(),
        "cred-gone",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["_tag"], "@error/PasskeyNotFound");
    assert_eq!(body["credentialId"], "cred-gone");
    assert_eq!(fake.hits("authorize_authentication"), 2);
}

#[tokio::test]
async fn authorize_calls_send_the_documented_bodies() {
    let fake = FakePasslock::start().await.unwrap();
    let c = client(&fake);
    let ok = c
        .authorize_registration(&AuthorizeRegistration::new(
            "example.com",
            "Example",
            user("u1"),
            "jdoe",
        ))
        .await
        .unwrap();
    assert_eq!(ok.tag, "AuthorizedPasskeyRegistration");
    assert!(!ok.registration_token.is_empty());
    let mut auth = AuthorizeAuthentication::new("example.com");
    auth.user_id = Some(user("u1"));
    auth.allow_credentials = Some(vec!["p1".into()]);
    auth.mediation = Some("conditional".into());
    let ok = c.authorize_authentication(&auth).await.unwrap();
    assert_eq!(ok.tag, "AuthorizedPasskeyAuthentication");
    // A body the service refuses.
    let e = c
        .authorize_registration(&AuthorizeRegistration::new(
            "",
            "Example",
            user("u1"),
            "jdoe",
        ))
        .await
        .unwrap_err();
    assert_eq!(api(&e), PasslockApiError::BadRequest);
    // Refused authorizations reach the provider as Refused.
    fake.set_route_fault(
        RouteFamily::Authorize,
        Fault::ApiError {
            status: 403,
            tag: "Forbidden",
        },
    );
    let e = fake
        .provider()
        .unwrap()
        .authorize_authentication(AuthenticationRequest::discoverable())
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Refused { status: 403, .. }));
}

// ---------------------------------------------------------------------------
// Vault
// ---------------------------------------------------------------------------

#[tokio::test]
async fn list_passkeys_pages_with_a_cursor() {
    let fake = FakePasslock::start().await.unwrap();
    fake.set_page_size(2);
    for i in 0..5 {
        fake.add_passkey(&format!("p{i}"), &user("u1"), "jdoe");
    }
    let c = client(&fake);
    let mut pages = c.list_passkeys();
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    while let Some(page) = pages.next_page().await {
        let page = page.unwrap();
        sizes.push(page.len());
        ids.extend(page.into_iter().map(|p| p.id.to_string()));
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(ids, ["p0", "p1", "p2", "p3", "p4"]);
    assert!(pages.next_page().await.is_none());
    assert_eq!(fake.hits("list_passkeys"), 3);
    assert_eq!(c.list_passkeys().collect_all().await.unwrap().len(), 5);

    let empty = FakePasslock::start().await.unwrap();
    let mut pages = client(&empty).list_passkeys();
    assert!(pages.next_page().await.unwrap().unwrap().is_empty());
    assert!(pages.next_page().await.is_none());
}

#[tokio::test]
async fn a_failing_page_ends_the_pager() {
    let fake = FakePasslock::start().await.unwrap();
    fake.set_fault(Fault::Status500);
    let mut pages = client(&fake).list_passkeys();
    assert!(pages.next_page().await.unwrap().is_err());
    assert!(pages.next_page().await.is_none());
}

#[tokio::test]
async fn get_passkey_and_not_found() {
    let fake = FakePasslock::start().await.unwrap();
    fake.add_passkey("p1", &user("u1"), "jdoe");
    let c = client(&fake);
    let p = c.get_passkey(&PasskeyId::new("p1").unwrap()).await.unwrap();
    assert_eq!(p.tag, "Passkey");
    assert_eq!(p.user_id, Some(user("u1")));
    assert_eq!(p.username.as_deref(), Some("jdoe"));
    let e = c
        .get_passkey(&PasskeyId::new("p2").unwrap())
        .await
        .unwrap_err();
    assert_eq!(api(&e), PasslockApiError::NotFound);
}

#[tokio::test]
async fn prepare_update_delete_and_prune() {
    let fake = FakePasslock::start().await.unwrap();
    fake.add_passkey("p1", &user("u1"), "old");
    fake.add_passkey("p2", &user("u1"), "old");
    fake.add_passkey("p3", &user("u2"), "other");
    let c = client(&fake);

    let up = c
        .prepare_update(&PrepareUpdate::new(user("u1"), "new"))
        .await
        .unwrap();
    assert_eq!(up.tag, "PreparedPasskeyUpdate");
    assert!(!up.token.is_empty());
    assert!(up.warnings.is_empty());
    assert_eq!(fake.passkey_username("p1").as_deref(), Some("new"));

    let del = c
        .prepare_delete(&DeleteTarget::Passkeys {
            passkey_ids: vec![PasskeyId::new("p1").unwrap(), PasskeyId::new("zz").unwrap()],
        })
        .await
        .unwrap();
    assert_eq!(del.tag, "PreparedPasskeyDelete");
    assert_eq!(del.warnings.len(), 1);
    assert_eq!(del.warnings[0].passkey_id.as_ref().unwrap().as_str(), "zz");
    assert!(!fake.has_passkey("p1"));

    let del = c
        .prepare_delete(&DeleteTarget::User {
            user_id: user("u2"),
        })
        .await
        .unwrap();
    assert!(del.warnings.is_empty());
    assert!(!fake.has_passkey("p3"));
    assert!(fake.has_passkey("p2"));

    let e = c
        .prepare_delete(&DeleteTarget::Passkeys {
            passkey_ids: vec![PasskeyId::new("zz").unwrap()],
        })
        .await
        .unwrap_err();
    assert!(matches!(api(&e), PasslockApiError::PasskeyNotFound { .. }));
    assert!(matches!(
        ProviderError::from(e),
        ProviderError::Rejected(Rejection::UnknownCredential)
    ));

    let prune = c.prepare_prune(&user("u1")).await.unwrap();
    assert_eq!(prune.tag, "PreparedPasskeyPrune");
    assert!(prune.expires_at > 0);
    for name in ["prepare_update", "prepare_prune"] {
        assert_eq!(fake.hits(name), 1, "{name}");
    }
    assert_eq!(fake.hits("prepare_delete"), 3);
}

#[tokio::test]
async fn provider_deletes_from_the_vault_idempotently() {
    let fake = FakePasslock::start().await.unwrap();
    fake.add_passkey("p1", &user("u1"), "jdoe");
    let provider = fake.provider().unwrap();
    let id = AuthenticatorId::new("p1").unwrap();
    provider.delete_passkey(&id).await.unwrap();
    assert!(!fake.has_passkey("p1"));
    provider.delete_passkey(&id).await.unwrap();
    fake.set_fault(Fault::Status500);
    assert!(matches!(
        provider.delete_passkey(&id).await,
        Err(ProviderError::Upstream(_))
    ));
}

// ---------------------------------------------------------------------------
// Challenges
// ---------------------------------------------------------------------------

#[tokio::test]
async fn challenge_lifecycle() {
    let fake = FakePasslock::start().await.unwrap();
    let c = client(&fake);
    let mut req = CreateChallenge::new("jdoe@example.com", "login");
    req.user_id = Some(user("u1"));
    req.metadata = Some(json!({"k": "v"}));
    let created = c.create_challenge(&req).await.unwrap();
    assert_eq!(created.tag, "ChallengeCreated");
    let ch = created.challenge;
    assert_eq!(ch.email, "jdoe@example.com");
    assert_eq!(ch.user_id, Some(user("u1")));
    assert!(!format!("{ch:?}").contains(ch.code.expose_secret()));

    let got = c.get_challenge(&ch.challenge_id).await.unwrap();
    assert_eq!(got.challenge_id, ch.challenge_id);
    assert_eq!(got.metadata, json!({"k": "v"}));

    let wrong = VerifyChallenge::new(
        ch.challenge_id.clone(),
        ch.secret.clone(),
        ChallengeSecret::new("000000x"),
    );
    let e = c.verify_challenge(&wrong).await.unwrap_err();
    assert_eq!(api(&e), PasslockApiError::InvalidChallengeCode);
    let bad_secret = VerifyChallenge::new(
        ch.challenge_id.clone(),
        ChallengeSecret::new("nope"),
        ch.code.clone(),
    );
    let e = c.verify_challenge(&bad_secret).await.unwrap_err();
    assert_eq!(api(&e), PasslockApiError::InvalidChallenge);

    let right = VerifyChallenge::new(ch.challenge_id.clone(), ch.secret.clone(), ch.code.clone());
    let ok = c.verify_challenge(&right).await.unwrap();
    assert_eq!(ok.tag, "ChallengeVerified");
    assert_eq!(ok.challenge.challenge_id, ch.challenge_id);
    let e = c.verify_challenge(&right).await.unwrap_err();
    assert_eq!(api(&e), PasslockApiError::InvalidChallenge, "single use");

    let e = c.get_challenge(&ch.challenge_id).await.unwrap_err();
    assert_eq!(api(&e), PasslockApiError::NotFound);

    let other = c.create_challenge(&req).await.unwrap().challenge;
    let deleted = c.delete_challenge(&other.challenge_id).await.unwrap();
    assert_eq!(deleted.tag, "ChallengeDeleted");
    let e = c.delete_challenge(&other.challenge_id).await.unwrap_err();
    assert_eq!(api(&e), PasslockApiError::NotFound);
    let e = c
        .get_challenge(&ChallengeId::new("missing").unwrap())
        .await
        .unwrap_err();
    assert_eq!(api(&e), PasslockApiError::NotFound);
}

#[tokio::test]
async fn challenge_attempts_are_limited() {
    let fake = FakePasslock::start().await.unwrap();
    let c = client(&fake);
    let ch = c
        .create_challenge(&CreateChallenge::new("a@example.com", "login"))
        .await
        .unwrap()
        .challenge;
    let wrong = VerifyChallenge::new(
        ch.challenge_id.clone(),
        ch.secret.clone(),
        ChallengeSecret::new("wrong"),
    );
    let mut tags = Vec::new();
    for _ in 0..4 {
        tags.push(api(&c.verify_challenge(&wrong).await.unwrap_err()));
    }
    assert_eq!(
        tags,
        [
            PasslockApiError::InvalidChallengeCode,
            PasslockApiError::InvalidChallengeCode,
            PasslockApiError::ChallengeAttemptsExceeded,
            PasslockApiError::ChallengeAttemptsExceeded,
        ]
    );
    // Even the right code is refused now.
    let right = VerifyChallenge::new(ch.challenge_id.clone(), ch.secret.clone(), ch.code.clone());
    assert_eq!(
        api(&c.verify_challenge(&right).await.unwrap_err()),
        PasslockApiError::ChallengeAttemptsExceeded
    );
}

#[tokio::test]
async fn challenges_expire_and_are_rate_limited() {
    let (fake, clock) = fake_on_manual_clock().await;
    let c = client(&fake);
    let req = CreateChallenge::new("b@example.com", "login");
    let ch = c.create_challenge(&req).await.unwrap().challenge;
    clock.advance_secs(601);
    let right = VerifyChallenge::new(ch.challenge_id.clone(), ch.secret.clone(), ch.code.clone());
    assert_eq!(
        api(&c.verify_challenge(&right).await.unwrap_err()),
        PasslockApiError::ChallengeExpired
    );

    for _ in 0..3 {
        c.create_challenge(&req).await.unwrap();
    }
    let e = c.create_challenge(&req).await.unwrap_err();
    assert_eq!(
        api(&e),
        PasslockApiError::ChallengeRateLimited {
            retry_after_seconds: 60
        }
    );
    assert_eq!(status(&e), 429);
    let mut skip = req.clone();
    skip.skip_rate_limit = Some(true);
    c.create_challenge(&skip).await.unwrap();

    let e = c
        .create_challenge(&CreateChallenge::new("not-an-email", "login"))
        .await
        .unwrap_err();
    assert_eq!(api(&e), PasslockApiError::InvalidEmail);
}

// ---------------------------------------------------------------------------
// The HTTP wrapper
// ---------------------------------------------------------------------------

#[tokio::test]
async fn bodies_over_the_cap_are_refused() {
    let fake = FakePasslock::start().await.unwrap();
    for i in 0..40 {
        fake.add_passkey(&format!("passkey-{i:03}"), &user("u1"), "jdoe");
    }
    fake.set_page_size(100);
    let big = PasslockClient::new(
        fake.client_config()
            .with_http(HttpConfig::default().with_max_body(1024)),
    )
    .unwrap();
    let e = big.list_passkeys_page(None).await.unwrap_err();
    assert!(
        matches!(
            e,
            HostedError::Upstream(UpstreamError::BadResponse {
                reason: "body too large",
                ..
            })
        ),
        "{e:?}"
    );
    assert_eq!(
        client(&fake)
            .list_passkeys_page(None)
            .await
            .unwrap()
            .records
            .len(),
        40
    );
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let fake = FakePasslock::start().await.unwrap();
    let jwks = format!("{}/.well-known/jwks.json", fake.endpoint());
    fake.set_route_fault(RouteFamily::Principal, Fault::Redirect(jwks));
    let (code, _) = fake.issue(&user("u1"), "auth-1", true).unwrap();
    let e = client(&fake).exchange_code(&code).await.unwrap_err();
    assert!(
        matches!(
            e,
            HostedError::Upstream(UpstreamError::BadResponse {
                reason: "redirect",
                status: Some(302),
                ..
            })
        ),
        "{e:?}"
    );
    assert_eq!(fake.jwks_fetches(), 0, "the redirect was not followed");
}

#[tokio::test]
async fn the_http_client_reads_json_and_reports_the_status() {
    let fake = FakePasslock::start().await.unwrap();
    let http = HttpClient::new(HttpConfig::default()).unwrap();
    let r = http
        .get(
            &format!("{}/.well-known/jwks.json", fake.endpoint()),
            None,
            Retry::OnConnectFailure,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.is_json());
    let doc: Value = r.json().unwrap();
    assert_eq!(doc["keys"].as_array().unwrap().len(), 1);
    assert_eq!(fake.jwks_fetches(), 1);
}

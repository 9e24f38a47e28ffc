//! id_token verification against the FakePasslock JWKS: every rejection,
//! key rotation, refetch single-flight, JWKS outages, replay.

// Helpers outside #[test] functions may unwrap and panic too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use passlock_core::clock::{Clock, ManualClock, SharedClock};
use passlock_core::error::{ProviderError, Rejection, UpstreamError};
use passlock_core::http::{HttpClient, HttpConfig};
use passlock_core::proof::MAX_ID_TOKEN_LEN;
use passlock_core::provider::jwt::{Algorithm, HttpJwks, IdTokenVerifier, JwkSet, VerifierConfig};
use passlock_core::secret::IdToken;
use passlock_core::{TenancyId, UserHandle};
use passlock_test::fake_passlock::{FakePasslock, Fault};
use passlock_test::keys::{self, StaticJwks, TestKey};
use serde_json::{Value, json};

struct Setup {
    fake: FakePasslock,
    clock: ManualClock,
    verifier: IdTokenVerifier,
}

async fn setup() -> Setup {
    let clock = ManualClock::new(1_800_000_000_000);
    let shared: SharedClock = Arc::new(clock.clone());
    let fake = FakePasslock::start_with_clock(shared.clone())
        .await
        .unwrap();
    let http = HttpClient::new(HttpConfig::default()).unwrap();
    let verifier = IdTokenVerifier::new(
        VerifierConfig::passlock(fake.tenancy_id()),
        Arc::new(HttpJwks::new(http, &fake.endpoint())),
        shared,
    );
    Setup {
        fake,
        clock,
        verifier,
    }
}

fn user() -> UserHandle {
    UserHandle::new("user-1").unwrap()
}

impl Setup {
    fn claims(&self) -> Value {
        self.fake.claims(&user(), "auth-1", true)
    }

    fn key(&self) -> TestKey {
        self.fake.signing_key().unwrap()
    }

    fn token_with(&self, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> IdToken {
        let mut claims = self.claims();
        f(claims.as_object_mut().unwrap());
        self.fake.sign(&claims).unwrap()
    }

    async fn rejection(&self, token: &IdToken) -> Rejection {
        match self.verifier.verify(token).await {
            Err(ProviderError::Rejected(r)) => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn valid_token_yields_its_principal() {
    let s = setup().await;
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    let p = s.verifier.verify(&token).await.unwrap();
    assert_eq!(p.authenticator_id.as_str(), "auth-1");
    assert_eq!(p.user_handle, user());
    assert!(p.user_verified);
    assert_eq!(p.authenticated_at, s.clock.now_secs() * 1000);
    assert_eq!(s.fake.jwks_fetches(), 1);
}

#[tokio::test]
async fn user_verified_defaults_to_false() {
    let s = setup().await;
    let token = s.token_with(|c| {
        c.remove("pk:uv");
    });
    assert!(!s.verifier.verify(&token).await.unwrap().user_verified);
}

#[tokio::test]
async fn alg_none_is_refused_before_any_key_is_fetched() {
    let s = setup().await;
    for alg in ["none", "None", "NONE"] {
        let t =
            keys::raw_token(&json!({"alg": alg, "kid": s.key().kid()}), &s.claims(), b"").unwrap();
        assert_eq!(
            s.rejection(&IdToken::new(t)).await,
            Rejection::DisallowedAlgorithm
        );
    }
    assert_eq!(s.fake.jwks_fetches(), 0);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let s = setup().await;
    let key = s.key();
    for secret in [
        key.public_key_der().to_vec(),
        serde_json::to_vec(&key.jwk()).unwrap(),
    ] {
        let t = keys::hmac_token(
            &json!({"alg": "HS256", "typ": "JWT", "kid": key.kid()}),
            &s.claims(),
            &secret,
        )
        .unwrap();
        assert_eq!(
            s.rejection(&IdToken::new(t)).await,
            Rejection::DisallowedAlgorithm
        );
    }
    assert_eq!(s.fake.jwks_fetches(), 0, "the header alg is checked first");
}

#[tokio::test]
async fn algorithm_outside_the_allow_list_is_refused() {
    let s = setup().await;
    let ec = TestKey::ec_p256(s.key().kid()).unwrap();
    let t = ec.sign(&s.claims()).unwrap();
    assert_eq!(
        s.rejection(&IdToken::new(t)).await,
        Rejection::DisallowedAlgorithm
    );
    let t = keys::raw_token(&json!({"alg": "XX999", "kid": "k"}), &s.claims(), b"x").unwrap();
    assert_eq!(
        s.rejection(&IdToken::new(t)).await,
        Rejection::DisallowedAlgorithm
    );
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let s = setup().await;
    let t = s.token_with(|c| {
        c.insert("iss".into(), json!("https://passlock.dev"));
    });
    assert_eq!(s.rejection(&t).await, Rejection::WrongIssuer);
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let s = setup().await;
    let t = s.token_with(|c| {
        c.insert("aud".into(), json!("another-tenancy"));
    });
    assert_eq!(s.rejection(&t).await, Rejection::WrongAudience);
    let t = s.token_with(|c| {
        c.insert("aud".into(), json!(["another-tenancy"]));
    });
    assert_eq!(s.rejection(&t).await, Rejection::WrongAudience);
}

/// Exactly the tenancy: an array naming it among other audiences is a
/// token for those relying parties too, and is refused (RS256, hosted).
#[tokio::test]
async fn audience_must_be_exactly_the_tenancy() {
    let s = setup().await;
    let tenancy = s.fake.tenancy_id();
    let t = s.token_with(|c| {
        c.insert("aud".into(), json!([tenancy.as_str(), "other"]));
    });
    assert_eq!(s.rejection(&t).await, Rejection::WrongAudience);
    let t = s.token_with(|c| {
        c.insert("aud".into(), json!(["other", tenancy.as_str()]));
    });
    assert_eq!(s.rejection(&t).await, Rejection::WrongAudience);
    let t = s.token_with(|c| {
        c.insert("aud".into(), json!([tenancy.as_str(), tenancy.as_str()]));
    });
    assert_eq!(s.rejection(&t).await, Rejection::WrongAudience);
    // The string, and an array of that one value, are accepted.
    let t = s.token_with(|c| {
        c.insert("aud".into(), json!(tenancy.as_str()));
    });
    s.verifier.verify(&t).await.unwrap();
    let t = s.token_with(|c| {
        c.insert("aud".into(), json!([tenancy.as_str()]));
    });
    s.verifier.verify(&t).await.unwrap();
}

/// The same rule on the embedded provider's ES256 tokens.
#[tokio::test]
async fn embedded_audience_must_be_exactly_the_tenancy() {
    let ec = TestKey::ec_p256("e1").unwrap();
    let iss = "http://localhost:3000/passkey";
    let (_, clock, v) = static_verifier(
        VerifierConfig::embedded(iss, TenancyId::new("t1").unwrap()),
        keys::jwk_set([&ec]),
    );
    let mut c = claims_for("t1", iss, clock.now_secs());
    c["aud"] = json!(["t1", "other"]);
    assert!(matches!(
        v.verify(&IdToken::new(ec.sign(&c).unwrap())).await,
        Err(ProviderError::Rejected(Rejection::WrongAudience))
    ));
    let c = claims_for("t1", iss, clock.now_secs());
    v.verify(&IdToken::new(ec.sign(&c).unwrap())).await.unwrap();
}

/// A correctly signed payload naming `claim` twice: the second value would
/// win in jsonwebtoken and serde_json, the first in other parsers.
fn duplicate_claim_payload(claims: &Value, claim: &str, second: &Value) -> String {
    let mut text = serde_json::to_string(claims).unwrap();
    assert_eq!(text.pop(), Some('}'));
    format!("{text},\"{claim}\":{second}}}")
}

#[tokio::test]
async fn duplicate_claims_are_refused() {
    let s = setup().await;
    let key = s.key();
    let header = serde_json::to_string(&key.header()).unwrap();
    // jsonwebtoken itself refuses a second `sub`, `aud` or `exp` (it reads
    // them into a struct); the claims only passlock reads are the risk: a
    // second `pk:uv` turned an unverified ceremony into a verified one.
    let mut unverified = s.claims();
    unverified["pk:uv"] = json!(false);
    for (claims, claim, second) in [
        (&unverified, "pk:uv", json!(true)),
        (&s.claims(), "a:id", json!("auth-2")),
        (&s.claims(), "sub", json!("user-2")),
        (&s.claims(), "aud", json!(s.fake.tenancy_id().as_str())),
        (&s.claims(), "exp", json!(s.clock.now_secs() + 60)),
    ] {
        let payload = duplicate_claim_payload(claims, claim, &second);
        let t = IdToken::new(key.sign_json_text(&header, &payload).unwrap());
        assert_eq!(s.rejection(&t).await, Rejection::Malformed, "two {claim}");
    }
    // The same text without the duplicate verifies: only the key is at fault.
    let payload = serde_json::to_string(&s.claims()).unwrap();
    let t = IdToken::new(key.sign_json_text(&header, &payload).unwrap());
    s.verifier.verify(&t).await.unwrap();
}

#[tokio::test]
async fn duplicate_header_keys_are_refused() {
    let s = setup().await;
    let key = s.key();
    let header = serde_json::to_string(&key.header()).unwrap();
    // A field jsonwebtoken does not read, so only passlock's check sees it.
    let header = format!(
        "{},\"x-note\":\"a\",\"x-note\":\"b\"}}",
        header.trim_end_matches('}')
    );
    let payload = serde_json::to_string(&s.claims()).unwrap();
    let t = IdToken::new(key.sign_json_text(&header, &payload).unwrap());
    assert_eq!(s.rejection(&t).await, Rejection::Malformed);
}

#[tokio::test]
async fn embedded_duplicate_claims_are_refused() {
    let ec = TestKey::ec_p256("e1").unwrap();
    let iss = "http://localhost:3000/passkey";
    let (_, clock, v) = static_verifier(
        VerifierConfig::embedded(iss, TenancyId::new("t1").unwrap()),
        keys::jwk_set([&ec]),
    );
    let header = serde_json::to_string(&ec.header()).unwrap();
    let c = claims_for("t1", iss, clock.now_secs());
    let payload = duplicate_claim_payload(&c, "a:id", &json!("a2"));
    assert!(matches!(
        v.verify(&IdToken::new(ec.sign_json_text(&header, &payload).unwrap()))
            .await,
        Err(ProviderError::Rejected(Rejection::Malformed))
    ));
}

#[tokio::test]
async fn missing_audience_is_refused() {
    let s = setup().await;
    let t = s.token_with(|c| {
        c.remove("aud");
    });
    assert_eq!(s.rejection(&t).await, Rejection::MissingClaim);
}

#[tokio::test]
async fn expired_token_is_refused_by_the_injected_clock() {
    let s = setup().await;
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    let (_, in_leeway) = s.fake.issue(&user(), "auth-1", true).unwrap();
    // exp = iat + 300; leeway 5 s.
    s.clock.advance_secs(304);
    s.verifier.verify(&in_leeway).await.unwrap();
    s.clock.advance_secs(2);
    assert_eq!(s.rejection(&token).await, Rejection::Expired);
}

#[tokio::test]
async fn exp_of_the_wrong_type_is_refused() {
    let s = setup().await;
    let t = s.token_with(|c| {
        let exp = c["exp"].as_i64().unwrap();
        c.insert("exp".into(), json!(exp.to_string()));
    });
    let r = s.rejection(&t).await;
    assert!(
        matches!(r, Rejection::MissingClaim | Rejection::Malformed),
        "{r:?}"
    );
    let t = s.token_with(|c| {
        c.remove("exp");
    });
    assert_eq!(s.rejection(&t).await, Rejection::MissingClaim);
}

#[tokio::test]
async fn iat_in_the_future_is_refused() {
    let s = setup().await;
    let t = s.token_with(|c| {
        let iat = c["iat"].as_i64().unwrap();
        c.insert("iat".into(), json!(iat + 60));
    });
    assert_eq!(s.rejection(&t).await, Rejection::IssuedInFuture);
    // Within the leeway it passes.
    let t = s.token_with(|c| {
        let iat = c["iat"].as_i64().unwrap();
        c.insert("iat".into(), json!(iat + 4));
    });
    s.verifier.verify(&t).await.unwrap();
}

#[tokio::test]
async fn missing_authenticator_id_is_refused() {
    let s = setup().await;
    let t = s.token_with(|c| {
        c.remove("a:id");
    });
    assert_eq!(s.rejection(&t).await, Rejection::MissingClaim);
    let t = s.token_with(|c| {
        c.insert("a:id".into(), json!(42));
    });
    assert_eq!(s.rejection(&t).await, Rejection::MissingClaim);
}

#[tokio::test]
async fn missing_jti_is_refused_when_replay_protection_is_on() {
    let s = setup().await;
    let t = s.token_with(|c| {
        c.remove("jti");
    });
    assert_eq!(s.rejection(&t).await, Rejection::MissingClaim);
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let s = setup().await;
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    let parts: Vec<&str> = token.expose_secret().split('.').collect();
    let mut claims = s.claims();
    claims["a:id"] = json!("someone-elses-passkey");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        keys::b64(&serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert_eq!(
        s.rejection(&IdToken::new(forged)).await,
        Rejection::BadSignature
    );
}

#[tokio::test]
async fn tampered_signature_is_refused() {
    let s = setup().await;
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    let raw = token.expose_secret();
    let sig_start = raw.rfind('.').unwrap() + 1;
    let mut bytes = raw.as_bytes().to_vec();
    let i = sig_start + 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(bytes).unwrap();
    assert_eq!(
        s.rejection(&IdToken::new(forged)).await,
        Rejection::BadSignature
    );
}

#[tokio::test]
async fn the_same_token_verifies_once() {
    let s = setup().await;
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
    assert_eq!(s.rejection(&token).await, Rejection::Replayed);

    let lax = s.verifier.clone().danger_without_replay_cache();
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    lax.verify(&token).await.unwrap();
    lax.verify(&token).await.unwrap();
}

#[tokio::test]
async fn a_rejected_token_does_not_burn_its_jti() {
    let s = setup().await;
    let mut claims = s.claims();
    claims["iat"] = json!(claims["iat"].as_i64().unwrap() + 10);
    let t = s.fake.sign(&claims).unwrap();
    assert_eq!(s.rejection(&t).await, Rejection::IssuedInFuture);
    s.clock.advance_secs(10);
    s.verifier.verify(&t).await.unwrap();
}

#[tokio::test]
async fn garbage_never_panics() {
    let s = setup().await;
    let long = "a".repeat(20_000);
    let inputs = [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.x.y",
        "e30.e30.e30",
        "eyJhbGciOiJSUzI1NiJ9..",
        long.as_str(),
        "\u{0}.\u{0}.\u{0}",
    ];
    for input in inputs {
        // A header without a `kid` names no key; anything else is malformed.
        let expected = match input {
            "eyJhbGciOiJSUzI1NiJ9.." => Rejection::UnknownKey,
            _ => Rejection::Malformed,
        };
        assert_eq!(
            s.rejection(&IdToken::new(input)).await,
            expected,
            "{input:?}"
        );
    }
    let header = keys::b64(br#"{"alg":"RS256","kid":"key-1"}"#);
    for payload in ["[]", "null", "\"x\"", "{", "42"] {
        let t = format!(
            "{header}.{}.{}",
            keys::b64(payload.as_bytes()),
            keys::b64(b"sig")
        );
        // The signature is checked before the claims are read.
        assert_eq!(
            s.rejection(&IdToken::new(t)).await,
            Rejection::BadSignature,
            "{payload}"
        );
    }
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let s = setup().await;
    let stranger = TestKey::rsa("stranger").unwrap();
    let t = IdToken::new(stranger.sign(&s.claims()).unwrap());
    assert_eq!(s.rejection(&t).await, Rejection::UnknownKey);
    let t = keys::raw_token(&json!({"alg": "RS256"}), &s.claims(), b"sig").unwrap();
    assert_eq!(s.rejection(&IdToken::new(t)).await, Rejection::UnknownKey);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_kid_refetches_at_most_once_per_cooldown_under_load() {
    let s = setup().await;
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
    assert_eq!(s.fake.jwks_fetches(), 1);

    let stranger = TestKey::rsa("stranger").unwrap();
    let burst = |n: usize| {
        let claims = s.claims();
        (0..n)
            .map(|_| {
                let v = s.verifier.clone();
                let t = IdToken::new(stranger.sign(&claims).unwrap());
                tokio::spawn(async move { v.verify(&t).await })
            })
            .collect::<Vec<_>>()
    };

    // Within the cooldown of the first fetch: no refetch at all.
    for h in burst(100) {
        assert!(matches!(
            h.await.unwrap(),
            Err(ProviderError::Rejected(Rejection::UnknownKey))
        ));
    }
    assert_eq!(s.fake.jwks_fetches(), 1);

    // After the cooldown: 100 concurrent verifications, one shared refetch.
    s.clock.advance_secs(31);
    for h in burst(100) {
        assert!(matches!(
            h.await.unwrap(),
            Err(ProviderError::Rejected(Rejection::UnknownKey))
        ));
    }
    assert_eq!(s.fake.jwks_fetches(), 2);
    assert_eq!(s.verifier.key_fetches(), 2);
}

#[tokio::test]
async fn a_new_key_verifies_after_one_refetch() {
    let s = setup().await;
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
    let kid = s.fake.rotate_key().unwrap();
    assert_eq!(s.key().kid(), kid);
    s.clock.advance_secs(31);
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
    assert_eq!(s.fake.jwks_fetches(), 2);
    // And the next one is served from the cache.
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
    assert_eq!(s.fake.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_removed_key_stops_verifying_once_the_cache_is_refreshed() {
    let s = setup().await;
    let old = s.key();
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
    s.fake.rotate_key().unwrap();
    s.fake.remove_old_keys();

    // Still cached for now.
    let t = IdToken::new(old.sign(&s.claims()).unwrap());
    s.verifier.verify(&t).await.unwrap();

    // After the key set's maximum age (and cooldown), the set is refetched.
    s.clock.advance_secs(301);
    let t = IdToken::new(old.sign(&s.claims()).unwrap());
    assert_eq!(s.rejection(&t).await, Rejection::UnknownKey);
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
}

#[tokio::test]
async fn a_jwks_outage_keeps_verifying_known_keys() {
    let s = setup().await;
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
    s.fake.set_fault(Fault::JwksDown);
    s.clock.advance_secs(301);
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
    assert_eq!(s.fake.jwks_fetches(), 2, "the refresh was attempted");

    // An unknown key during the outage is an upstream failure, not a pass.
    s.clock.advance_secs(31);
    let stranger = TestKey::rsa("stranger").unwrap();
    let t = IdToken::new(stranger.sign(&s.claims()).unwrap());
    let e = s.verifier.verify(&t).await.unwrap_err();
    assert!(matches!(e, ProviderError::Upstream(_)), "{e:?}");
}

#[tokio::test]
async fn first_fetch_failing_is_an_upstream_error() {
    let s = setup().await;
    s.fake.set_fault(Fault::JwksDown);
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    let e = s.verifier.verify(&token).await.unwrap_err();
    assert!(
        matches!(
            e,
            ProviderError::Upstream(UpstreamError::BadResponse { .. })
        ),
        "{e:?}"
    );
    // Within the cooldown, no new attempt; still an upstream error.
    let e = s.verifier.verify(&token).await.unwrap_err();
    assert!(matches!(e, ProviderError::Upstream(_)), "{e:?}");
    assert_eq!(s.fake.jwks_fetches(), 1);
    // Recovered after the cooldown.
    s.fake.set_fault(Fault::None);
    s.clock.advance_secs(31);
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
}

fn static_verifier(
    config: VerifierConfig,
    set: JwkSet,
) -> (Arc<StaticJwks>, ManualClock, IdTokenVerifier) {
    let source = Arc::new(StaticJwks::new(set));
    let clock = ManualClock::new(1_800_000_000_000);
    let v = IdTokenVerifier::new(config, source.clone(), Arc::new(clock.clone()));
    (source, clock, v)
}

fn claims_for(tenancy: &str, iss: &str, now: i64) -> Value {
    json!({"iss": iss, "aud": tenancy, "sub": "u1", "jti": format!("j{now}-{}", rand_suffix()),
        "iat": now, "exp": now + 60, "a:id": "a1"})
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test]
async fn an_empty_key_set_never_replaces_the_last_good_one() {
    let key = TestKey::rsa("k1").unwrap();
    let tenancy = TenancyId::new("t1").unwrap();
    let (source, clock, v) =
        static_verifier(VerifierConfig::passlock(tenancy), keys::jwk_set([&key]));
    let sign = |clock: &ManualClock| {
        IdToken::new(
            key.sign(&claims_for("t1", "passlock.dev", clock.now_secs()))
                .unwrap(),
        )
    };
    v.verify(&sign(&clock)).await.unwrap();
    source.set(Some(JwkSet { keys: vec![] }));
    clock.advance_secs(301);
    v.verify(&sign(&clock)).await.unwrap();
    assert_eq!(v.key_fetches(), 2);
    // A set of only unusable keys (no kid) is as good as empty.
    let mut anonymous = key.jwk();
    anonymous.common.key_id = None;
    source.set(Some(JwkSet {
        keys: vec![anonymous],
    }));
    clock.advance_secs(301);
    v.verify(&sign(&clock)).await.unwrap();
    assert_eq!(v.key_fetches(), 3);
    // An outage too.
    source.set(None);
    clock.advance_secs(301);
    v.verify(&sign(&clock)).await.unwrap();
    assert_eq!(source.fetches(), 4);
}

#[tokio::test]
async fn the_jwk_alg_must_match_the_header_alg() {
    let rsa = TestKey::rsa("k1").unwrap();
    let tenancy = TenancyId::new("t1").unwrap();
    // The JWK says RS256; a PS256 token by the same key is refused.
    let (_, clock, v) = static_verifier(
        VerifierConfig::passlock(tenancy.clone()),
        keys::jwk_set([&rsa]),
    );
    let ps = rsa.clone().with_algorithm(Algorithm::PS256);
    let t = IdToken::new(
        ps.sign(&claims_for("t1", "passlock.dev", clock.now_secs()))
            .unwrap(),
    );
    assert!(matches!(
        v.verify(&t).await,
        Err(ProviderError::Rejected(Rejection::DisallowedAlgorithm))
    ));
    // A JWK naming no alg accepts any allowed alg of its family.
    let bare = rsa.clone().without_jwk_alg();
    let (_, clock, v) = static_verifier(VerifierConfig::passlock(tenancy), keys::jwk_set([&bare]));
    let t = IdToken::new(
        ps.sign(&claims_for("t1", "passlock.dev", clock.now_secs()))
            .unwrap(),
    );
    v.verify(&t).await.unwrap();
}

#[tokio::test]
async fn embedded_config_verifies_es256() {
    let ec = TestKey::ec_p256("e1").unwrap();
    let tenancy = TenancyId::new("t1").unwrap();
    let (_, clock, v) = static_verifier(
        VerifierConfig::embedded("http://localhost:3000/passkey", tenancy)
            .with_leeway(Duration::from_secs(0)),
        keys::jwk_set([&ec]),
    );
    let c = claims_for("t1", "http://localhost:3000/passkey", clock.now_secs());
    let p = v.verify(&IdToken::new(ec.sign(&c).unwrap())).await.unwrap();
    assert_eq!(p.authenticator_id.as_str(), "a1");
    // RS256 is not on the embedded allow-list.
    let rsa = TestKey::rsa("e1").unwrap();
    let c = claims_for("t1", "http://localhost:3000/passkey", clock.now_secs());
    assert!(matches!(
        v.verify(&IdToken::new(rsa.sign(&c).unwrap())).await,
        Err(ProviderError::Rejected(Rejection::DisallowedAlgorithm))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_refresh_does_not_hold_up_known_keys() {
    let s = setup().await;
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
    // The JWKS answers after a minute: the refresh ends with the client's
    // 5 s timeout (keeping the last good set), seconds after the second
    // verification, which must not wait for it.
    s.fake.set_route_fault(
        passlock_test::fake_passlock::RouteFamily::Jwks,
        Fault::Latency(Duration::from_secs(60)),
    );
    s.clock.advance_secs(301);
    let (_, first) = s.fake.issue(&user(), "auth-1", true).unwrap();
    let v = s.verifier.clone();
    let refreshing = tokio::spawn(async move { v.verify(&first).await });
    // Wait (without a deadline) until the refresh holds the refresh lock.
    while s.verifier.key_fetches() < 2 {
        tokio::task::yield_now().await;
    }
    let (_, second) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&second).await.unwrap();
    assert!(
        !refreshing.is_finished(),
        "the known key verified while the refresh was still waiting"
    );
    refreshing.await.unwrap().unwrap();
    assert_eq!(s.verifier.key_fetches(), 2);
}

/// The leeway the verifier reports is the configured one (5 s by default):
/// the hosted provider keeps an exchanged code's twin `jti` until its expiry
/// plus this leeway, the span in which the verifier still accepts it.
#[tokio::test]
async fn the_verifier_reports_its_configured_leeway() {
    let key = TestKey::rsa("k1").unwrap();
    let tenancy = TenancyId::new("t1").unwrap();
    let (_, _, v) = static_verifier(
        VerifierConfig::passlock(tenancy.clone()),
        keys::jwk_set([&key]),
    );
    assert_eq!(v.leeway_secs(), 5);
    let (_, _, v) = static_verifier(
        VerifierConfig::passlock(tenancy).with_leeway(Duration::from_secs(42)),
        keys::jwk_set([&key]),
    );
    assert_eq!(v.leeway_secs(), 42);
}

/// The length bound is inclusive: a token of exactly `MAX_ID_TOKEN_LEN`
/// bytes is read (and here refused for its unknown key); one byte more is
/// malformed before anything in it is read.
#[tokio::test]
async fn a_token_of_exactly_the_maximum_length_is_read() {
    let s = setup().await;
    let header = keys::b64(br#"{"alg":"RS256","kid":"stranger"}"#);
    let payload = keys::b64(b"{}");
    let fill = MAX_ID_TOKEN_LEN - header.len() - payload.len() - 2;
    let at_max = format!("{header}.{payload}.{}", "A".repeat(fill));
    assert_eq!(at_max.len(), MAX_ID_TOKEN_LEN);
    assert_eq!(
        s.rejection(&IdToken::new(at_max.clone())).await,
        Rejection::UnknownKey
    );
    assert_eq!(
        s.rejection(&IdToken::new(format!("{at_max}A"))).await,
        Rejection::Malformed
    );
}

/// An algorithm of the key's family that the configuration leaves out is
/// refused, though the key would verify it.
#[tokio::test]
async fn an_algorithm_left_out_of_the_allow_list_is_refused_for_a_known_key() {
    let rsa = TestKey::rsa("k1").unwrap().without_jwk_alg();
    let mut config = VerifierConfig::passlock(TenancyId::new("t1").unwrap());
    config.algorithms = vec![Algorithm::RS256];
    let (_, clock, v) = static_verifier(config, keys::jwk_set([&rsa]));
    let ps = rsa.clone().with_algorithm(Algorithm::PS256);
    let t = IdToken::new(
        ps.sign(&claims_for("t1", "passlock.dev", clock.now_secs()))
            .unwrap(),
    );
    assert!(matches!(
        v.verify(&t).await,
        Err(ProviderError::Rejected(Rejection::DisallowedAlgorithm))
    ));
    // The allowed algorithm verifies with the same key.
    let t = IdToken::new(
        rsa.sign(&claims_for("t1", "passlock.dev", clock.now_secs()))
            .unwrap(),
    );
    v.verify(&t).await.unwrap();
}

/// `nbf` (optional) more than the leeway (5 s) ahead is refused; up to the
/// leeway ahead, and any time past, it passes.
#[tokio::test]
async fn nbf_ahead_of_the_leeway_is_refused() {
    let s = setup().await;
    let now = s.clock.now_secs();
    let with_nbf = |nbf: i64| {
        s.token_with(|c| {
            c.insert("nbf".into(), json!(nbf));
        })
    };
    for nbf in [now + 60, now + 6] {
        assert_eq!(
            s.rejection(&with_nbf(nbf)).await,
            Rejection::IssuedInFuture,
            "nbf {nbf} at {now}"
        );
    }
    for nbf in [now + 5, now, now - 60] {
        s.verifier.verify(&with_nbf(nbf)).await.unwrap();
    }
}

/// `iat` may be up to the leeway (5 s) ahead, inclusive.
#[tokio::test]
async fn iat_exactly_the_leeway_ahead_passes() {
    let s = setup().await;
    let now = s.clock.now_secs();
    let with_iat = |iat: i64| {
        s.token_with(|c| {
            c.insert("iat".into(), json!(iat));
        })
    };
    s.verifier.verify(&with_iat(now + 5)).await.unwrap();
    assert_eq!(
        s.rejection(&with_iat(now + 6)).await,
        Rejection::IssuedInFuture
    );
}

/// The `jti` the replay cache keys on is a non-empty string of at most 512
/// bytes; anything else is malformed.
#[tokio::test]
async fn jti_is_a_non_empty_string_of_at_most_512_bytes() {
    let s = setup().await;
    for bad in [json!(""), json!("j".repeat(513)), json!(42)] {
        let t = s.token_with(|c| {
            c.insert("jti".into(), bad.clone());
        });
        assert_eq!(s.rejection(&t).await, Rejection::Malformed, "{bad}");
    }
    let t = s.token_with(|c| {
        c.insert("jti".into(), json!("j".repeat(512)));
    });
    s.verifier.verify(&t).await.unwrap();
}

/// A fractional NumericDate must be below 1e15 in magnitude (beyond, the
/// conversion to whole seconds is no longer exact): `exp` of 1e15 is
/// malformed, one just below verifies.
#[tokio::test]
async fn a_fractional_date_of_1e15_or_more_is_malformed() {
    let s = setup().await;
    let t = s.token_with(|c| {
        c.insert("exp".into(), json!(1e15));
    });
    assert_eq!(s.rejection(&t).await, Rejection::Malformed);
    let t = s.token_with(|c| {
        c.insert("exp".into(), json!(999_999_999_999_999.0));
    });
    s.verifier.verify(&t).await.unwrap();
}

/// The verifier's Debug names the cached key ids (for diagnostics), not
/// the keys.
#[tokio::test]
async fn the_verifier_debug_lists_the_cached_kids() {
    let s = setup().await;
    let (_, token) = s.fake.issue(&user(), "auth-1", true).unwrap();
    s.verifier.verify(&token).await.unwrap();
    let kid = s.key().kid().to_owned();
    let debug = format!("{:?}", s.verifier);
    assert!(debug.contains(&format!("kids: [{kid:?}]")), "{debug}");
}

/// The JWKS is fetched from the service's well-known path, one slash
/// between them whatever the endpoint ends with.
#[test]
fn the_jwks_url_is_the_well_known_path_of_the_endpoint() {
    for endpoint in ["https://api.example.test", "https://api.example.test/"] {
        let jwks = HttpJwks::new(HttpClient::new(HttpConfig::default()).unwrap(), endpoint);
        assert_eq!(jwks.url(), "https://api.example.test/.well-known/jwks.json");
    }
}

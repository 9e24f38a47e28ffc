//! JWKS documents: `parse_jwks`, then the parsed set served to an
//! `IdTokenVerifier` (turning every JWK into a decoding key) verifying a
//! fixed ES256 token with `kid` "k1". Invariant: no panic; the token only
//! verifies against a set holding the real key.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use passlock_core::TenancyId;
use passlock_core::clock::ManualClock;
use passlock_core::provider::jwt::{IdTokenVerifier, VerifierConfig, parse_jwks};
use passlock_core::secret::IdToken;
use passlock_test::keys::{StaticJwks, TestKey};
use passlock_fuzz::runtime;

const NOW_SECS: i64 = 1_800_000_000;

fn token() -> &'static (IdToken, String) {
    static TOKEN: OnceLock<(IdToken, String)> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let key = TestKey::ec_p256("k1").unwrap();
        let claims = serde_json::json!({
            "iss": "fuzz", "aud": "embedded", "sub": "u1", "jti": "j1",
            "iat": NOW_SECS, "exp": NOW_SECS + 300,
            "a:id": "a1", "pk:uv": true,
        });
        let jwk = serde_json::to_string(&key.jwk()).unwrap();
        (IdToken::new(key.sign(&claims).unwrap()), jwk)
    })
}

fuzz_target!(
    // Key generation and provider set-up run before fuzzing (outside the
    // 1 s per-input timeout).
    init: {
        token();
    },
    |data: &[u8]| {
    let Ok(set) = parse_jwks(data) else {
        return;
    };
    let (token, _) = token();
    let has_kid = set
        .keys
        .iter()
        .any(|k| k.common.key_id.as_deref() == Some("k1"));
    let verifier = IdTokenVerifier::new(
        VerifierConfig::embedded("fuzz", TenancyId::new("embedded").unwrap()),
        Arc::new(StaticJwks::new(set)),
        Arc::new(ManualClock::new(NOW_SECS * 1000)),
    )
    .danger_without_replay_cache();
    let result = runtime().block_on(verifier.verify(token));
    if result.is_ok() {
        // Only a key under kid "k1" can verify the token.
        assert!(has_kid);
    }
}
);

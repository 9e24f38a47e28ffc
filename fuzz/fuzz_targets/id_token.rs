//! id_token parsing and verification through `IdTokenVerifier` with a
//! static JWKS (an EC P-256 key "ec" and an RSA key "rsa").
//!
//! First byte, bit 0: 0 = the rest is the raw token (header, claims and
//! signature segments as the fuzzer makes them); 1 = the rest is
//! `header JSON \n claims JSON`, signed with the EC key, so mutated headers
//! and claims reach the claim checks behind a valid signature. Bit 1 picks
//! the verifier: embedded (ES256, iss "fuzz") or hosted (RS256/PS*, iss
//! "passlock.dev"). Invariant: no panic; a verified token came through the
//! signing path with the verifier's issuer and audience.

#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use passlock_core::TenancyId;
use passlock_core::clock::ManualClock;
use passlock_core::provider::jwt::{IdTokenVerifier, VerifierConfig};
use passlock_core::secret::IdToken;
use passlock_test::keys::{StaticJwks, TestKey, jwk_set};
use passlock_fuzz::runtime;

/// The fixed "now" of the verifiers (seconds); seeds use iat/exp around it.
const NOW_SECS: i64 = 1_800_000_000;

struct Setup {
    ec: TestKey,
    embedded: IdTokenVerifier,
    hosted: IdTokenVerifier,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let ec = TestKey::ec_p256("ec").unwrap();
        let rsa = TestKey::rsa("rsa").unwrap();
        let jwks = Arc::new(StaticJwks::new(jwk_set([&ec, &rsa])));
        let clock = Arc::new(ManualClock::new(NOW_SECS * 1000));
        let tenancy = TenancyId::new("tenancy").unwrap();
        // Replay protection is left out: a cache would grow with every
        // distinct jti over millions of runs. Its logic has unit tests.
        let embedded = IdTokenVerifier::new(
            VerifierConfig::embedded("fuzz", tenancy.clone()),
            jwks.clone(),
            clock.clone(),
        )
        .danger_without_replay_cache();
        let hosted = IdTokenVerifier::new(VerifierConfig::passlock(tenancy), jwks, clock)
            .danger_without_replay_cache();
        Setup {
            ec,
            embedded,
            hosted,
        }
    })
}

fuzz_target!(
    // Key generation and provider set-up run before fuzzing (outside the
    // 1 s per-input timeout).
    init: {
        setup();
    },
    |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let setup = setup();
    let signed = mode & 1 == 1;
    let raw = if signed {
        let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        match (
            serde_json::from_slice::<serde_json::Value>(header),
            serde_json::from_slice::<serde_json::Value>(claims),
        ) {
            (Ok(h), Ok(c)) => setup.ec.sign_raw(&h, &c).unwrap(),
            _ => format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(claims),
                "c2ln"
            ),
        }
    } else {
        String::from_utf8_lossy(rest).into_owned()
    };
    let (verifier, issuer) = if mode & 2 == 0 {
        (&setup.embedded, "fuzz")
    } else {
        (&setup.hosted, "passlock.dev")
    };
    let token = IdToken::new(raw.clone());
    if let Ok(principal) = runtime().block_on(verifier.verify(&token)) {
        assert!(signed, "a token verified without the key: {raw}");
        let payload = raw.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["iss"], issuer);
        assert_eq!(claims["sub"].as_str(), Some(principal.user_handle.as_str()));
    }
}
);

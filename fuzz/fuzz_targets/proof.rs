//! The `{code|id_token|nonce}` proof bodies the adapters' proof routes read.
//! Invariant: no panic; an accepted proof is non-empty, bounded and free of
//! control characters.

#![no_main]

use libfuzzer_sys::fuzz_target;
use passlock_core::Proof;
use passlock_core::proof::{MAX_CODE_LEN, MAX_ID_TOKEN_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = Proof::from_json(data) {
        let (value, max) = match &proof {
            Proof::Code(c) => (c.expose_secret(), MAX_CODE_LEN),
            Proof::IdToken(t) => (t.expose_secret(), MAX_ID_TOKEN_LEN),
            Proof::Nonce(n) => (n.expose_secret(), MAX_CODE_LEN),
            _ => return,
        };
        assert!(!value.is_empty() && value.len() <= max);
        assert!(!value.chars().any(char::is_control));
        assert!(!proof.kind().is_empty());
    }
});

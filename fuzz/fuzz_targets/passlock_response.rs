//! The Passlock client's response parsing: every wire struct it reads and its
//! error bodies, through `passlock_fuzz::hosted_response` (first byte: the
//! status, second byte: the content type, the rest: the body).

#![no_main]

use libfuzzer_sys::fuzz_target;
use passlock_core::provider::passlock::fuzz_decode_response;

fuzz_target!(|data: &[u8]| {
    passlock_fuzz::hosted_response(data, fuzz_decode_response);
});

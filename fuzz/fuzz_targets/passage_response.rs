//! The Passage Flex client's response parsing: the transaction, verify,
//! users and devices answers, and the `{"code"}` error bodies.
//! First byte: the status (even: 200, odd: one of the error statuses);
//! second byte: the content type; the rest: the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use passlock_core::provider::passage::fuzz_decode_response;

const ERRORS: [u16; 9] = [400, 401, 403, 404, 409, 413, 429, 500, 503];
const TYPES: [Option<&str>; 4] = [
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/html"),
    None,
];

fuzz_target!(|data: &[u8]| {
    let [s, t, body @ ..] = data else {
        return;
    };
    let status = if s % 2 == 0 {
        200
    } else {
        ERRORS[usize::from(s / 2) % ERRORS.len()]
    };
    let content_type = TYPES[usize::from(*t) % TYPES.len()];
    let accepted = fuzz_decode_response(status, content_type, body);
    if status != 200 || content_type.is_none_or(|t| t == "text/html") {
        assert_eq!(accepted, 0);
    }
});

//! Benchmark helper for `scripts/bench-http`; not part of the library.
//!
//! Builds the passlock app with the embedded provider on memory stores,
//! `GET /guarded` behind `PasskeyUser` and `GET /bare` answering the same
//! body with no guard (both behind the session layer): on axum (default;
//! tower-sessions memory store) or, with `--actix`, on actix-web
//! (`PasslockSessions` over a minimal in-memory actix-session store, 2
//! workers). It signs a user up in-process with the software authenticator
//! (a real ceremony through the app's routes), then serves on
//! `127.0.0.1:0` and prints one line: `PORT COOKIE SESSION_RECORD_BYTES
//! SESSION_BYTES` (the passlock record's JSON, and the whole session as
//! the store holds it, as JSON). `GET /shutdown` stops it (so profilers see
//! a clean exit).

#![forbid(unsafe_code)]

mod actix_mode;
mod axum_mode;
mod support;

fn main() -> Result<(), support::BoxError> {
    match std::env::args().nth(1).as_deref() {
        None | Some("--axum") => axum_mode::run(),
        Some("--actix") => actix_mode::run(),
        Some(other) => {
            Err(format!("unknown argument {other:?}; usage: bench-server [--axum|--actix]").into())
        }
    }
}

//! Benchmark helper for `scripts/bench-http`; not part of the library.
//!
//! Builds the passlock app with the embedded provider on memory stores and
//! four routes answering the same body, all over one session store:
//! `GET /guarded` behind `PasskeyUser`, `GET /session` reading the same
//! session's passlock value with no guard (the limit of a guard), `GET
//! /bare` touching no session, and `GET /peer` behind the peer library's
//! guard: on axum (default; tower-sessions memory store; the peer is
//! axum-login's `login_required!`) or, with `--actix`, on actix-web
//! (`PasslockSessions` over a minimal in-memory actix-session store, 2
//! workers; the peer is actix-identity's `Identity`). It signs a user up
//! in-process with the software authenticator (a real ceremony through the
//! app's routes), signs the peer's user in in the same session (`POST
//! /peer/login`), then serves on
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

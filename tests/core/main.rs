//! Core-level integration tests: hosted client, id_token verification,
//! stores, embedded provider. One binary to save link time.

mod client_types;
mod embedded;
mod flow;
mod hosted;
mod jwt;
mod passage;
mod redaction;
mod stores;
mod throttle;

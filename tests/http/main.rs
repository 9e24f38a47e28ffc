//! HTTP scenario tests through the adapters: every row of the contract,
//! written once in `scenarios` and run against each adapter.

// Test code: panicking on a broken expectation is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod actix;
mod axum;
mod hardening;
mod harness;
mod holes;
mod hosted;
mod lifecycle;
mod mfa;
mod named;
mod passage;
mod recovery;
mod redis;
mod revocation;
mod scenarios;
mod setup;
mod throttle_real;

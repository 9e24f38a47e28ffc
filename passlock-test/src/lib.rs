#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
//! # passlock-test
//!
//! The test kit of passlock, for apps that add passkey sign-in with
//! `passlock-core` and `passlock-axum` / `passlock-actix`: add it as a
//! dev-dependency (`cargo add passlock-test --dev`).
//!
//! * [`authenticator::SoftAuthenticator`]: a software passkey authenticator
//!   that completes real WebAuthn ceremonies against the embedded provider,
//!   without a browser.
//! * [`fake_passlock::FakePasslock`] and [`fake_passage::FakePassage`]:
//!   in-process fakes of the hosted Passlock v2 and Passage Passkey Flex
//!   REST APIs, following their documented wire formats, with fault
//!   injection and request counters.
//! * [`keys`]: RSA test keys, signed id_tokens and a static JWKS.
//! * [`conformance`]: the suites any store implementation (your own
//!   `AuthenticatorStore` over your user table, a credential or ceremony
//!   store, a replay cache, a revocation store) should pass.
//!
//! Nothing here belongs in a production build: the fakes trust what they
//! are told and the keys are generated for tests.
//!
//! ## Example
//!
//! A software authenticator for a test origin, then the
//! shipped memory store through the conformance suite:
//!
//! ```
//! use std::sync::Arc;
//! use passlock_core::store::MemoryAuthenticatorStore;
//! use passlock_test::{authenticator::SoftAuthenticator, conformance};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut device = SoftAuthenticator::new("http://localhost:3000");
//! assert!(device.credential_ids().is_empty());
//!
//! conformance::authenticator_store(Arc::new(MemoryAuthenticatorStore::<String>::new())).await?;
//! # Ok(())
//! # }
//! ```

pub mod authenticator;
pub mod conformance;
pub mod fake_passage;
pub mod fake_passlock;
pub mod keys;
pub mod recovery;
mod server;

//! The test kit (feature `testing`): fakes of the hosted services that follow
//! their documented wire formats, a software authenticator that completes
//! real WebAuthn ceremonies, test keys, and conformance suites any store
//! implementation can run.

pub mod authenticator;
pub mod conformance;
pub mod fake_passage;
pub mod fake_passlock;
pub mod keys;
pub mod recovery;
pub(crate) mod server;

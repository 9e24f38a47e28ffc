#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
//! # passlock-core
//!
//! The framework-free core of passlock: passkey sign-in for Rust web apps.
//! Identifiers and secrets as types, the [`PasskeyProvider`](provider::PasskeyProvider)
//! trait with its providers (embedded on webauthn-rs, hosted Passlock v2,
//! Passage Passkey Flex),
//! the [`AuthenticatorStore`] trait with memory,
//! SQLite and PostgreSQL stores, the session state and the flows that the
//! `passlock-axum` and `passlock-actix` adapters mount as routes.
//!
//! ## Quick start
//!
//! In production, keep the passkeys and the rest of passlock's state in your
//! database with one call: [`setup::embedded_sqlite`] or
//! `setup::embedded_postgres` (module [`setup`]). The in-memory setup below
//! forgets every passkey at restart: it is for tests.
//!
//! ```
//! use std::sync::Arc;
//! use passlock_core::{Passlock, store::MemoryAuthenticatorStore};
//! use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = EmbeddedProvider::in_memory(
//!     EmbeddedConfig::new("localhost", "My app", ["http://localhost:3000"]),
//! )
//! .await?;
//! let passlock: Passlock<i64> =
//!     Passlock::builder(Arc::new(provider), Arc::new(MemoryAuthenticatorStore::new())).build()?;
//! assert_eq!(passlock.prefix(), "/passkey");
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `embedded` | yes | the embedded passkey server on webauthn-rs |
//! | `hosted` | yes | the hosted Passlock REST client (reqwest, rustls) |
//! | `passage` | no | the Passage Passkey Flex REST client (reqwest, rustls) |
//! | `sqlite` | yes | SQLite stores |
//! | `postgres` | no | PostgreSQL stores |
//! | `redis` | no | [`RedisThrottle`](throttle::RedisThrottle), [`RedisReplayCache`](store::RedisReplayCache) and [`RedisRevocationStore`](store::RedisRevocationStore): failure counters, the id_token replay cache and logout markers shared by app instances |
//!
//! The test kit (fake hosted services, a software authenticator, conformance
//! suites for stores) is the separate crate `passlock-test`: add it as a
//! dev-dependency.
//!
//! ## Security
//!
//! Secrets are types whose `Debug` redacts them; errors never carry a secret
//! or a cause into a response body; every code, token and ceremony is single
//! use and taken out of its store before it is checked; session ids cycle on
//! every privilege change. jsonwebtoken is built with exactly one crypto
//! backend (`aws_lc_rs`): do not enable its `rust_crypto` feature in the same
//! build, or every verification fails at run time. Failed proofs are
//! throttled per client address and per subject ([`throttle`]). Account
//! recovery by email code ([`recovery`]) is off by default: it makes the
//! user's mailbox a way into the account. The threat model and every
//! default are in `SECURITY.md` at the repository root.
//!
//! ## Dangerous options
//!
//! * [`PasslockBuilder::danger_disable_throttling`]: no limit on failed proofs.
//!
//! ## Module layering
//!
//! Layers, lowest first; a module uses only modules of its own or lower
//! layers (checked by grepping `use crate::` per module):
//!
//! 1. `clock`, `secret`, `error`: no other module.
//! 2. `id` (secret), `origin` (error), `proof` (secret), `principal` (clock,
//!    id), `http` (clock, error, secret), `aaguid` (clock: authenticator
//!    names and the passkey naming rule).
//! 3. `store` (every storage trait with its memory, SQL and Redis
//!    implementations: authenticator links, the embedded provider's
//!    credentials and ceremonies, the id_token replay cache, revocation
//!    markers, recovery challenges), `throttle` (store's Redis connection),
//!    `audit`: layers 1-2.
//! 4. `revocation` (store: session families and marker keys), `recovery`
//!    (store, throttle: addresses, mailer, options, the recovery grant;
//!    its route flows `recovery::flow` belong to layer 8).
//! 5. `state` (revocation's session family, recovery's grant), `ticket`
//!    (state), `wire` (state): the session record, the sign-up ticket, the
//!    HTTP bodies.
//! 6. `provider` and its submodules (`v2`, `rest`, `jwt`, `passlock`,
//!    `passage`, `embedded`): layers 1-5.
//! 7. `config` (the [`Passlock`] and its builder): layers 1-6.
//! 8. `flow` (one function per route), `recovery::flow` and `setup`
//!    (production wiring): layers 1-7.
//! 9. [`adapter`]: what the web-framework adapters use, re-exported from
//!    `flow`, `wire`, `config`, `ticket`, `throttle` and the embedded
//!    provider.
//!
//! There is no exception: `store` imports no module above layer 2 (the
//! providers, `revocation` and `recovery` keep their old store paths as
//! re-exports of `store`'s items).

pub mod aaguid;
pub mod adapter;
pub mod audit;
pub mod clock;
mod config;
pub mod error;
mod flow;
pub mod id;
pub mod origin;
pub mod principal;
pub mod proof;
pub mod provider;
pub mod recovery;
pub mod revocation;
pub mod secret;
pub mod state;
pub mod store;
pub mod throttle;
mod ticket;
mod wire;

#[cfg(any(feature = "hosted", feature = "passage"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "hosted", feature = "passage"))))]
pub mod http;

#[cfg(all(feature = "embedded", any(feature = "sqlite", feature = "postgres")))]
#[cfg_attr(
    docsrs,
    doc(cfg(all(feature = "embedded", any(feature = "sqlite", feature = "postgres"))))
)]
pub mod setup;

/// The `async_trait` attribute the store and hook traits are written with:
/// put `#[passlock_core::async_trait]` on your `impl SignUpHook` (or
/// `AuthenticatorStore`) without a dependency of your own.
pub use async_trait::async_trait;

/// The sqlx this crate's stores are built on (0.8): open the pool you hand
/// to [`setup`] and the `store::{sqlite, postgres}` stores with it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sqlx;

pub use config::{Passlock, PasslockBuilder, Policy, SignUpError, SignUpHook};
pub use error::{
    ConfigError, FlowError, ProviderError, Rejection, Status, StoreError, UpstreamError,
};
pub use flow::FirstFactor;
pub use id::{AuthenticatorId, PasskeyId, TenancyId, UserHandle};
pub use principal::Principal;
pub use proof::Proof;
pub use provider::v2::ExtendedPrincipal;
pub use recovery::{Recovery, RecoveryGrant};
#[allow(deprecated)]
pub use state::Method;
pub use state::{AuthMethod, AuthState, SessionChange, SessionRecord};
pub use store::{AuthenticatorStore, UserId};
pub use ticket::SealingKey;

/// The dependency-free browser client both adapters serve at `{prefix}/client.js`.
pub const CLIENT_JS: &str = include_str!("../assets/client.js");

/// TypeScript declarations of [`CLIENT_JS`], served at `{prefix}/client.d.ts`.
pub const CLIENT_DTS: &str = include_str!("../assets/client.d.ts");

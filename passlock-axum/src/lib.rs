#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
//! # passlock-axum
//!
//! Passkey sign-in for [axum](https://docs.rs/axum): the routes of the
//! passlock HTTP contract, extractors ([`PasskeyUser`], [`MaybePasskeyUser`],
//! `Option<PasskeyUser<U>>`, [`StepUp`]), a route layer for whole
//! sub-routers ([`require_passkey`]) and JSON rejections
//! ([`PasslockRejection`]). Every decision is made in
//! [`passlock_core`] (re-exported); this crate only translates.
//!
//! ## Quick start
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Router, routing::{get, post}};
//! use passlock_axum::{PasskeyUser, StepUp, passlock_core};
//! use passlock_core::{Passlock, store::MemoryAuthenticatorStore};
//! use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
//! use tower_sessions::{MemoryStore, SessionManagerLayer, cookie::SameSite};
//!
//! async fn account(user: PasskeyUser<i64>) -> String {
//!     format!("hello {}", user.user_id)
//! }
//!
//! async fn delete(_: StepUp<300>, user: PasskeyUser<i64>) -> &'static str {
//!     "deleted"
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = EmbeddedProvider::in_memory(
//!     EmbeddedConfig::new("localhost", "My app", ["http://localhost:3000"]),
//! ).await?;
//! let passlock: Passlock<i64> =
//!     Passlock::builder(Arc::new(provider), Arc::new(MemoryAuthenticatorStore::new())).build()?;
//! let sessions = SessionManagerLayer::new(MemoryStore::default())
//!     .with_secure(passlock.secure_cookies())
//!     .with_http_only(true)
//!     .with_same_site(SameSite::Lax);
//! let app = Router::new()
//!     .route("/account", get(account))
//!     .route("/account/delete", post(delete))
//!     .merge(passlock_axum::router(passlock.clone())) // at passlock.prefix(), "/passkey"
//!     .with_state(passlock)
//!     .layer(sessions);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // Connect info gives the routes the client address that failed proofs
//! // and ceremony starts are throttled by.
//! axum::serve(
//!     listener,
//!     app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
//! )
//! .await?;
//! # Ok(()) }
//! ```
//!
//! ## Client addresses and throttling
//!
//! The routes throttle per client address, read from
//! [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo): serve with
//! `into_make_service_with_connect_info::<SocketAddr>()` as above. Behind a
//! reverse proxy, configure
//! [`trusted_proxy_header`](passlock_core::PasslockBuilder::trusted_proxy_header)
//! (and [`trusted_proxy_hops`](passlock_core::PasslockBuilder::trusted_proxy_hops)
//! for more than one proxy). Without either, every request counts in one
//! shared bucket (one client's failures throttle all) and passlock logs an
//! error once.
//!
//! The extractors find the [`Passlock`](passlock_core::Passlock) in the
//! router state through [`FromRef`](axum::extract::FromRef) (it decides
//! whether a session was logged out or outlived the absolute session
//! lifetime); [`require_passkey`] takes it as an argument.
//!
//! ## Sessions and cookies
//!
//! Sessions are server-side, in a tower-sessions store (memory, SQLite,
//! PostgreSQL, Redis). Configure the `SessionManagerLayer` with
//! `with_secure(passlock.secure_cookies())` (off only when every allowed
//! origin is `http://localhost`), `with_http_only(true)` and
//! `with_same_site(SameSite::Lax)` or stricter. The passlock record lives
//! under the key `"passlock"`. Login, sign-up and step-up cycle the session
//! id; logout revokes the sign-in (a marker in the
//! [`Passlock`](passlock_core::Passlock)'s revocation store, see
//! [`passlock_core::revocation`]) and then deletes the session from the
//! store. Every load of a session checks the marker and the absolute session
//! lifetime, so a logged-out session written back by a request in flight, or
//! a copy of its cookie, reads as signed out. Changes are saved before
//! the response is written, so a failing session store is a JSON `503` and
//! nothing is issued. A missing session layer is a JSON `500`
//! (`misconfigured`), never a panic.
//!
//! ## Request hygiene
//!
//! On every route under the prefix: a `POST` or `DELETE` needs an `Origin`
//! among the allowed origins (`403 forbidden_origin`, login CSRF); bodies
//! must be `application/json` (`415`) and at most 16 KiB (`413`); malformed
//! JSON is `400`; unknown paths and methods are JSON `404`/`405`.
//! `POST /logout`, `/registration/authorize` and `/authentication/authorize`
//! also accept an empty body without a `Content-Type`; a non-empty body with
//! another type is still `415`.
//!
//! ## Routes (under the prefix)
//!
//! `POST /registration/authorize`, `POST /authentication/authorize`,
//! `POST /register`, `POST /login`, `POST /step-up`, `POST /logout`,
//! `GET /session`, `GET /passkeys`, `DELETE /passkeys/{authenticator_id}`,
//! `GET /client.js`; with the embedded provider also
//! `POST /v2/{tenancyId}/passkey/{registration,authentication}/{options,verification}`
//! and `GET /.well-known/jwks.json`.

pub use passlock_core;
/// The tower-sessions this crate is built on (0.14). Use this re-export
/// (`passlock_axum::tower_sessions::SessionManagerLayer`) rather than a
/// `tower-sessions` dependency of your own: another version (`cargo add
/// tower-sessions` picks the newest) has a `Session` type these extractors
/// cannot see, and every route answers `500 misconfigured`.
pub use tower_sessions;

mod extract;
mod layer;
mod rejection;
mod routes;
mod session;

pub use extract::{FirstFactorUser, MaybePasskeyUser, PasskeyUser, SignedInUser, StepUp};
pub use layer::{RequirePasskey, RequirePasskeyService, require_passkey};
pub use rejection::PasslockRejection;
pub use routes::{router, routes, well_known_router};
pub use session::PasslockSession;

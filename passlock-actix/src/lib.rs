#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
//! # passlock-actix
//!
//! Passkey sign-in for [actix-web](https://docs.rs/actix-web): the routes of
//! the passlock HTTP contract as a [`Scope`](actix_web::Scope) ([`scope`]),
//! extractors ([`PasskeyUser`], [`MaybePasskeyUser`], [`StepUp`]), a
//! middleware for whole scopes ([`require_passkey`]), the session
//! middleware ([`PasslockSessions`]), a SQL session store
//! ([`SqlSessionStore`]) and JSON errors ([`PasslockError`]). Every decision
//! is made in [`passlock_core`] (re-exported); this crate only translates.
//!
//! ## Quick start
//!
//! ```no_run
//! use std::sync::Arc;
//! use actix_session::storage::RedisSessionStore;
//! use actix_web::{App, HttpServer, cookie::Key, web};
//! use passlock_actix::{PasskeyUser, PasslockSessions, StepUp, passlock_core};
//! use passlock_core::{Passlock, store::MemoryAuthenticatorStore};
//! use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
//!
//! async fn account(user: PasskeyUser<i64>) -> String {
//!     format!("hello {}", user.user_id)
//! }
//!
//! async fn delete(_: StepUp<300>, user: PasskeyUser<i64>) -> &'static str {
//!     "deleted"
//! }
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let provider = EmbeddedProvider::in_memory(
//!         EmbeddedConfig::new("localhost", "My app", ["http://localhost:3001"]),
//!     ).await?;
//!     let passlock: Passlock<i64> =
//!         Passlock::builder(Arc::new(provider), Arc::new(MemoryAuthenticatorStore::new())).build()?;
//!     let sessions = RedisSessionStore::new("redis://127.0.0.1:6379").await?;
//!     let key = Key::generate(); // load a fixed 64-byte key in production
//!     HttpServer::new(move || {
//!         App::new()
//!             .app_data(web::Data::new(passlock.clone()))
//!             .route("/account", web::get().to(account))
//!             .route("/account/delete", web::post().to(delete))
//!             .service(passlock_actix::scope(passlock.clone())) // at passlock.prefix(), "/passkey"
//!             .wrap(PasslockSessions::new(sessions.clone(), key.clone(), &passlock))
//!     })
//!     .bind(("127.0.0.1", 3001))?
//!     .run()
//!     .await?;
//!     Ok(())
//! }
//! ```
//!
//! [`StepUp`] finds the [`Passlock`](passlock_core::Passlock) as
//! `web::Data<Passlock<U>>`; a missing one is a JSON `500` (`misconfigured`),
//! never a panic.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sql-store` | yes | [`SqlSessionStore`], actix-session sessions in SQLite or PostgreSQL (sqlx) |
//!
//! ## Sessions and cookies
//!
//! Sessions are server-side: actix-session's
//! [`RedisSessionStore`](actix_session::storage::RedisSessionStore) or
//! [`SqlSessionStore`]. **Do not use actix-session's cookie-only store**: it
//! keeps the session in the browser, so logout cannot revoke it and a copied
//! cookie stays valid until it expires. Wrap the app in [`PasslockSessions`]
//! (actix-session's `SessionMiddleware` with `HttpOnly`, `SameSite=Lax` and
//! `Secure` unless every allowed origin is `http://localhost`). The passlock
//! record lives under the key `"passlock"`. Login, sign-up and step-up give
//! the session a new id; logout revokes the sign-in (a marker in the
//! [`Passlock`](passlock_core::Passlock)'s revocation store, see
//! [`passlock_core::revocation`]) and then deletes the session from the
//! store. Every load of a session checks the marker and the absolute session
//! lifetime, so a logged-out session written back by a request in flight
//! (`SqlSessionStore` and Redis insert a fresh key when the old one is gone)
//! reads as signed out. The extractors and guards therefore need the app's
//! `web::Data<Passlock<U>>`.
//!
//! actix-session writes the store after the handler, when the response goes
//! out. [`PasslockSessions`] turns a store failure at that point (or when
//! loading) into a JSON `503 session_unavailable` without a cookie, instead
//! of actix-session's empty `500`: nothing is issued. Without it the
//! extractors answer a JSON `500` (`misconfigured`).
//!
//! ## Request hygiene
//!
//! On every route under the prefix: a `POST` or `DELETE` needs an `Origin`
//! among the allowed origins (`403 forbidden_origin`, login CSRF); bodies
//! are capped at 16 KiB (`413`) and must be `application/json` (`415`);
//! malformed JSON is `400`; unknown paths and methods are JSON `404`/`405`.
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
//!
//! ## Security
//!
//! Errors render only the core's code and one safe sentence; causes (store
//! messages, provider answers) go to the logs, never to a body.

/// The actix-session this crate is built on (0.11): the stores
/// (`passlock_actix::actix_session::storage::RedisSessionStore`) and the
/// `SessionMiddleware` that [`PasslockSessions`] wraps, in the version its
/// extractors read.
pub use actix_session;
pub use passlock_core;

mod error;
mod extract;
mod guard;
mod scope;
mod session;
#[cfg(all(feature = "sql-store", any(feature = "sqlite", feature = "postgres")))]
mod sql_store;

pub use error::PasslockError;
pub use extract::{FirstFactorUser, MaybePasskeyUser, PasskeyUser, SignedInUser, StepUp};
pub use guard::{LoginPage, require_passkey, require_passkey_or_redirect};
pub use scope::{scope, well_known};
pub use session::{PasslockSession, PasslockSessions, PasslockSessionsService};
#[cfg(all(feature = "sql-store", any(feature = "sqlite", feature = "postgres")))]
#[cfg_attr(
    docsrs,
    doc(cfg(all(feature = "sql-store", any(feature = "sqlite", feature = "postgres"))))
)]
pub use sql_store::SqlSessionStore;

//! The [`AuthenticatorStore`] trait: which user a passkey belongs to.
//!
//! The reference schema is the seeds' table:
//! `authenticator(authenticator_id PRIMARY KEY, user_id REFERENCES user(id))`,
//! plus `created_at` and `last_used_at`.

use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::UnixMillis;
use crate::error::StoreError;
use crate::id::AuthenticatorId;

mod memory;
pub use memory::MemoryAuthenticatorStore;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// What an app's user id must be: `i64`, `String`, `Uuid`, a newtype...
pub trait UserId:
    Clone + Debug + Display + FromStr + Eq + Hash + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<T> UserId for T where
    T: Clone
        + Debug
        + Display
        + FromStr
        + Eq
        + Hash
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// A passkey linked to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkedAuthenticator {
    /// The passkey.
    pub authenticator_id: AuthenticatorId,
    /// When it was linked (epoch ms).
    pub created_at: UnixMillis,
    /// When it was last used (epoch ms).
    pub last_used_at: Option<UnixMillis>,
}

impl LinkedAuthenticator {
    /// A linked authenticator.
    pub fn new(
        authenticator_id: AuthenticatorId,
        created_at: UnixMillis,
        last_used_at: Option<UnixMillis>,
    ) -> Self {
        Self {
            authenticator_id,
            created_at,
            last_used_at,
        }
    }
}

/// Maps authenticators (passkeys) to the app's users.
///
/// Implement it on your own user table, or use [`MemoryAuthenticatorStore`],
/// the SQLite or the PostgreSQL store. Every implementation must pass the
/// conformance suite in the test kit (`passlock_core::testing::conformance`).
///
/// Contract:
/// - [`link`](Self::link) of an authenticator already linked to *another*
///   user fails with [`StoreError::Conflict`] and changes nothing; linking
///   the same pair again is a no-op. Of concurrent links of one
///   authenticator to different users exactly one wins.
/// - [`unlink`](Self::unlink) removes the link only if it belongs to that
///   user, and says whether it did.
#[async_trait::async_trait]
pub trait AuthenticatorStore<U: UserId>: Send + Sync + Debug + 'static {
    /// Links `authenticator` to `user` at time `now`.
    async fn link(
        &self,
        authenticator: &AuthenticatorId,
        user: &U,
        now: UnixMillis,
    ) -> Result<(), StoreError>;

    /// The user `authenticator` is linked to.
    async fn user_of(&self, authenticator: &AuthenticatorId) -> Result<Option<U>, StoreError>;

    /// Every authenticator linked to `user`, oldest first.
    async fn authenticators_of(&self, user: &U) -> Result<Vec<LinkedAuthenticator>, StoreError>;

    /// Removes the link of `authenticator` to `user`; `false` when there was none.
    async fn unlink(&self, authenticator: &AuthenticatorId, user: &U) -> Result<bool, StoreError>;

    /// Records a use of `authenticator` at `now` (`last_used_at`).
    async fn touch(
        &self,
        authenticator: &AuthenticatorId,
        now: UnixMillis,
    ) -> Result<(), StoreError>;
}

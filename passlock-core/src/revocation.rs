//! Revocation markers: what a logout leaves behind so that a session it
//! ended cannot come back.
//!
//! Session stores upsert on save (tower-sessions' memory and SQL stores,
//! actix-session's stores), so a request that loaded a session before a
//! logout deleted it can write it back afterwards, under its old id or,
//! when it cycles the id, under a new one. Every sign-in therefore starts a
//! [`SessionFamily`] that every later state of that sign-in keeps (step-up,
//! registration, id cycles), and a logout writes a marker for the family
//! into a [`RevocationStore`] before it deletes the session. The adapters
//! check the marker each time they load a session
//! ([`flow::validate_session`](crate::flow::validate_session)), so a record
//! written back by a request in flight reads as signed out, whatever the
//! session store did.
//!
//! The same markers end sessions for other reasons, each under its own
//! key, compared with the session's start
//! ([`SessionRecord::started_at`](crate::SessionRecord::started_at)):
//! a session is revoked when the latest marker among its family's
//! ([`SessionFamily::revocation_key`]), its passkey's (`passkey_key`,
//! written when the passkey is removed) and its user's (`user_key`,
//! written by `POST {prefix}/logout/everywhere` and
//! [`Passlock::end_sessions_of`](crate::Passlock::end_sessions_of)) is at
//! or after that start. All three are read in one
//! [`latest`](RevocationStore::latest) call: one round trip per load.
//!
//! Markers are kept for [`Policy::session_lifetime_secs`](crate::Policy::session_lifetime_secs)
//! after the logout: no session of the family lives longer than that.
//!
//! [`MemoryRevocationStore`] (the default) is per process: several app
//! instances must share one store, on SQL (`SqliteRevocationStore`,
//! `PgRevocationStore`, table `passlock_revocation`) or Redis
//! ([`RedisRevocationStore`], feature `redis`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id of one sign-in (128 random bits, base64url): every session state
/// that follows from it (step-up, new passkey, id cycles) carries it, and a
/// logout revokes it as a whole. Not a secret: knowing it grants nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionFamily(String);

impl SessionFamily {
    /// A new random family.
    pub fn random() -> Self {
        Self(crate::secret::random_token(16))
    }

    /// The family as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of its revocation marker (`family:{id}`).
    pub fn revocation_key(&self) -> String {
        format!("family:{}", self.0)
    }
}

impl fmt::Display for SessionFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of the marker that ends every session of `user` started at or
/// before it (`user:{id}`).
pub(crate) fn user_key(user: &impl fmt::Display) -> String {
    format!("user:{user}")
}

/// The key of the marker that ends every session standing on the passkey
/// `authenticator` started at or before it (`passkey:{id}`).
pub(crate) fn passkey_key(authenticator: &crate::id::AuthenticatorId) -> String {
    format!("passkey:{}", authenticator.as_str())
}

// The store moved to `crate::store`; the old paths keep working.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[doc(no_inline)]
pub use crate::store::RedisRevocationStore;
#[doc(no_inline)]
pub use crate::store::{MEMORY_MAX_MARKERS, MemoryRevocationStore, RevocationStore};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_differ() {
        assert_ne!(SessionFamily::random(), SessionFamily::random());
        assert!(
            SessionFamily::random()
                .revocation_key()
                .starts_with("family:")
        );
    }
}

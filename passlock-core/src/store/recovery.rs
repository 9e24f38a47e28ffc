//! Recovery challenge storage: [`RecoveryChallenges`] and the in-process
//! [`MemoryRecoveryChallenges`]; the SQL stores are
//! `SqliteRecoveryChallenges` and `PgRecoveryChallenges`. The recovery
//! flow that uses it is [`crate::recovery`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use crate::clock::UnixMillis;
use crate::error::StoreError;
use crate::id::ChallengeId;

/// A challenge to store: everything but the code itself. Its `Debug`
/// leaves the code's hash out.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewChallenge {
    /// Its id (random, handed to the browser).
    pub id: ChallengeId,
    /// The keyed hash of the address it was requested for.
    pub address: String,
    /// The user, as text (`U`'s `Display`); `None` for an address without
    /// an account (a challenge no code opens).
    pub user: Option<String>,
    /// The keyed hash of the code (hex).
    pub code_hash: String,
    /// When it was created (epoch ms).
    pub created_at: UnixMillis,
    /// When its code expires (epoch ms).
    pub expires_at: UnixMillis,
    /// Attempts allowed.
    pub max_attempts: u32,
}

impl NewChallenge {
    /// A challenge (see the fields).
    pub fn new(
        id: ChallengeId,
        address: impl Into<String>,
        user: Option<String>,
        code_hash: impl Into<String>,
        created_at: UnixMillis,
        expires_at: UnixMillis,
        max_attempts: u32,
    ) -> Self {
        Self {
            id,
            address: address.into(),
            user,
            code_hash: code_hash.into(),
            created_at,
            expires_at,
            max_attempts,
        }
    }
}

/// What one attempt at a challenge found. Its `Debug` leaves the code's
/// hash out.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attempt {
    /// The attempt was counted; compare the code against `code_hash`.
    Open {
        /// The stored keyed hash of the code.
        code_hash: String,
        /// The user, as text (`None`: an address without an account).
        user: Option<String>,
        /// The keyed hash of the address.
        address: String,
    },
    /// No such challenge (never created, deleted or swept).
    Unknown,
    /// Its code expired.
    Expired,
    /// Its code was already used.
    Used,
    /// Every attempt was spent.
    Exhausted,
}

impl fmt::Debug for NewChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewChallenge")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("code_hash", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { user, .. } => f
                .debug_struct("Open")
                .field("code_hash", &"[redacted]")
                .field("user", user)
                .finish_non_exhaustive(),
            Self::Unknown => f.write_str("Unknown"),
            Self::Expired => f.write_str("Expired"),
            Self::Used => f.write_str("Used"),
            Self::Exhausted => f.write_str("Exhausted"),
        }
    }
}

/// Where recovery challenges live; the same contract on every backend.
///
/// Each method is one atomic step, so that concurrent requests on several
/// instances cannot spend one attempt or one code twice. No method has a
/// default: each carries a safety invariant. Every backend must pass
/// `passlock_test::conformance::recovery_challenges` (crate passlock-test).
///
/// A complete in-memory implementation is [`MemoryRecoveryChallenges`].
#[async_trait::async_trait]
pub trait RecoveryChallenges: Send + Sync + fmt::Debug + 'static {
    /// Stores a new challenge. An id that exists is a
    /// [`StoreError::Conflict`] (ids are random; it does not happen).
    async fn create(&self, challenge: &NewChallenge) -> Result<(), StoreError>;

    /// Counts one attempt at `id`, atomically: when the challenge is
    /// unused, unexpired at `now` and has attempts left, one more attempt
    /// is recorded and [`Attempt::Open`] returned; otherwise nothing
    /// changes and the reason is returned (checked in the order unknown,
    /// used, exhausted, expired).
    async fn attempt(&self, id: &ChallengeId, now: UnixMillis) -> Result<Attempt, StoreError>;

    /// Marks the challenge used, once: `true` for the one call that found
    /// it unused and unexpired at `now`, `false` for every other. A used
    /// challenge is kept until `keep_until` (the end of the recovery
    /// session) for [`take_used`](Self::take_used).
    async fn mark_used(
        &self,
        id: &ChallengeId,
        now: UnixMillis,
        keep_until: UnixMillis,
    ) -> Result<bool, StoreError>;

    /// Takes a used challenge out of the store, once: `true` for the one
    /// call that found it used and kept at `now` (the recovery session
    /// enrolls its passkey), `false` otherwise.
    async fn take_used(&self, id: &ChallengeId, now: UnixMillis) -> Result<bool, StoreError>;

    /// Deletes a challenge whatever its state; `true` when it existed.
    async fn delete(&self, id: &ChallengeId) -> Result<bool, StoreError>;
}

#[derive(Debug, Clone)]
struct Row {
    challenge: NewChallenge,
    attempts: u32,
    used: bool,
}

/// [`RecoveryChallenges`] in this process (the default): fine for one
/// instance; several instances need a shared store.
pub struct MemoryRecoveryChallenges {
    clock: crate::clock::SharedClock,
    rows: Mutex<HashMap<String, Row>>,
}

impl fmt::Debug for MemoryRecoveryChallenges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRecoveryChallenges")
            .finish_non_exhaustive()
    }
}

impl MemoryRecoveryChallenges {
    /// An empty store; expired challenges are swept on `create` by `clock`.
    pub fn new(clock: crate::clock::SharedClock) -> Self {
        Self {
            clock,
            rows: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Row>>, StoreError> {
        self.rows
            .lock()
            .map_err(|_| StoreError::backend("recovery challenges poisoned"))
    }
}

#[async_trait::async_trait]
impl RecoveryChallenges for MemoryRecoveryChallenges {
    async fn create(&self, challenge: &NewChallenge) -> Result<(), StoreError> {
        let now = self.clock.now_millis();
        let mut rows = self.lock()?;
        rows.retain(|_, r| r.challenge.expires_at > now);
        if rows.contains_key(challenge.id.as_str()) {
            return Err(StoreError::Conflict);
        }
        rows.insert(
            challenge.id.as_str().to_owned(),
            Row {
                challenge: challenge.clone(),
                attempts: 0,
                used: false,
            },
        );
        Ok(())
    }

    async fn attempt(&self, id: &ChallengeId, now: UnixMillis) -> Result<Attempt, StoreError> {
        let mut rows = self.lock()?;
        let Some(row) = rows.get_mut(id.as_str()) else {
            return Ok(Attempt::Unknown);
        };
        if row.used {
            return Ok(Attempt::Used);
        }
        if row.attempts >= row.challenge.max_attempts {
            return Ok(Attempt::Exhausted);
        }
        if row.challenge.expires_at <= now {
            return Ok(Attempt::Expired);
        }
        row.attempts += 1;
        Ok(Attempt::Open {
            code_hash: row.challenge.code_hash.clone(),
            user: row.challenge.user.clone(),
            address: row.challenge.address.clone(),
        })
    }

    async fn mark_used(
        &self,
        id: &ChallengeId,
        now: UnixMillis,
        keep_until: UnixMillis,
    ) -> Result<bool, StoreError> {
        let mut rows = self.lock()?;
        match rows.get_mut(id.as_str()) {
            Some(row) if !row.used && row.challenge.expires_at > now => {
                row.used = true;
                row.challenge.expires_at = keep_until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn take_used(&self, id: &ChallengeId, now: UnixMillis) -> Result<bool, StoreError> {
        let mut rows = self.lock()?;
        match rows.get(id.as_str()) {
            Some(row) if row.used && row.challenge.expires_at > now => {
                rows.remove(id.as_str());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete(&self, id: &ChallengeId) -> Result<bool, StoreError> {
        Ok(self.lock()?.remove(id.as_str()).is_some())
    }
}

//! Storage of the embedded provider (feature `embedded`):
//! [`CredentialStore`] for passkeys and [`CeremonyStore`] for single-use
//! tokens, ceremony state and codes, with their in-memory implementations
//! (the SQL ones are in `store::sqlite` and `store::postgres`).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

use crate::clock::{SharedClock, UnixMillis};
use crate::error::StoreError;
use crate::id::{AuthenticatorId, UserHandle};

/// A passkey registered with the embedded provider.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredCredential {
    /// The credential id (base64url), also the `authenticatorId`.
    pub credential_id: AuthenticatorId,
    /// The user handle it was created for.
    pub user_handle: UserHandle,
    /// The username it was created under.
    pub username: String,
    /// The serialised webauthn-rs `Passkey` (JSON). Holds only public data.
    pub passkey_json: String,
    /// When it was registered (epoch ms).
    pub created_at: UnixMillis,
    /// When it was last used (epoch ms).
    pub last_used_at: Option<UnixMillis>,
    /// The last signature counter seen.
    pub sign_count: u32,
    /// Whether the credential may be backed up (synced passkey).
    pub backup_eligible: bool,
    /// Whether the credential is backed up.
    pub backup_state: bool,
    /// The name the user gave it (at creation or by a rename); `None`: the
    /// name shown is derived (see [`display_name`](Self::display_name)).
    pub name: Option<String>,
    /// The authenticator's AAGUID (`xxxxxxxx-xxxx-...`, lowercase), when it
    /// sent a non-zero one.
    pub aaguid: Option<String>,
}

impl Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential")
            .field("credential_id", &self.credential_id)
            .field("user_handle", &self.user_handle)
            .field("sign_count", &self.sign_count)
            .field("aaguid", &self.aaguid)
            .finish_non_exhaustive()
    }
}

impl StoredCredential {
    /// A credential record.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        credential_id: AuthenticatorId,
        user_handle: UserHandle,
        username: String,
        passkey_json: String,
        created_at: UnixMillis,
        sign_count: u32,
        backup_eligible: bool,
        backup_state: bool,
    ) -> Self {
        Self {
            credential_id,
            user_handle,
            username,
            passkey_json,
            created_at,
            last_used_at: None,
            sign_count,
            backup_eligible,
            backup_state,
            name: None,
            aaguid: None,
        }
    }

    /// With the name the user gave it.
    #[must_use]
    pub fn with_name(mut self, name: Option<String>) -> Self {
        self.name = name;
        self
    }

    /// With the authenticator's AAGUID.
    #[must_use]
    pub fn with_aaguid(mut self, aaguid: Option<String>) -> Self {
        self.aaguid = aaguid;
        self
    }

    /// The name to show: the user's, else the authenticator's (from its
    /// AAGUID, [`crate::aaguid`]), else `"Passkey created YYYY-MM-DD"`.
    pub fn display_name(&self) -> String {
        crate::aaguid::display_name(
            self.name.as_deref(),
            self.aaguid.as_deref(),
            self.created_at,
        )
    }
}

/// The state of a credential after one authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialUse {
    /// The updated serialised passkey.
    pub passkey_json: String,
    /// The counter seen before this use (compare-and-set guard).
    pub previous_sign_count: u32,
    /// The new counter.
    pub sign_count: u32,
    /// The new backup state.
    pub backup_state: bool,
    /// When it was used.
    pub used_at: UnixMillis,
}

impl CredentialUse {
    /// One use: the updated serialised passkey, the counter before and after,
    /// the backup state and when (for store implementations and their tests).
    pub fn new(
        passkey_json: String,
        previous_sign_count: u32,
        sign_count: u32,
        backup_state: bool,
        used_at: UnixMillis,
    ) -> Self {
        Self {
            passkey_json,
            previous_sign_count,
            sign_count,
            backup_state,
            used_at,
        }
    }
}

/// Stores the embedded provider's passkeys. Credential ids are unique across
/// all users.
#[async_trait::async_trait]
pub trait CredentialStore: Send + Sync + Debug + 'static {
    /// Inserts a new credential; [`StoreError::Conflict`] when its id exists
    /// (for any user), and nothing is changed.
    async fn insert(&self, credential: &StoredCredential) -> Result<(), StoreError>;

    /// One credential.
    async fn get(&self, id: &AuthenticatorId) -> Result<Option<StoredCredential>, StoreError>;

    /// Every credential of a user handle.
    async fn list_for_user(&self, user: &UserHandle) -> Result<Vec<StoredCredential>, StoreError>;

    /// Records a use. Fails with [`StoreError::Conflict`] when the stored
    /// counter is no longer `previous_sign_count` (a concurrent use won).
    async fn record_use(
        &self,
        id: &AuthenticatorId,
        usage: &CredentialUse,
    ) -> Result<(), StoreError>;

    /// Deletes a credential; `false` when there was none.
    async fn delete(&self, id: &AuthenticatorId) -> Result<bool, StoreError>;

    /// Sets the name the user gave a credential; `false` when there is no
    /// such credential. Nothing else changes.
    async fn rename(&self, id: &AuthenticatorId, name: &str) -> Result<bool, StoreError>;
}

/// Single-use, expiring values (tokens, ceremony state, codes) and a few
/// persistent ones (the signing key).
#[async_trait::async_trait]
pub trait CeremonyStore: Send + Sync + Debug + 'static {
    /// Stores `value` under `key` until `expires_at`; a key that exists is
    /// replaced.
    async fn put(&self, key: &str, value: &str, expires_at: UnixMillis) -> Result<(), StoreError>;

    /// Removes and returns the value under `key`, or `None` when it is
    /// missing or expired at `now`. Of concurrent takes of one key at most one
    /// gets the value.
    async fn take(&self, key: &str, now: UnixMillis) -> Result<Option<String>, StoreError>;

    /// Returns the persistent value under `key`, storing `value` first if
    /// there is none (the first writer wins across instances).
    async fn get_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError>;
}

/// In-memory [`CredentialStore`].
#[derive(Debug, Default)]
pub struct MemoryCredentialStore {
    map: Mutex<HashMap<AuthenticatorId, StoredCredential>>,
}

impl MemoryCredentialStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<AuthenticatorId, StoredCredential>>, StoreError>
    {
        self.map
            .lock()
            .map_err(|_| StoreError::backend("memory store lock poisoned"))
    }
}

#[async_trait::async_trait]
impl CredentialStore for MemoryCredentialStore {
    async fn insert(&self, credential: &StoredCredential) -> Result<(), StoreError> {
        let mut map = self.lock()?;
        if map.contains_key(&credential.credential_id) {
            return Err(StoreError::Conflict);
        }
        map.insert(credential.credential_id.clone(), credential.clone());
        Ok(())
    }

    async fn get(&self, id: &AuthenticatorId) -> Result<Option<StoredCredential>, StoreError> {
        Ok(self.lock()?.get(id).cloned())
    }

    async fn list_for_user(&self, user: &UserHandle) -> Result<Vec<StoredCredential>, StoreError> {
        let mut v: Vec<_> = self
            .lock()?
            .values()
            .filter(|c| &c.user_handle == user)
            .cloned()
            .collect();
        v.sort_by_key(|c| c.created_at);
        Ok(v)
    }

    async fn record_use(
        &self,
        id: &AuthenticatorId,
        usage: &CredentialUse,
    ) -> Result<(), StoreError> {
        let mut map = self.lock()?;
        match map.get_mut(id) {
            Some(c) if c.sign_count == usage.previous_sign_count => {
                c.passkey_json = usage.passkey_json.clone();
                c.sign_count = usage.sign_count;
                c.backup_state = usage.backup_state;
                c.last_used_at = Some(usage.used_at);
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }

    async fn delete(&self, id: &AuthenticatorId) -> Result<bool, StoreError> {
        Ok(self.lock()?.remove(id).is_some())
    }

    async fn rename(&self, id: &AuthenticatorId, name: &str) -> Result<bool, StoreError> {
        Ok(match self.lock()?.get_mut(id) {
            Some(c) => {
                c.name = Some(name.to_owned());
                true
            }
            None => false,
        })
    }
}

/// In-memory [`CeremonyStore`].
///
/// Expired entries are swept when the map has doubled since the last sweep
/// (and holds at least [`MemoryCeremonyStore::SWEEP_MIN`] entries), so a
/// `put` costs O(1) amortised however many id_token records are live; an
/// expired entry still in the map is never returned. `Debug` prints the
/// entry count only: keys are one-time tokens and codes, values hold
/// ceremonies and the id_token signing key.
///
/// The map holds at most a [capacity](Self::with_capacity) of entries
/// (default [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY)): a `put` of a new
/// key into a full map first sweeps what has expired and, when nothing
/// has, is refused with a [`StoreError::Backend`] ("the ceremony store is
/// full", a `503` for the browser). Refusing was chosen over evicting:
/// evicting live entries would let a flood of ceremony starts silently
/// cancel the ceremonies of honest users in flight, while a refusal is
/// visible, lasts only until entries expire, and the per-address ceremony
/// limit ([`ThrottlePolicy::ceremonies_per_address`](crate::throttle::ThrottlePolicy::ceremonies_per_address))
/// keeps one address from filling it alone.
pub struct MemoryCeremonyStore {
    inner: Mutex<MemoryCeremonies>,
    capacity: usize,
    clock: Option<SharedClock>,
}

impl Default for MemoryCeremonyStore {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            capacity: Self::DEFAULT_CAPACITY,
            clock: None,
        }
    }
}

impl Debug for MemoryCeremonyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCeremonyStore")
            .field("entries", &self.len())
            .finish()
    }
}

#[derive(Default)]
struct MemoryCeremonies {
    map: HashMap<String, (String, Option<UnixMillis>)>,
    /// The map size at which the next sweep runs.
    sweep_at: usize,
    /// The latest `now` a `take` was given: entries expired before it go.
    now: UnixMillis,
    /// When full: no entry expires before this, so no sweep can free space.
    full_until: UnixMillis,
}

impl MemoryCeremonies {
    /// Drops the entries expired at `cutoff`.
    fn sweep(&mut self, cutoff: UnixMillis) {
        self.map
            .retain(|_, (_, exp)| exp.is_none_or(|e| e > cutoff));
    }
}

impl MemoryCeremonyStore {
    /// The fewest entries at which a sweep runs.
    pub const SWEEP_MIN: usize = 10_000;

    /// The default capacity: 100 000 entries (a few tens of MB at most),
    /// far above what honest users keep live at once (a ceremony lives
    /// minutes and holds two or three entries).
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty store of [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY)
    /// entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `capacity` entries (at least 1).
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Times the sweep of a full store by `clock` (the provider's clock;
    /// [`EmbeddedProvider::in_memory`](crate::provider::embedded::EmbeddedProvider::in_memory)
    /// sets it). Without a clock, an entry counts as expired when it expired
    /// before the latest `take`.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How many entries the map holds, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.lock().map_or(0, |m| m.map.len())
    }

    /// Whether the map holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryCeremonies>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::backend("memory store lock poisoned"))
    }
}

#[async_trait::async_trait]
impl CeremonyStore for MemoryCeremonyStore {
    async fn put(&self, key: &str, value: &str, expires_at: UnixMillis) -> Result<(), StoreError> {
        let now = self.clock.as_ref().map(|c| c.now_millis());
        let mut m = self.lock()?;
        if m.map.len() >= m.sweep_at.max(Self::SWEEP_MIN) {
            // No clock here: an entry has expired when it expired before the
            // latest `take`, or over an hour before this entry expires (no
            // ceremony record lives that long).
            let cutoff = m
                .now
                .max(now.unwrap_or(0))
                .max(expires_at.saturating_sub(3_600_000));
            m.sweep(cutoff);
            m.sweep_at = m.map.len().saturating_mul(2);
        }
        if m.map.len() >= self.capacity && !m.map.contains_key(key) {
            let now = now.unwrap_or(m.now).max(m.now);
            if now >= m.full_until {
                m.sweep(now);
                // Until the earliest live entry expires, nothing can be freed.
                m.full_until = m
                    .map
                    .values()
                    .filter_map(|(_, exp)| *exp)
                    .min()
                    .unwrap_or(now);
                if m.map.len() >= self.capacity {
                    tracing::warn!(
                        capacity = self.capacity,
                        "the in-memory ceremony store is full: new ceremonies are refused until entries expire"
                    );
                }
            }
            if m.map.len() >= self.capacity {
                return Err(StoreError::backend("the ceremony store is full"));
            }
        }
        m.map
            .insert(key.to_owned(), (value.to_owned(), Some(expires_at)));
        Ok(())
    }

    async fn take(&self, key: &str, now: UnixMillis) -> Result<Option<String>, StoreError> {
        let mut m = self.lock()?;
        m.now = m.now.max(now);
        Ok(match m.map.remove(key) {
            Some((v, Some(exp))) if exp > now => Some(v),
            _ => None,
        })
    }

    async fn get_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let mut m = self.lock()?;
        Ok(m.map
            .entry(key.to_owned())
            .or_insert_with(|| (value.to_owned(), None))
            .0
            .clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_full_memory_ceremony_store_refuses_until_entries_expire() {
        let clock = ManualClock::new(1_000_000);
        let store = MemoryCeremonyStore::new()
            .with_capacity(3)
            .with_clock(Arc::new(clock.clone()));
        for i in 0..3 {
            store.put(&format!("k{i}"), "v", 1_060_000).await.unwrap();
        }
        // Full: a new key is refused (503), the live entries are kept.
        let err = store.put("k3", "v", 1_060_000).await.unwrap_err();
        assert_eq!(err.status().as_u16(), 503);
        assert_eq!(err.code(), "store_unavailable");
        assert_eq!(store.len(), 3);
        // Replacing a key that exists is not growth.
        store.put("k0", "w", 1_060_000).await.unwrap();
        assert_eq!(
            store.take("k1", 1_000_000).await.unwrap().as_deref(),
            Some("v")
        );
        // A take frees a place.
        store.put("k3", "v", 1_060_000).await.unwrap();
        assert!(store.put("k4", "v", 1_060_000).await.is_err());
        // Past the entries' expiry, space is free again.
        clock.advance_secs(60);
        store.put("k4", "v", 1_120_000).await.unwrap();
        assert_eq!(store.len(), 1);
        assert_eq!(store.take("k0", clock.now_millis()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn memory_ceremony_store_sweeps_expired_entries_amortised() {
        let store = MemoryCeremonyStore::new();
        let n = MemoryCeremonyStore::SWEEP_MIN;
        for i in 0..n / 2 {
            store.put(&format!("old{i}"), "v", 1_000).await.unwrap();
        }
        for i in 0..n / 2 {
            store.put(&format!("live{i}"), "v", 10_000).await.unwrap();
        }
        assert_eq!(store.len(), n);
        // A take at 2 000 tells the store that the "old" entries expired.
        assert_eq!(store.take("absent", 2_000).await.unwrap(), None);
        store.put("new", "v", 10_000).await.unwrap();
        // The sweep ran once: the expired half is gone, the live half kept.
        assert_eq!(store.len(), n / 2 + 1);
        assert_eq!(
            store.take("live7", 2_000).await.unwrap().as_deref(),
            Some("v")
        );
        // The next sweep waits until the map has doubled.
        for i in 0..10 {
            store.put(&format!("more{i}"), "v", 10_000).await.unwrap();
        }
        assert_eq!(store.len(), n / 2 + 10);
    }
}

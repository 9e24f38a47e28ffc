use std::collections::HashMap;
use std::sync::Mutex;

use super::{AuthenticatorStore, LinkedAuthenticator, UserId};
use crate::clock::UnixMillis;
use crate::error::StoreError;
use crate::id::AuthenticatorId;

/// An in-memory [`AuthenticatorStore`], for tests and single-process demos.
#[derive(Debug)]
pub struct MemoryAuthenticatorStore<U> {
    links: Mutex<HashMap<AuthenticatorId, (U, LinkedAuthenticator)>>,
}

impl<U> Default for MemoryAuthenticatorStore<U> {
    fn default() -> Self {
        Self {
            links: Mutex::new(HashMap::new()),
        }
    }
}

impl<U> MemoryAuthenticatorStore<U> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    #[allow(clippy::type_complexity)]
    fn lock(
        &self,
    ) -> Result<
        std::sync::MutexGuard<'_, HashMap<AuthenticatorId, (U, LinkedAuthenticator)>>,
        StoreError,
    > {
        self.links
            .lock()
            .map_err(|_| StoreError::backend("memory store lock poisoned"))
    }
}

#[async_trait::async_trait]
impl<U: UserId> AuthenticatorStore<U> for MemoryAuthenticatorStore<U> {
    async fn link(
        &self,
        authenticator: &AuthenticatorId,
        user: &U,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let mut links = self.lock()?;
        match links.get(authenticator) {
            Some((owner, _)) if owner == user => Ok(()),
            Some(_) => Err(StoreError::Conflict),
            None => {
                links.insert(
                    authenticator.clone(),
                    (
                        user.clone(),
                        LinkedAuthenticator::new(authenticator.clone(), now, None),
                    ),
                );
                Ok(())
            }
        }
    }

    async fn user_of(&self, authenticator: &AuthenticatorId) -> Result<Option<U>, StoreError> {
        Ok(self.lock()?.get(authenticator).map(|(u, _)| u.clone()))
    }

    async fn authenticators_of(&self, user: &U) -> Result<Vec<LinkedAuthenticator>, StoreError> {
        let mut out: Vec<_> = self
            .lock()?
            .values()
            .filter(|(u, _)| u == user)
            .map(|(_, l)| l.clone())
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.authenticator_id.cmp(&b.authenticator_id))
        });
        Ok(out)
    }

    async fn unlink(&self, authenticator: &AuthenticatorId, user: &U) -> Result<bool, StoreError> {
        let mut links = self.lock()?;
        match links.get(authenticator) {
            Some((owner, _)) if owner == user => {
                links.remove(authenticator);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch(
        &self,
        authenticator: &AuthenticatorId,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        if let Some((_, l)) = self.lock()?.get_mut(authenticator) {
            l.last_used_at = Some(now);
        }
        Ok(())
    }
}

//! Recovery test helpers: a [`CapturingMailer`] that keeps every code it
//! is asked to send (instead of mailing it) and a [`MapDirectory`] of
//! addresses.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use passlock_core::clock::UnixMillis;
use passlock_core::error::StoreError;
use passlock_core::recovery::{EmailAddress, MailError, Mailer, RecoveryDirectory};
use passlock_core::secret::RecoveryCode;
use passlock_core::store::UserId;

/// One mail the [`CapturingMailer`] was asked to send.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SentCode {
    /// The address.
    pub to: EmailAddress,
    /// The code.
    pub code: RecoveryCode,
    /// When the code expires (epoch ms).
    pub expires_at: UnixMillis,
}

/// A [`Mailer`] for tests: keeps the codes, sends nothing.
#[derive(Debug, Default)]
pub struct CapturingMailer {
    sent: Mutex<Vec<SentCode>>,
    notify: Notify,
}

impl CapturingMailer {
    /// An empty mailer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every mail so far, oldest first.
    pub fn sent(&self) -> Vec<SentCode> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The `n`-th mail (from 0) to `to`, waiting for it: passlock mails in
    /// a background task after answering. Gives up after 10 seconds with
    /// `None` (a test hang guard, not a timing assertion).
    pub async fn code_for(&self, to: &str, n: usize) -> Option<RecoveryCode> {
        let wait = async {
            loop {
                let notified = self.notify.notified();
                if let Some(found) = self
                    .sent()
                    .into_iter()
                    .filter(|s| s.to.as_str() == to)
                    .nth(n)
                {
                    return found.code;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .ok()
    }
}

#[async_trait::async_trait]
impl Mailer for CapturingMailer {
    async fn send_recovery_code(
        &self,
        to: &EmailAddress,
        code: &RecoveryCode,
        expires_at: UnixMillis,
    ) -> Result<(), MailError> {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(SentCode {
                to: to.clone(),
                code: code.clone(),
                expires_at,
            });
        }
        self.notify.notify_waiters();
        Ok(())
    }
}

/// A [`RecoveryDirectory`] over a map of addresses to users.
#[derive(Debug, Default)]
pub struct MapDirectory<U> {
    users: Mutex<HashMap<String, U>>,
}

impl<U: UserId> MapDirectory<U> {
    /// An empty directory.
    pub fn new() -> Self {
        Self {
            users: Mutex::new(HashMap::new()),
        }
    }

    /// Records `email` as `user`'s address.
    pub fn insert(&self, email: &str, user: U) {
        if let Ok(mut users) = self.users.lock() {
            users.insert(email.to_owned(), user);
        }
    }
}

#[async_trait::async_trait]
impl<U: UserId> RecoveryDirectory<U> for MapDirectory<U> {
    async fn user_by_email(&self, email: &EmailAddress) -> Result<Option<U>, StoreError> {
        let users = self
            .users
            .lock()
            .map_err(|_| StoreError::backend("directory poisoned"))?;
        Ok(users.get(email.as_str()).cloned())
    }
}

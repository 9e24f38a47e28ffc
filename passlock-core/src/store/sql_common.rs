//! What the SQLite and PostgreSQL stores share: the queries are written once
//! (both backends accept `$N` parameters, `ON CONFLICT`, `RETURNING`), and
//! [`sql_stores!`] expands the store types for one backend's pool.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::StoreError;

/// Expired rows are swept on one call in this many.
const SWEEP_EVERY: u32 = 32;

/// How often a link or get-or-insert retries when the row it just saw
/// vanished under a concurrent delete.
pub(crate) const RETRIES: usize = 4;

/// Maps a driver error; the message never carries a query value.
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    StoreError::backend(e)
}

/// Whether this call should sweep expired rows.
pub(crate) fn sweep_due(counter: &AtomicU32) -> bool {
    counter
        .fetch_add(1, Ordering::Relaxed)
        .is_multiple_of(SWEEP_EVERY)
}

/// Parses a stored user id.
pub(crate) fn parse_user<U: std::str::FromStr>(stored: &str) -> Result<U, StoreError> {
    stored
        .parse()
        .map_err(|_| StoreError::backend("a stored user id does not parse as the app's user id"))
}

/// A stored signature counter back to `u32`.
#[cfg(feature = "embedded")]
pub(crate) fn sign_count(stored: i64) -> Result<u32, StoreError> {
    u32::try_from(stored).map_err(|_| StoreError::backend("a stored sign count is out of range"))
}

/// Expands the authenticator, credential, ceremony, replay-cache and
/// revocation stores for one backend.
macro_rules! sql_stores {
    (
        backend: $backend:literal,
        module: $module:literal,
        pool: $Pool:ty,
        authenticator: $Auth:ident,
        credential: $Cred:ident,
        ceremony: $Cer:ident,
        replay: $Replay:ident,
        revocation: $Rev:ident $(,)?
    ) => {
        use std::marker::PhantomData;
        use std::sync::Arc;
        use std::sync::atomic::AtomicU32;

        use $crate::clock::UnixMillis;
        use $crate::error::StoreError;
        use $crate::id::AuthenticatorId;
        use $crate::store::sql_common::{RETRIES, backend, parse_user, sweep_due};
        use $crate::store::{AuthenticatorStore, LinkedAuthenticator, UserId};

        fn authenticator_id(stored: String) -> Result<AuthenticatorId, StoreError> {
            AuthenticatorId::new(stored)
                .map_err(|_| StoreError::backend("a stored authenticator id is invalid"))
        }

        #[doc = concat!("An [`AuthenticatorStore`] on ", $backend, ", table `passlock_authenticator`.")]
        ///
        /// The user id is stored as `TEXT`: written with `U`'s `Display` and
        /// read back with its `FromStr`, which must therefore round-trip
        /// (`i64`, `String`, `Uuid` and most newtypes do). Users are compared
        /// by that text form. The table has no foreign key to your user
        /// table; if you want one (an `INTEGER` `user_id REFERENCES
        /// users(id) ON DELETE CASCADE`), implement [`AuthenticatorStore`]
        /// on your own table, as its documentation shows.
        ///
        #[doc = concat!("Create the table with [`migrate`](", $module, "::migrate) first.")]
        pub struct $Auth<U> {
            pool: $Pool,
            _user: PhantomData<fn() -> U>,
        }

        impl<U> std::fmt::Debug for $Auth<U> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($Auth)).finish_non_exhaustive()
            }
        }

        impl<U> Clone for $Auth<U> {
            fn clone(&self) -> Self {
                Self {
                    pool: self.pool.clone(),
                    _user: PhantomData,
                }
            }
        }

        impl<U> $Auth<U> {
            /// A store on `pool` (the schema must be migrated).
            pub fn new(pool: $Pool) -> Self {
                Self {
                    pool,
                    _user: PhantomData,
                }
            }

            /// The pool it uses.
            pub fn pool(&self) -> &$Pool {
                &self.pool
            }
        }

        #[async_trait::async_trait]
        impl<U: UserId> AuthenticatorStore<U> for $Auth<U> {
            async fn link(
                &self,
                authenticator: &AuthenticatorId,
                user: &U,
                now: UnixMillis,
            ) -> Result<(), StoreError> {
                let user_text = user.to_string();
                for _ in 0..RETRIES {
                    // One statement decides the race: of concurrent inserts
                    // of one authenticator exactly one creates the row.
                    let inserted = sqlx::query(
                        "INSERT INTO passlock_authenticator \
                         (authenticator_id, user_id, created_at, last_used_at) \
                         VALUES ($1, $2, $3, NULL) \
                         ON CONFLICT (authenticator_id) DO NOTHING",
                    )
                    .bind(authenticator.as_str())
                    .bind(&user_text)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                    if inserted == 1 {
                        return Ok(());
                    }
                    let owner: Option<String> = sqlx::query_scalar(
                        "SELECT user_id FROM passlock_authenticator WHERE authenticator_id = $1",
                    )
                    .bind(authenticator.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                    match owner {
                        Some(owner) if owner == user_text || parse_user::<U>(&owner).ok().as_ref() == Some(user) => {
                            return Ok(());
                        }
                        Some(_) => return Err(StoreError::Conflict),
                        // Unlinked between the two statements: try again.
                        None => {}
                    }
                }
                Err(StoreError::backend(
                    "the authenticator was linked and unlinked concurrently too often",
                ))
            }

            async fn user_of(
                &self,
                authenticator: &AuthenticatorId,
            ) -> Result<Option<U>, StoreError> {
                let owner: Option<String> = sqlx::query_scalar(
                    "SELECT user_id FROM passlock_authenticator WHERE authenticator_id = $1",
                )
                .bind(authenticator.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
                owner.as_deref().map(parse_user).transpose()
            }

            async fn authenticators_of(
                &self,
                user: &U,
            ) -> Result<Vec<LinkedAuthenticator>, StoreError> {
                let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT authenticator_id, created_at, last_used_at \
                     FROM passlock_authenticator WHERE user_id = $1 \
                     ORDER BY created_at, authenticator_id",
                )
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
                rows.into_iter()
                    .map(|(id, created_at, last_used_at)| {
                        Ok(LinkedAuthenticator::new(
                            authenticator_id(id)?,
                            created_at,
                            last_used_at,
                        ))
                    })
                    .collect()
            }

            async fn unlink(
                &self,
                authenticator: &AuthenticatorId,
                user: &U,
            ) -> Result<bool, StoreError> {
                let deleted = sqlx::query(
                    "DELETE FROM passlock_authenticator \
                     WHERE authenticator_id = $1 AND user_id = $2",
                )
                .bind(authenticator.as_str())
                .bind(user.to_string())
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
                Ok(deleted > 0)
            }

            async fn touch(
                &self,
                authenticator: &AuthenticatorId,
                now: UnixMillis,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE passlock_authenticator SET last_used_at = $1 \
                     WHERE authenticator_id = $2",
                )
                .bind(now)
                .bind(authenticator.as_str())
                .execute(&self.pool)
                .await
                .map_err(backend)?;
                Ok(())
            }
        }

        #[cfg(feature = "embedded")]
        pub use self::embedded_stores::{$Cer, $Cred};

        #[cfg(feature = "embedded")]
        mod embedded_stores {
            use super::*;
            use $crate::id::UserHandle;
            use $crate::store::{CeremonyStore, CredentialStore, CredentialUse, StoredCredential};
            use $crate::store::sql_common::sign_count;

            type CredentialRow = (
                String, String, String, String, i64, Option<i64>, i64, bool, bool,
                Option<String>, Option<String>,
            );

            const CREDENTIAL_COLUMNS: &str = "credential_id, user_handle, username, passkey_json, \
                 created_at, last_used_at, sign_count, backup_eligible, backup_state, name, aaguid";

            fn credential(row: CredentialRow) -> Result<StoredCredential, StoreError> {
                let (id, handle, username, passkey_json, created_at, last_used_at, count, eligible, state, name, aaguid) =
                    row;
                let user_handle = UserHandle::new(handle)
                    .map_err(|_| StoreError::backend("a stored user handle is invalid"))?;
                let mut c = StoredCredential::new(
                    authenticator_id(id)?,
                    user_handle,
                    username,
                    passkey_json,
                    created_at,
                    sign_count(count)?,
                    eligible,
                    state,
                )
                .with_name(name)
                .with_aaguid(aaguid);
                c.last_used_at = last_used_at;
                Ok(c)
            }

            #[doc = concat!("The embedded provider's [`CredentialStore`] on ", $backend, ", table `passlock_credential`.")]
            ///
            #[doc = concat!("Create the table with [`migrate`](", $module, "::migrate) first.")]
            #[derive(Clone)]
            pub struct $Cred {
                pool: $Pool,
            }

            impl std::fmt::Debug for $Cred {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.debug_struct(stringify!($Cred)).finish_non_exhaustive()
                }
            }

            impl $Cred {
                /// A store on `pool` (the schema must be migrated).
                pub fn new(pool: $Pool) -> Self {
                    Self { pool }
                }

                /// The pool it uses.
                pub fn pool(&self) -> &$Pool {
                    &self.pool
                }
            }

            #[async_trait::async_trait]
            impl CredentialStore for $Cred {
                async fn insert(&self, c: &StoredCredential) -> Result<(), StoreError> {
                    let inserted = sqlx::query(
                        "INSERT INTO passlock_credential \
                         (credential_id, user_handle, username, passkey_json, created_at, \
                          last_used_at, sign_count, backup_eligible, backup_state, name, aaguid) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                         ON CONFLICT (credential_id) DO NOTHING",
                    )
                    .bind(c.credential_id.as_str())
                    .bind(c.user_handle.as_str())
                    .bind(&c.username)
                    .bind(&c.passkey_json)
                    .bind(c.created_at)
                    .bind(c.last_used_at)
                    .bind(i64::from(c.sign_count))
                    .bind(c.backup_eligible)
                    .bind(c.backup_state)
                    .bind(c.name.as_deref())
                    .bind(c.aaguid.as_deref())
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                    if inserted == 1 {
                        Ok(())
                    } else {
                        Err(StoreError::Conflict)
                    }
                }

                async fn get(
                    &self,
                    id: &AuthenticatorId,
                ) -> Result<Option<StoredCredential>, StoreError> {
                    let sql = format!(
                        "SELECT {CREDENTIAL_COLUMNS} FROM passlock_credential \
                         WHERE credential_id = $1"
                    );
                    let row: Option<CredentialRow> = sqlx::query_as(&sql)
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(backend)?;
                    row.map(credential).transpose()
                }

                async fn list_for_user(
                    &self,
                    user: &UserHandle,
                ) -> Result<Vec<StoredCredential>, StoreError> {
                    let sql = format!(
                        "SELECT {CREDENTIAL_COLUMNS} FROM passlock_credential \
                         WHERE user_handle = $1 ORDER BY created_at, credential_id"
                    );
                    let rows: Vec<CredentialRow> = sqlx::query_as(&sql)
                        .bind(user.as_str())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(backend)?;
                    rows.into_iter().map(credential).collect()
                }

                async fn record_use(
                    &self,
                    id: &AuthenticatorId,
                    usage: &CredentialUse,
                ) -> Result<(), StoreError> {
                    // Compare-and-set on the counter: of two concurrent uses
                    // seen at one counter only one is recorded.
                    let updated = sqlx::query(
                        "UPDATE passlock_credential \
                         SET passkey_json = $1, sign_count = $2, backup_state = $3, \
                             last_used_at = $4 \
                         WHERE credential_id = $5 AND sign_count = $6",
                    )
                    .bind(&usage.passkey_json)
                    .bind(i64::from(usage.sign_count))
                    .bind(usage.backup_state)
                    .bind(usage.used_at)
                    .bind(id.as_str())
                    .bind(i64::from(usage.previous_sign_count))
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                    if updated == 1 {
                        Ok(())
                    } else {
                        Err(StoreError::Conflict)
                    }
                }

                async fn delete(&self, id: &AuthenticatorId) -> Result<bool, StoreError> {
                    let deleted =
                        sqlx::query("DELETE FROM passlock_credential WHERE credential_id = $1")
                            .bind(id.as_str())
                            .execute(&self.pool)
                            .await
                            .map_err(backend)?
                            .rows_affected();
                    Ok(deleted > 0)
                }

                async fn rename(&self, id: &AuthenticatorId, name: &str) -> Result<bool, StoreError> {
                    let updated =
                        sqlx::query("UPDATE passlock_credential SET name = $1 WHERE credential_id = $2")
                            .bind(name)
                            .bind(id.as_str())
                            .execute(&self.pool)
                            .await
                            .map_err(backend)?
                            .rows_affected();
                    Ok(updated > 0)
                }
            }

            #[doc = concat!("The embedded provider's [`CeremonyStore`] on ", $backend, ", table `passlock_ceremony`.")]
            ///
            /// [`take`](CeremonyStore::take) is one `DELETE ... RETURNING`
            /// statement, so of racing takes only one gets the value; it
            /// never takes a persistent value (one stored by
            /// [`get_or_insert`](CeremonyStore::get_or_insert)). Expired rows
            /// are deleted now and then by `take`, or by [`sweep`](Self::sweep).
            ///
            #[doc = concat!("Create the table with [`migrate`](", $module, "::migrate) first.")]
            #[derive(Clone)]
            pub struct $Cer {
                pool: $Pool,
                calls: Arc<AtomicU32>,
            }

            impl std::fmt::Debug for $Cer {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.debug_struct(stringify!($Cer)).finish_non_exhaustive()
                }
            }

            impl $Cer {
                /// A store on `pool` (the schema must be migrated).
                pub fn new(pool: $Pool) -> Self {
                    Self {
                        pool,
                        calls: Arc::new(AtomicU32::new(1)),
                    }
                }

                /// The pool it uses.
                pub fn pool(&self) -> &$Pool {
                    &self.pool
                }

                /// Deletes every value expired at `now`; returns how many.
                pub async fn sweep(&self, now: UnixMillis) -> Result<u64, StoreError> {
                    Ok(sqlx::query(
                        "DELETE FROM passlock_ceremony \
                         WHERE expires_at IS NOT NULL AND expires_at <= $1",
                    )
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected())
                }
            }

            #[async_trait::async_trait]
            impl CeremonyStore for $Cer {
                async fn put(
                    &self,
                    key: &str,
                    value: &str,
                    expires_at: UnixMillis,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO passlock_ceremony (key, value, expires_at) \
                         VALUES ($1, $2, $3) \
                         ON CONFLICT (key) DO UPDATE \
                         SET value = excluded.value, expires_at = excluded.expires_at",
                    )
                    .bind(key)
                    .bind(value)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                    Ok(())
                }

                async fn take(&self, key: &str, now: UnixMillis) -> Result<Option<String>, StoreError> {
                    if sweep_due(&self.calls) {
                        self.sweep(now).await?;
                    }
                    // One statement removes and returns the row, so of two
                    // racing takes only one sees it. Persistent values
                    // (no expiry) are not taken.
                    let rows: Vec<(String, i64)> = sqlx::query_as(
                        "DELETE FROM passlock_ceremony \
                         WHERE key = $1 AND expires_at IS NOT NULL \
                         RETURNING value, expires_at",
                    )
                    .bind(key)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend)?;
                    Ok(rows
                        .into_iter()
                        .next()
                        .filter(|(_, expires_at)| *expires_at > now)
                        .map(|(value, _)| value))
                }

                async fn get_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
                    for _ in 0..RETRIES {
                        sqlx::query(
                            "INSERT INTO passlock_ceremony (key, value, expires_at) \
                             VALUES ($1, $2, NULL) ON CONFLICT (key) DO NOTHING",
                        )
                        .bind(key)
                        .bind(value)
                        .execute(&self.pool)
                        .await
                        .map_err(backend)?;
                        let stored: Option<String> =
                            sqlx::query_scalar("SELECT value FROM passlock_ceremony WHERE key = $1")
                                .bind(key)
                                .fetch_optional(&self.pool)
                                .await
                                .map_err(backend)?;
                        if let Some(stored) = stored {
                            return Ok(stored);
                        }
                    }
                    Err(StoreError::backend(
                        "the value was inserted and deleted concurrently too often",
                    ))
                }
            }
        }

        #[doc = concat!("A [`ReplayCache`](crate::store::ReplayCache) on ", $backend, ", table `passlock_jti`:")]
        /// each `jti` is accepted once across every instance sharing the
        /// database, until it expires. Expired rows are deleted now and then.
        ///
        #[doc = concat!("Create the table with [`migrate`](", $module, "::migrate) first.")]
        #[derive(Clone)]
        pub struct $Replay {
            pool: $Pool,
            calls: Arc<AtomicU32>,
        }

        impl std::fmt::Debug for $Replay {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($Replay)).finish_non_exhaustive()
            }
        }

        impl $Replay {
            /// A cache on `pool` (the schema must be migrated).
            pub fn new(pool: $Pool) -> Self {
                Self {
                    pool,
                    calls: Arc::new(AtomicU32::new(1)),
                }
            }

            /// The pool it uses.
            pub fn pool(&self) -> &$Pool {
                &self.pool
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ReplayCache for $Replay {
            async fn first_use(
                &self,
                jti: &str,
                expires_at_secs: i64,
                now_secs: i64,
            ) -> Result<bool, StoreError> {
                let expires_at = expires_at_secs.saturating_mul(1000);
                let now = now_secs.saturating_mul(1000);
                if sweep_due(&self.calls) {
                    sqlx::query("DELETE FROM passlock_jti WHERE expires_at < $1")
                        .bind(now)
                        .execute(&self.pool)
                        .await
                        .map_err(backend)?;
                }
                // One statement: a new jti is inserted, an expired one is
                // renewed, a live one is left alone (0 rows: a replay).
                let written = sqlx::query(
                    "INSERT INTO passlock_jti (jti, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at \
                     WHERE passlock_jti.expires_at < $3",
                )
                .bind(jti)
                .bind(expires_at)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
                Ok(written == 1)
            }
        }

        #[doc = concat!("A [`RevocationStore`](crate::store::RevocationStore) on ", $backend, ", table `passlock_revocation`:")]
        /// logout markers shared by every instance using the database.
        /// Expired markers are deleted now and then.
        ///
        #[doc = concat!("Create the table with [`migrate`](", $module, "::migrate) first.")]
        #[derive(Clone)]
        pub struct $Rev {
            pool: $Pool,
            calls: Arc<AtomicU32>,
        }

        impl std::fmt::Debug for $Rev {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($Rev)).finish_non_exhaustive()
            }
        }

        impl $Rev {
            /// A store on `pool` (the schema must be migrated).
            pub fn new(pool: $Pool) -> Self {
                Self {
                    pool,
                    calls: Arc::new(AtomicU32::new(1)),
                }
            }

            /// The pool it uses.
            pub fn pool(&self) -> &$Pool {
                &self.pool
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::RevocationStore for $Rev {
            async fn revoke(
                &self,
                key: &str,
                revoked_at: UnixMillis,
                keep_until: UnixMillis,
            ) -> Result<(), StoreError> {
                if sweep_due(&self.calls) {
                    sqlx::query("DELETE FROM passlock_revocation WHERE keep_until < $1")
                        .bind(revoked_at)
                        .execute(&self.pool)
                        .await
                        .map_err(backend)?;
                }
                // One statement; a second revocation keeps the later times.
                sqlx::query(
                    "INSERT INTO passlock_revocation (key, revoked_at, keep_until) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET \
                     revoked_at = CASE WHEN passlock_revocation.revoked_at > excluded.revoked_at \
                       THEN passlock_revocation.revoked_at ELSE excluded.revoked_at END, \
                     keep_until = CASE WHEN passlock_revocation.keep_until > excluded.keep_until \
                       THEN passlock_revocation.keep_until ELSE excluded.keep_until END",
                )
                .bind(key)
                .bind(revoked_at)
                .bind(keep_until)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
                Ok(())
            }

            async fn latest(&self, keys: &[String]) -> Result<Option<UnixMillis>, StoreError> {
                if keys.is_empty() {
                    return Ok(None);
                }
                // One statement for all the keys (a session's family, its
                // passkey and its user): one round trip per guarded request.
                let marks: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT MAX(revoked_at) FROM passlock_revocation WHERE key IN ({})",
                    marks.join(", ")
                );
                let mut query = sqlx::query_scalar::<_, Option<i64>>(&sql);
                for key in keys {
                    query = query.bind(key);
                }
                query.fetch_one(&self.pool).await.map_err(backend)
            }
        }
    };
}

pub(crate) use sql_stores;

//! The SQL [`RecoveryChallenges`](super::RecoveryChallenges): the queries
//! are written once and expanded for SQLite and PostgreSQL (table
//! `passlock_recovery_challenge`, schema version 4).

/// Expands a recovery challenge store for one backend's pool.
macro_rules! sql_recovery_store {
    (backend: $backend:literal, module: $module:literal, pool: $Pool:ty, name: $Name:ident $(,)?) => {
        #[doc = concat!("[`RecoveryChallenges`](crate::store::RecoveryChallenges) on ", $backend, ", table `passlock_recovery_challenge`:")]
        /// every instance of the app sharing the database sees the same
        /// challenges and the same attempt counts. Each method is one
        /// statement (an attempt is counted and checked in one `UPDATE`).
        ///
        #[doc = concat!("Create the table with [`migrate`](", $module, "::migrate) first.")]
        #[derive(Clone)]
        pub struct $Name {
            pool: $Pool,
            sweeps: Arc<AtomicU32>,
        }

        impl std::fmt::Debug for $Name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($Name)).finish_non_exhaustive()
            }
        }

        impl $Name {
            /// A store on `pool` (the schema must be migrated).
            pub fn new(pool: $Pool) -> Self {
                Self {
                    pool,
                    sweeps: Arc::new(AtomicU32::new(0)),
                }
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::RecoveryChallenges for $Name {
            async fn create(
                &self,
                c: &$crate::store::NewChallenge,
            ) -> Result<(), StoreError> {
                if sweep_due(&self.sweeps) {
                    sqlx::query("DELETE FROM passlock_recovery_challenge WHERE expires_at < $1")
                        .bind(c.created_at)
                        .execute(&self.pool)
                        .await
                        .map_err(backend)?;
                }
                let inserted = sqlx::query(
                    "INSERT INTO passlock_recovery_challenge \
                     (id, address, user_id, code_hash, created_at, expires_at, attempts, max_attempts, used) \
                     VALUES ($1, $2, $3, $4, $5, $6, 0, $7, 0) ON CONFLICT (id) DO NOTHING",
                )
                .bind(c.id.as_str())
                .bind(&c.address)
                .bind(c.user.as_deref())
                .bind(&c.code_hash)
                .bind(c.created_at)
                .bind(c.expires_at)
                .bind(i64::from(c.max_attempts))
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
                match inserted {
                    1 => Ok(()),
                    _ => Err(StoreError::Conflict),
                }
            }

            async fn attempt(
                &self,
                id: &$crate::id::ChallengeId,
                now: UnixMillis,
            ) -> Result<$crate::store::Attempt, StoreError> {
                use $crate::store::Attempt;
                // Count and check in one statement: concurrent attempts on
                // any instance never exceed the limit together.
                let open: Option<(String, Option<String>, String)> = sqlx::query_as(
                    "UPDATE passlock_recovery_challenge SET attempts = attempts + 1 \
                     WHERE id = $1 AND used = 0 AND attempts < max_attempts AND expires_at > $2 \
                     RETURNING code_hash, user_id, address",
                )
                .bind(id.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
                if let Some((code_hash, user, address)) = open {
                    return Ok(Attempt::Open {
                        code_hash,
                        user,
                        address,
                    });
                }
                let row: Option<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT used, attempts, max_attempts FROM passlock_recovery_challenge WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
                Ok(match row {
                    None => Attempt::Unknown,
                    Some((used, _, _)) if used != 0 => Attempt::Used,
                    Some((_, attempts, max)) if attempts >= max => Attempt::Exhausted,
                    Some(_) => Attempt::Expired,
                })
            }

            async fn mark_used(
                &self,
                id: &$crate::id::ChallengeId,
                now: UnixMillis,
                keep_until: UnixMillis,
            ) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "UPDATE passlock_recovery_challenge SET used = 1, expires_at = $3 \
                     WHERE id = $1 AND used = 0 AND expires_at > $2",
                )
                .bind(id.as_str())
                .bind(now)
                .bind(keep_until)
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
                Ok(n == 1)
            }

            async fn take_used(
                &self,
                id: &$crate::id::ChallengeId,
                now: UnixMillis,
            ) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "DELETE FROM passlock_recovery_challenge \
                     WHERE id = $1 AND used = 1 AND expires_at > $2",
                )
                .bind(id.as_str())
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
                Ok(n == 1)
            }

            async fn delete(&self, id: &$crate::id::ChallengeId) -> Result<bool, StoreError> {
                let n = sqlx::query("DELETE FROM passlock_recovery_challenge WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                Ok(n == 1)
            }
        }
    };
}

pub(crate) use sql_recovery_store;

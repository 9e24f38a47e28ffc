//! Shared helpers of passlock's integration tests.
// Test helpers: a setup that fails fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection};

/// The PostgreSQL server tests use: `PASSLOCK_TEST_PG`, or the local `test`
/// database with trust auth.
pub fn pg_url() -> String {
    std::env::var("PASSLOCK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The Redis server tests use: `PASSLOCK_TEST_REDIS`, or the local one.
pub fn redis_url() -> String {
    std::env::var("PASSLOCK_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A Redis key prefix of one test (unique, ending in `:`) and a connection
/// to [`redis_url`]. Every key under the prefix is deleted when this is
/// dropped (and by [`RedisPrefix::clean`]), so a test leaves nothing behind
/// in a shared Redis, whether it passes or fails.
pub struct RedisPrefix {
    prefix: String,
    conn: redis::aio::ConnectionManager,
}

impl std::fmt::Debug for RedisPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPrefix")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A fresh [`RedisPrefix`] named after `name`.
pub async fn redis_prefix(name: &str) -> RedisPrefix {
    let client = redis::Client::open(redis_url()).unwrap();
    let conn = redis::aio::ConnectionManager::new(client).await.unwrap();
    RedisPrefix {
        prefix: format!("{}:", unique_name(name)),
        conn,
    }
}

impl RedisPrefix {
    /// The prefix (ends in `:`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A connection to the test Redis (clones share it).
    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.conn.clone()
    }

    /// The keys under the prefix now.
    pub async fn keys(&self) -> Vec<String> {
        let mut conn = self.conn.clone();
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut conn)
            .await
            .unwrap()
    }

    /// Deletes every key under the prefix.
    pub async fn clean(&self) {
        let keys = self.keys().await;
        if !keys.is_empty() {
            let mut conn = self.conn.clone();
            let _: i64 = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime (or after it panicked):
        // clean up on a thread and runtime of its own, with a connection of
        // its own, and wait for it.
        let pattern = format!("{}*", self.prefix);
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let client = redis::Client::open(redis_url()).map_err(|e| e.to_string())?;
                let mut conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|e| e.to_string())?;
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(&pattern)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                if !keys.is_empty() {
                    let _: i64 = redis::cmd("DEL")
                        .arg(keys)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            })
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!(
                "could not delete the test's Redis keys {}: {e}",
                self.prefix
            ),
            Err(_) => eprintln!("could not delete the test's Redis keys {}", self.prefix),
        }
    }
}

/// A name no other test (in this process or another) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one(n);
    format!("{prefix}_{}_{n}_{random:016x}", std::process::id())
}

/// A fresh SQLite database: shared-cache in memory, private to the caller,
/// reachable by every connection of the returned pool (up to 8), with a
/// busy timeout so concurrent writers wait rather than fail. It lives as long
/// as the pool.
pub async fn sqlite_pool() -> SqlitePool {
    let url = format!(
        "sqlite:file:{}?mode=memory&cache=shared",
        unique_name("passlock_test")
    );
    let options = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .busy_timeout(Duration::from_secs(30));
    SqlitePoolOptions::new()
        .max_connections(8)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await
        .unwrap()
}

/// Drops the PostgreSQL database of [`pg_database`] when dropped (with
/// `WITH (FORCE)`, so open connections do not keep it alive).
#[derive(Debug)]
pub struct PgGuard {
    name: String,
    admin: PgConnectOptions,
}

impl PgGuard {
    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connect options for the database (to open more pools on it, like a
    /// second app instance would).
    pub fn options(&self) -> PgConnectOptions {
        self.admin.clone().database(&self.name)
    }

    /// Another pool on the same database.
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(10)
            .connect_with(self.options())
            .await
            .unwrap()
    }
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime: do the async work on a thread
        // of its own, and wait for it so the database is gone when the test ends.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let mut conn = admin.connect().await.map_err(|e| e.to_string())?;
                sqlx::raw_sql(&sql)
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("could not drop test database {}", self.name),
        }
    }
}

/// A fresh PostgreSQL database with a unique name, created through the
/// [`pg_url`] server, and a pool on it (10 connections). The guard drops the
/// database; keep it alive as long as the pool is used.
pub async fn pg_database() -> (PgPool, PgGuard) {
    let admin = PgConnectOptions::from_str(&pg_url()).unwrap();
    let name = unique_name("passlock_test");
    let mut conn = PgConnection::connect_with(&admin).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let guard = PgGuard { name, admin };
    let pool = guard.pool().await;
    (pool, guard)
}

/// The sign-in patterns guide (`docs/patterns.md`), here so that its code
/// blocks are compiled as doctests against both adapters.
#[doc = include_str!("../../docs/patterns.md")]
pub mod patterns {}

/// The README, here so that its Rust blocks (the complete axum and actix-web
/// apps among them) are compiled as doctests against both adapters.
#[doc = include_str!("../../README.md")]
pub mod readme {}

//! Production wiring in one call (`passlock_core::setup`): what the README
//! shows first. A passkey signed up through the routes survives a restart
//! (a new Passlock built the same way over the same database, with the
//! first one gone) on SQLite and on PostgreSQL, and one database serves two
//! instances at once.

use std::future::Future;
use std::sync::Arc;

use passlock_core::clock::ManualClock;
use passlock_core::provider::embedded::EmbeddedConfig;
use passlock_core::{Passlock, PasslockBuilder, setup};
use passlock_tests::{pg_database, unique_name};
use tower_sessions::MemoryStore;

use crate::axum::{AxumApp, app};
use crate::harness::{MemoryUsers, ORIGIN, World, authenticator};

fn config(clock: &ManualClock) -> EmbeddedConfig {
    EmbeddedConfig::new("localhost", "passlock tests", [ORIGIN]).with_clock(Arc::new(clock.clone()))
}

/// The app's part of the wiring: its sign-up hook, then `build`.
fn finish(builder: PasslockBuilder<i64>) -> Passlock<i64> {
    builder
        .sign_up(Arc::new(MemoryUsers::default()))
        .build()
        .unwrap()
}

fn world(passlock: Passlock<i64>, clock: &ManualClock) -> World<AxumApp> {
    World {
        app: AxumApp(app(passlock.clone(), MemoryStore::default())),
        passlock,
        clock: clock.clone(),
    }
}

/// Signs up on the instance `build` makes, drops it, and signs the same
/// passkey in on a new one: same user, same passkey, one link.
async fn a_passkey_survives_a_restart<F, Fut>(build: F)
where
    F: Fn(EmbeddedConfig) -> Fut,
    Fut: Future<Output = Passlock<i64>>,
{
    let clock = ManualClock::starting_now();
    let mut auth = authenticator();
    let (user, aid) = {
        let first = world(build(config(&clock)).await, &clock);
        let mut c = first.client();
        let (user, aid) = c.sign_up(&mut auth, "alice").await;
        assert_eq!(c.session_user().await, Some(user));
        (user, aid)
    };

    let restarted = world(build(config(&clock)).await, &clock);
    let mut c = restarted.client();
    let r = c.login(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], user.to_string());
    assert_eq!(r.json["authenticator_id"], aid.as_str());
    assert_eq!(restarted.links(user).await, vec![aid.clone()]);
    let r = c.step_up(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_sqlite_keeps_passkeys_across_a_restart() {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("passlock-setup")));
    let url = format!("sqlite://{}", path.display());
    a_passkey_survives_a_restart(|config| {
        let url = url.clone();
        async move {
            let pool = setup::open_sqlite(&url).await.unwrap();
            finish(setup::embedded_sqlite(&pool, config).await.unwrap())
        }
    })
    .await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_postgres_keeps_passkeys_across_a_restart() {
    let (_pool, db) = pg_database().await;
    a_passkey_survives_a_restart(|config| {
        let db = &db;
        async move {
            // Each "instance" opens its own pool, as a new process would.
            let pool = db.pool().await;
            finish(setup::embedded_postgres(&pool, config).await.unwrap())
        }
    })
    .await;
}

/// Wiring twice over one database at once (two instances starting
/// together) migrates once and both see the same passkeys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_wired_to_one_postgres_share_passkeys() {
    let (pool, db) = pg_database().await;
    let clock = ManualClock::starting_now();
    let other_pool = db.pool().await;
    let (a, b) = tokio::join!(
        setup::embedded_postgres::<i64>(&pool, config(&clock)),
        setup::embedded_postgres::<i64>(&other_pool, config(&clock)),
    );
    let a = world(finish(a.unwrap()), &clock);
    let b = world(finish(b.unwrap()), &clock);
    let mut auth = authenticator();
    let (user, aid) = a.client().sign_up(&mut auth, "bob").await;
    let mut c = b.client();
    let r = c.login(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], user.to_string());
    assert_eq!(b.links(user).await, vec![aid]);
}

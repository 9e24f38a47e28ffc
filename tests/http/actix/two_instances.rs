//! Two actix instances sharing Redis sessions and PostgreSQL stores: every
//! request goes to the other instance than the one before.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_session::storage::RedisSessionStore;
use actix_web::cookie::Key;
use passlock_actix::passlock_core::clock::ManualClock;
use passlock_actix::passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
use passlock_actix::passlock_core::store::postgres::{
    PgAuthenticatorStore, PgCeremonyStore, PgCredentialStore, migrate,
};
use passlock_core::Passlock;
use sqlx::PgPool;

use super::{ActixApp, app};
use crate::harness::{MemoryUsers, ORIGIN, Reply, TestApp, TestRequest, World, authenticator};

/// Round-robin over the instances.
struct Instances {
    apps: Vec<ActixApp>,
    next: AtomicUsize,
    served: Arc<[AtomicUsize; 2]>,
}

impl TestApp for Instances {
    async fn send(&self, req: TestRequest) -> Reply {
        let i = self.next.fetch_add(1, Ordering::SeqCst) % self.apps.len();
        self.served[i].fetch_add(1, Ordering::SeqCst);
        self.apps[i].send(req).await
    }
}

/// One instance's passlock: embedded provider and stores on `pool`.
async fn passlock(pool: PgPool, clock: &ManualClock, users: Arc<MemoryUsers>) -> Passlock<i64> {
    let provider = EmbeddedProvider::new(
        EmbeddedConfig::new("localhost", "passlock tests", [ORIGIN])
            .with_clock(Arc::new(clock.clone())),
        Arc::new(PgCredentialStore::new(pool.clone())),
        Arc::new(PgCeremonyStore::new(pool.clone())),
    )
    .await
    .unwrap();
    Passlock::builder(
        Arc::new(provider),
        Arc::new(PgAuthenticatorStore::<i64>::new(pool)),
    )
    .sign_up(users)
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap()
}

#[tokio::test]
async fn two_instances_share_redis_sessions_and_postgres_stores() {
    let (pool, guard) = passlock_tests::pg_database().await;
    migrate(&pool).await.unwrap();
    let clock = ManualClock::starting_now();
    // The app's users table stands in memory, shared like a database would be.
    let users = Arc::new(MemoryUsers::default());
    let key = Key::generate();
    // The sessions' keys, deleted when the test ends.
    let keys = passlock_tests::redis_prefix("passlock_actix").await;
    let prefix = keys.prefix().to_owned();
    let mut apps = Vec::new();
    for _ in 0..2 {
        let options = guard.options();
        let (clock, users, key, prefix) =
            (clock.clone(), users.clone(), key.clone(), prefix.clone());
        apps.push(ActixApp::start(move || async move {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .unwrap();
            let sessions = RedisSessionStore::builder(passlock_tests::redis_url())
                .cache_keygen(move |k| format!("{prefix}{k}"))
                .build()
                .await
                .unwrap();
            app(passlock(pool, &clock, users).await, sessions, key)
        }));
    }
    let served = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let w = World {
        app: Instances {
            apps,
            next: AtomicUsize::new(0),
            served: Arc::clone(&served),
        },
        passlock: passlock(pool.clone(), &clock, users).await,
        clock,
    };

    // Sign up: authorize, options, create, verification and register land on
    // alternating instances.
    let mut alice = w.client();
    let mut auth = authenticator();
    let (user, aid) = alice.sign_up(&mut auth, "alice").await;
    assert_eq!(alice.session_user().await, Some(user));
    assert_eq!(alice.session_user().await, Some(user), "on both instances");
    assert_eq!(w.links(user).await, vec![aid.clone()]);

    // A new browser logs in across the instances.
    let mut other = w.client();
    let r = other.login(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["user_id"], user.to_string());
    assert_eq!(other.session_user().await, Some(user));
    assert_eq!(other.session_user().await, Some(user));

    // Logout on one instance ends the session on both: a copy of the
    // cookie taken before the logout (the browser's jar drops it) is
    // signed out on each instance.
    let mut copy = w.client();
    copy.set_cookies(&other);
    let r = other
        .post_raw("/passkey/logout", "application/json", Vec::new())
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(other.session_user().await, None);
    assert_eq!(
        copy.session_user().await,
        None,
        "the copied cookie, one instance"
    );
    assert_eq!(
        copy.session_user().await,
        None,
        "the copied cookie, the other"
    );
    assert_eq!(
        copy.get("/app/me").await.json["user_id"],
        serde_json::Value::Null
    );
    let r = alice
        .post_raw("/passkey/logout", "application/json", Vec::new())
        .await;
    assert_eq!(r.status, 204, "{r:?}");

    assert!(
        served.iter().all(|n| n.load(Ordering::SeqCst) > 5),
        "{served:?}"
    );
    drop(w);
    pool.close().await;
    drop(guard);
}

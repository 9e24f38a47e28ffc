//! A complete passkey sign-in and sign-up through passlock's axum router,
//! in process, against the webauthn-rs tutorial flow (the peer a user
//! would write instead), on memory and on SQLite stores, in one run.
//!
//! * passlock, sign-in: `POST /passkey/authentication/authorize`, the
//!   embedded provider's options route, (the software authenticator signs,
//!   untimed), its verification route, `POST /passkey/login` with the
//!   code: single-use tokens and codes, the replay records, the throttle
//!   (a fresh client address per sign-in), the session record and a new
//!   session id. Sign-up: the registration routes, then
//!   `POST /passkey/register` (the app's sign-up hook, the link store).
//! * tutorial, sign-in: the webauthn-rs tutorial's routes, made
//!   discoverable: `start_discoverable_authentication` with its state in
//!   the tower-sessions session, (the authenticator signs, untimed), then
//!   `identify_discoverable_authentication`, the user's passkey looked up,
//!   `finish_discoverable_authentication_v2`, the counter written back when
//!   it moved, the user id put in the session. Sign-up:
//!   `start_passkey_registration` / `finish_passkey_registration`, the
//!   passkey stored. Its passkeys live in a `Mutex<HashMap>` (the
//!   tutorial's) or in one SQLite table.
//!
//! Both sides use the same tower-sessions memory store, the same software
//! authenticator and, on SQLite, a database file each in WAL mode with
//! `synchronous = NORMAL`. Every request goes through `Router::oneshot` on
//! a current-thread runtime: one core.
//!
//! The two sides of a group run in alternating rounds (the order flipped
//! every round) so that drifting background load hits both alike; each
//! side's figure is the median of its rounds' mean times, and the ratio is
//! tutorial time / passlock time (passlock's rate as a fraction of the
//! tutorial's).
//!
//! Run: `cargo bench -p bench-server --bench signin -- [ROUNDS] [ITERATIONS]`
//! (default 5 rounds of 100 operations per side); `scripts/bench-peers`
//! runs it with the HTTP guard comparison.
//!
//! `cargo bench -p bench-server --bench signin -- --scaling [SIZES]
//! [ITERATIONS]` measures instead the cost as the work grows: passlock
//! sign-ins per second on one core with SIZES (comma-separated, default
//! `1000,100000,1000000`) credentials and links of other users stored in
//! SQLite, then in PostgreSQL (a fresh database on the test suite's server,
//! `PASSLOCK_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/test`,
//! made and dropped by `passlock_tests::pg_database`),
//! then with 10,000 and 100,000 pending ceremonies in the memory
//! ceremony store, and the resident memory each pending ceremony and each
//! signed-in session (tower-sessions memory store) adds (read from
//! `/proc/self/statm`: a counting allocator would need `unsafe`).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use passlock_core::provider::embedded::{
    CeremonyStore, CredentialStore, EmbeddedConfig, EmbeddedProvider, MemoryCeremonyStore,
    MemoryCredentialStore,
};
use passlock_core::store::postgres;
use passlock_core::store::sqlite::{
    SqliteAuthenticatorStore, SqliteCeremonyStore, SqliteCredentialStore, migrate,
};
use passlock_core::store::{AuthenticatorStore, MemoryAuthenticatorStore};
use passlock_core::{Passlock, SignUpError, SignUpHook};
use passlock_test::authenticator::SoftAuthenticator;
use serde_json::{Value, json};
use sqlx::SqlitePool;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Mutex;
use tower::ServiceExt;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

const ORIGIN: &str = "http://localhost:3000";

type Runtime = tokio::runtime::Runtime;

// ---------------------------------------------------------------------------
// In-process requests
// ---------------------------------------------------------------------------

/// One client of one router: its session cookie, its address.
struct Client {
    router: Router,
    cookie: Option<String>,
    addr: SocketAddr,
}

impl Client {
    fn new(router: &Router, addr: SocketAddr) -> Self {
        Self {
            router: router.clone(),
            cookie: None,
            addr,
        }
    }

    /// POSTs `body` as JSON with `Origin`, the cookie and the client
    /// address; keeps the session cookie; panics unless 2xx.
    async fn post(&mut self, path: &str, body: &Value) -> Value {
        let mut req = Request::builder()
            .method("POST")
            .uri(path)
            .header("origin", ORIGIN)
            .header("content-type", "application/json");
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let mut req = req.body(Body::from(body.to_string())).unwrap();
        req.extensions_mut().insert(ConnectInfo(self.addr));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        for set in res.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (name, _) = set.split_once('=').unwrap();
            let pair = set.split(';').next().unwrap();
            let mut jar: Vec<&str> = self
                .cookie
                .as_deref()
                .unwrap_or("")
                .split("; ")
                .filter(|c| !c.is_empty() && c.split_once('=').is_some_and(|(n, _)| n != name))
                .collect();
            if !set.contains("Max-Age=0") {
                jar.push(pair);
            }
            self.cookie = (!jar.is_empty()).then(|| jar.join("; "));
        }
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }
}

impl Client {
    /// Whether the client holds a tower-sessions session cookie.
    fn has_session(&self) -> bool {
        self.cookie
            .as_deref()
            .is_some_and(|c| c.split("; ").any(|p| p.starts_with("id=")))
    }

    /// The session id, from the session cookie.
    fn session_id(&self) -> String {
        let c = self.cookie.as_deref().unwrap();
        c.split("; ")
            .find_map(|p| p.strip_prefix("id="))
            .unwrap()
            .to_owned()
    }
}

/// A distinct client address per sign-in (passlock throttles ceremonies
/// per address; a real site's clients come from many).
fn address(n: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0x0a00_0000 | (n & 0x00ff_ffff)), 40000))
}

// ---------------------------------------------------------------------------
// passlock
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Users(AtomicI64);

#[async_trait::async_trait]
impl SignUpHook<i64> for Users {
    async fn create_user(&self, _username: &str) -> Result<i64, SignUpError> {
        Ok(self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
    async fn abandon_user(&self, _user: &i64) -> Result<(), SignUpError> {
        Ok(())
    }
}

/// A database file in WAL mode with `synchronous = NORMAL` (durable
/// across a crash of the process; the last commits may be lost on a power
/// cut, as the stores' docs say).
async fn sqlite_pool(dir: &std::path::Path, name: &str) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(dir.join(name))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30));
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap()
}

async fn passlock_router(sqlite: Option<SqlitePool>) -> Router {
    passlock_app(sqlite.map_or(Db::Memory, Db::Sqlite)).await.0
}

/// Where passlock keeps its passkeys, links and ceremonies.
enum Db {
    Memory,
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The router, its embedded provider and its session store.
async fn passlock_app(db: Db) -> (Router, EmbeddedProvider, MemoryStore) {
    let config = EmbeddedConfig::new("localhost", "Bench", [ORIGIN]);
    let (provider, links): (EmbeddedProvider, Arc<dyn AuthenticatorStore<i64>>) = match db {
        Db::Memory => {
            // Room for the scaling run's 100,000 pending ceremonies (two
            // entries each: the authorization and the options state); the
            // default cap is 100,000 entries.
            let ceremonies = MemoryCeremonyStore::new().with_capacity(1_000_000);
            (
                EmbeddedProvider::new(
                    config,
                    Arc::new(MemoryCredentialStore::new()),
                    Arc::new(ceremonies),
                )
                .await
                .unwrap(),
                Arc::new(MemoryAuthenticatorStore::<i64>::new()),
            )
        }
        Db::Postgres(pool) => {
            postgres::migrate(&pool).await.unwrap();
            let credentials: Arc<dyn CredentialStore> =
                Arc::new(postgres::PgCredentialStore::new(pool.clone()));
            let ceremonies: Arc<dyn CeremonyStore> =
                Arc::new(postgres::PgCeremonyStore::new(pool.clone()));
            (
                EmbeddedProvider::new(config, credentials, ceremonies)
                    .await
                    .unwrap(),
                Arc::new(postgres::PgAuthenticatorStore::<i64>::new(pool)),
            )
        }
        Db::Sqlite(pool) => {
            migrate(&pool).await.unwrap();
            let credentials: Arc<dyn CredentialStore> =
                Arc::new(SqliteCredentialStore::new(pool.clone()));
            let ceremonies: Arc<dyn CeremonyStore> =
                Arc::new(SqliteCeremonyStore::new(pool.clone()));
            (
                EmbeddedProvider::new(config, credentials, ceremonies)
                    .await
                    .unwrap(),
                Arc::new(SqliteAuthenticatorStore::<i64>::new(pool)),
            )
        }
    };
    let passlock: Passlock<i64> = Passlock::builder(Arc::new(provider.clone()), links)
        .origins([ORIGIN])
        .sign_up(Arc::new(Users::default()))
        .build()
        .unwrap();
    let sessions = MemoryStore::default();
    let router = Router::new()
        .merge(passlock_axum::router(passlock.clone()))
        .with_state(passlock)
        .layer(SessionManagerLayer::new(sessions.clone()).with_secure(false));
    (router, provider, sessions)
}

fn ceremony_base(a: &Value) -> String {
    format!(
        "{}/v2/{}/passkey",
        a["endpoint"].as_str().unwrap(),
        a["tenancyId"].as_str().unwrap()
    )
}

/// passlock sign-in, timed parts only; the authenticator's part untimed.
async fn passlock_sign_in(router: &Router, auth: &mut SoftAuthenticator, n: u32) -> Duration {
    let mut c = Client::new(router, address(n));
    let t = Instant::now();
    let a = c
        .post("/passkey/authentication/authorize", &json!({}))
        .await;
    let base = ceremony_base(&a);
    let o = c
        .post(
            &format!("{base}/authentication/options"),
            &json!({ "authenticationToken": a["authenticationToken"] }),
        )
        .await;
    let mut timed = t.elapsed();
    let response = auth.get(&o["optionsJSON"]).await.unwrap();
    let t = Instant::now();
    let v = c
        .post(
            &format!("{base}/authentication/verification"),
            &json!({ "response": response, "sessionToken": o["sessionToken"] }),
        )
        .await;
    c.post("/passkey/login", &json!({ "code": v["code"] }))
        .await;
    timed += t.elapsed();
    assert!(c.has_session(), "no session after login");
    timed
}

/// passlock sign-up of user `n`, timed parts only.
async fn passlock_sign_up(router: &Router, auth: &mut SoftAuthenticator, n: u32) -> Duration {
    let mut c = Client::new(router, address(n));
    let t = Instant::now();
    let a = c
        .post(
            "/passkey/registration/authorize",
            &json!({ "username": format!("user{n}") }),
        )
        .await;
    let base = ceremony_base(&a);
    let o = c
        .post(
            &format!("{base}/registration/options"),
            &json!({ "registrationToken": a["registrationToken"] }),
        )
        .await;
    let mut timed = t.elapsed();
    let response = auth.create(&o["optionsJSON"]).await.unwrap();
    auth.clear();
    let t = Instant::now();
    let v = c
        .post(
            &format!("{base}/registration/verification"),
            &json!({ "response": response, "sessionToken": o["sessionToken"] }),
        )
        .await;
    c.post("/passkey/register", &json!({ "code": v["code"] }))
        .await;
    timed += t.elapsed();
    assert!(c.has_session(), "no session after sign-up");
    timed
}

// ---------------------------------------------------------------------------
// The webauthn-rs tutorial flow
// ---------------------------------------------------------------------------

/// Where the tutorial keeps passkeys.
#[derive(Clone)]
enum Keys {
    /// The tutorial's own: user id to passkeys, behind an async mutex.
    Memory(Arc<Mutex<HashMap<Uuid, Vec<Passkey>>>>),
    /// One table: credential id, user id, username, passkey JSON.
    Sqlite(SqlitePool),
}

#[derive(Clone)]
struct Tutorial {
    webauthn: Arc<Webauthn>,
    keys: Keys,
}

type Answer<T> = Result<T, StatusCode>;

fn bad<E>(_: E) -> StatusCode {
    StatusCode::BAD_REQUEST
}

fn fail<E>(_: E) -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn start_register(
    State(app): State<Tutorial>,
    session: Session,
    Path(username): Path<String>,
) -> Answer<Json<Value>> {
    let _ = session.remove_value("reg_state").await;
    let user_unique_id = Uuid::new_v4();
    let (ccr, reg_state) = app
        .webauthn
        .start_passkey_registration(user_unique_id, &username, &username, None)
        .map_err(fail)?;
    session
        .insert("reg_state", (username, user_unique_id, reg_state))
        .await
        .map_err(fail)?;
    Ok(Json(serde_json::to_value(ccr).map_err(fail)?))
}

async fn finish_register(
    State(app): State<Tutorial>,
    session: Session,
    Json(reg): Json<RegisterPublicKeyCredential>,
) -> Answer<StatusCode> {
    let (username, user_unique_id, reg_state): (String, Uuid, PasskeyRegistration) = session
        .get("reg_state")
        .await
        .map_err(fail)?
        .ok_or(StatusCode::BAD_REQUEST)?;
    let _ = session.remove_value("reg_state").await;
    let passkey = app
        .webauthn
        .finish_passkey_registration(&reg, &reg_state)
        .map_err(bad)?;
    match &app.keys {
        Keys::Memory(keys) => keys
            .lock()
            .await
            .entry(user_unique_id)
            .or_default()
            .push(passkey),
        Keys::Sqlite(pool) => {
            sqlx::query(
                "INSERT INTO tutorial_passkey (cred_id, user_id, username, passkey) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(passkey.cred_id().as_slice())
            .bind(user_unique_id.as_bytes().as_slice())
            .bind(&username)
            .bind(serde_json::to_string(&passkey).map_err(fail)?)
            .execute(pool)
            .await
            .map_err(fail)?;
        }
    }
    Ok(StatusCode::OK)
}

async fn start_authentication(
    State(app): State<Tutorial>,
    session: Session,
) -> Answer<Json<Value>> {
    let _ = session.remove_value("auth_state").await;
    let (rcr, auth_state) = app
        .webauthn
        .start_discoverable_authentication()
        .map_err(fail)?;
    session
        .insert("auth_state", auth_state)
        .await
        .map_err(fail)?;
    Ok(Json(serde_json::to_value(rcr).map_err(fail)?))
}

async fn finish_authentication(
    State(app): State<Tutorial>,
    session: Session,
    Json(auth): Json<PublicKeyCredential>,
) -> Answer<StatusCode> {
    let auth_state: DiscoverableAuthentication = session
        .get("auth_state")
        .await
        .map_err(fail)?
        .ok_or(StatusCode::BAD_REQUEST)?;
    let _ = session.remove_value("auth_state").await;
    let (user_unique_id, cred_id) = app
        .webauthn
        .identify_discoverable_authentication(&auth)
        .map_err(bad)?;
    match &app.keys {
        Keys::Memory(keys) => {
            let mut keys = keys.lock().await;
            let passkey = keys
                .get_mut(&user_unique_id)
                .and_then(|ks| ks.iter_mut().find(|k| k.cred_id().as_slice() == cred_id))
                .ok_or(StatusCode::UNAUTHORIZED)?;
            let result = app
                .webauthn
                .finish_discoverable_authentication_v2(&auth, auth_state, &*passkey)
                .map_err(|_| StatusCode::UNAUTHORIZED)?;
            passkey.update_credential(&result);
        }
        Keys::Sqlite(pool) => {
            let (json,): (String,) = sqlx::query_as(
                "SELECT passkey FROM tutorial_passkey WHERE cred_id = ? AND user_id = ?",
            )
            .bind(cred_id)
            .bind(user_unique_id.as_bytes().as_slice())
            .fetch_optional(pool)
            .await
            .map_err(fail)?
            .ok_or(StatusCode::UNAUTHORIZED)?;
            let mut passkey: Passkey = serde_json::from_str(&json).map_err(fail)?;
            let result = app
                .webauthn
                .finish_discoverable_authentication_v2(&auth, auth_state, &passkey)
                .map_err(|_| StatusCode::UNAUTHORIZED)?;
            if passkey.update_credential(&result) == Some(true) {
                sqlx::query("UPDATE tutorial_passkey SET passkey = ? WHERE cred_id = ?")
                    .bind(serde_json::to_string(&passkey).map_err(fail)?)
                    .bind(cred_id)
                    .execute(pool)
                    .await
                    .map_err(fail)?;
            }
        }
    }
    session
        .insert("user_id", user_unique_id)
        .await
        .map_err(fail)?;
    Ok(StatusCode::OK)
}

async fn tutorial_router(sqlite: Option<SqlitePool>) -> Router {
    let webauthn = WebauthnBuilder::new("localhost", &Url::parse(ORIGIN).unwrap())
        .unwrap()
        .rp_name("Bench")
        .build()
        .unwrap();
    let keys = match sqlite {
        None => Keys::Memory(Arc::default()),
        Some(pool) => {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS tutorial_passkey (cred_id BLOB PRIMARY KEY, \
                 user_id BLOB NOT NULL, username TEXT NOT NULL, passkey TEXT NOT NULL)",
            )
            .execute(&pool)
            .await
            .unwrap();
            Keys::Sqlite(pool)
        }
    };
    Router::new()
        .route("/register_start/{username}", post(start_register))
        .route("/register_finish", post(finish_register))
        .route("/login_start", post(start_authentication))
        .route("/login_finish", post(finish_authentication))
        .with_state(Tutorial {
            webauthn: Arc::new(webauthn),
            keys,
        })
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false))
}

async fn tutorial_sign_in(router: &Router, auth: &mut SoftAuthenticator, n: u32) -> Duration {
    let mut c = Client::new(router, address(n));
    let t = Instant::now();
    let rcr = c.post("/login_start", &Value::Null).await;
    let mut timed = t.elapsed();
    let response = auth.get(&rcr["publicKey"]).await.unwrap();
    let t = Instant::now();
    c.post("/login_finish", &response).await;
    timed += t.elapsed();
    assert!(c.has_session(), "no session after login");
    timed
}

async fn tutorial_sign_up(router: &Router, auth: &mut SoftAuthenticator, n: u32) -> Duration {
    let mut c = Client::new(router, address(n));
    let t = Instant::now();
    let ccr = c
        .post(&format!("/register_start/user{n}"), &Value::Null)
        .await;
    let mut timed = t.elapsed();
    let response = auth.create(&ccr["publicKey"]).await.unwrap();
    auth.clear();
    let t = Instant::now();
    c.post("/register_finish", &response).await;
    timed += t.elapsed();
    timed
}

// ---------------------------------------------------------------------------
// Cost as the work grows
// ---------------------------------------------------------------------------

/// Resident memory of this process, in bytes (`/proc/self/statm`).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Rounds per point of the scaling curve.
const SCALING_ROUNDS: u32 = 5;

/// Sign-ins per second: the median of [`SCALING_ROUNDS`] rounds of
/// `iterations` passlock sign-ins (timed parts).
async fn sign_ins_per_second(
    router: &Router,
    auth: &mut SoftAuthenticator,
    from: u32,
    iterations: u32,
) -> f64 {
    let mut rates = Vec::new();
    for round in 0..SCALING_ROUNDS {
        let mut total = Duration::ZERO;
        for i in 0..iterations {
            total += passlock_sign_in(router, auth, from + round * iterations + i).await;
        }
        rates.push(f64::from(iterations) / total.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Adds `count` passkeys of other users (credentials and their links,
/// rows as the stores write them, ids unlike any real one) in one
/// transaction.
async fn fill_sqlite(pool: &SqlitePool, from: u64, count: u64) {
    let mut tx = pool.begin().await.unwrap();
    let (from, to) = (
        i64::try_from(from).unwrap(),
        i64::try_from(from + count).unwrap(),
    );
    sqlx::query(
        "WITH RECURSIVE s(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?) \
         INSERT INTO passlock_credential (credential_id, user_handle, username, passkey_json, \
         created_at, last_used_at, sign_count, backup_eligible, backup_state) \
         SELECT 'filler-credential-' || i, 'filler-handle-' || i, 'filler' || i, '{}', 0, NULL, 0, 0, 0 FROM s",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "WITH RECURSIVE s(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?) \
         INSERT INTO passlock_authenticator (authenticator_id, user_id, created_at, last_used_at) \
         SELECT 'filler-credential-' || i, CAST(i + 1000000000 AS TEXT), 0, NULL FROM s",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // As SQLite's automatic checkpoints would have done along the way.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool)
        .await
        .unwrap();
}

/// [`fill_sqlite`] on PostgreSQL, then `ANALYZE` (as autovacuum would).
async fn fill_postgres(pool: &PgPool, from: u64, count: u64) {
    let (from, to) = (
        i64::try_from(from).unwrap(),
        i64::try_from(from + count).unwrap() - 1,
    );
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO passlock_credential (credential_id, user_handle, username, passkey_json, \
         created_at, last_used_at, sign_count, backup_eligible, backup_state) \
         SELECT 'filler-credential-' || i, 'filler-handle-' || i, 'filler' || i, '{}', 0, NULL, 0, \
         false, false FROM generate_series($1::bigint, $2::bigint) AS i",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO passlock_authenticator (authenticator_id, user_id, created_at, last_used_at) \
         SELECT 'filler-credential-' || i, (i + 1000000000)::text, 0, NULL \
         FROM generate_series($1::bigint, $2::bigint) AS i",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE passlock_credential, passlock_authenticator")
        .execute(pool)
        .await
        .unwrap();
}

/// A pending ceremony: authorized and its options issued (the challenge
/// state stored), never finished.
async fn pending_ceremony(provider: &EmbeddedProvider) {
    use passlock_core::provider::embedded::BrowserOp;
    use passlock_core::provider::{AuthenticationRequest, PasskeyProvider};
    let token = provider
        .authorize_authentication(AuthenticationRequest::discoverable())
        .await
        .unwrap()
        .token;
    let body = json!({ "authenticationToken": token.expose_secret() }).to_string();
    let res = provider
        .handle(
            "embedded",
            BrowserOp::AuthenticationOptions,
            body.as_bytes(),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
}

/// A passlock bench over `router` with one user signed up, its
/// authenticator keeping the credential for the sign-ins to come.
async fn signed_up(router: Router) -> Bench {
    let mut b = Bench {
        side: Side::Passlock,
        router,
        auth: SoftAuthenticator::new(ORIGIN),
        n: 1,
    };
    let mut keep = std::mem::replace(&mut b.auth, SoftAuthenticator::new(ORIGIN));
    b.sign_up_keeping_credential(&mut keep).await;
    b.auth = keep;
    b
}

/// The database a scaling curve adds other users' rows to.
enum Rows<'a> {
    Sqlite(&'a SqlitePool),
    Postgres(&'a PgPool),
}

/// Sign-ins per second of `b` after the database holds each of `sizes`
/// credentials and links of other users.
async fn stored_curve(mut b: Bench, rows: Rows<'_>, sizes: &[u64], iterations: u32) {
    let mut stored = 0;
    let mut n = 1;
    for &size in sizes {
        let name = match rows {
            Rows::Sqlite(pool) => {
                fill_sqlite(pool, stored, size - stored).await;
                "sqlite"
            }
            Rows::Postgres(pool) => {
                fill_postgres(pool, stored, size - stored).await;
                "postgres"
            }
        };
        stored = size;
        let rate = sign_ins_per_second(&b.router, &mut b.auth, n, iterations).await;
        n += iterations * SCALING_ROUNDS;
        println!("{name:8} {size:>9} stored credentials and links: {rate:8.0} sign-ins/s");
    }
}

fn scaling(rt: &Runtime, dir: &std::path::Path, iterations: u32, sizes: &[u64]) {
    println!(
        "passlock sign-ins per second on one core (median of {SCALING_ROUNDS} rounds of {iterations} sign-ins per point, timed parts)"
    );
    rt.block_on(async {
        // SQLite: N stored credentials and links of other users.
        let pool = sqlite_pool(dir, "scaling.db").await;
        let b = signed_up(passlock_app(Db::Sqlite(pool.clone())).await.0).await;
        stored_curve(b, Rows::Sqlite(&pool), sizes, iterations).await;

        // PostgreSQL: the same curve on a fresh database.
        // The test suite's fresh database (`passlock_tests::pg_database`),
        // dropped with its guard.
        let (pg, guard) = passlock_tests::pg_database().await;
        let b = signed_up(passlock_app(Db::Postgres(pg.clone())).await.0).await;
        stored_curve(b, Rows::Postgres(&pg), sizes, iterations).await;
        pg.close().await;
        drop(guard);

        // Memory: N pending ceremonies in the ceremony store.
        let (router, provider, sessions) = passlock_app(Db::Memory).await;
        let mut b = signed_up(router).await;
        let mut n = 1;
        let rate = sign_ins_per_second(&b.router, &mut b.auth, n, iterations).await;
        n += iterations * SCALING_ROUNDS;
        println!("memory  {:>9} pending ceremonies:            {rate:8.0} sign-ins/s", 0);
        let mut pending = 0u64;
        for target in [10_000u64, 100_000] {
            let before = rss();
            for _ in pending..target {
                pending_ceremony(&provider).await;
            }
            let grown = rss().saturating_sub(before);
            let added = target - pending;
            pending = target;
            let rate = sign_ins_per_second(&b.router, &mut b.auth, n, iterations).await;
            n += iterations * SCALING_ROUNDS;
            println!(
                "memory  {target:>9} pending ceremonies:            {rate:8.0} sign-ins/s; resident memory grew {} bytes per added ceremony",
                grown / added
            );
        }

        // Bytes per session: copies of a signed-in session's record.
        use tower_sessions::SessionStore;
        use tower_sessions::session::{Id, Record};
        let mut c = Client::new(&b.router, address(0));
        let a = c.post("/passkey/authentication/authorize", &json!({})).await;
        let base = ceremony_base(&a);
        let o = c
            .post(
                &format!("{base}/authentication/options"),
                &json!({ "authenticationToken": a["authenticationToken"] }),
            )
            .await;
        let response = b.auth.get(&o["optionsJSON"]).await.unwrap();
        let v = c
            .post(
                &format!("{base}/authentication/verification"),
                &json!({ "response": response, "sessionToken": o["sessionToken"] }),
            )
            .await;
        c.post("/passkey/login", &json!({ "code": v["code"] })).await;
        let id: Id = c.session_id().parse().unwrap();
        let record = sessions.load(&id).await.unwrap().unwrap();
        let count = 100_000u32;
        let before = rss();
        for _ in 0..count {
            let mut copy = Record {
                id: Id::default(),
                data: record.data.clone(),
                expiry_date: record.expiry_date,
            };
            sessions.create(&mut copy).await.unwrap();
        }
        let grown = rss().saturating_sub(before);
        println!(
            "memory  {count:>9} signed-in sessions (tower-sessions MemoryStore): resident memory grew {} bytes per session; the record is {} bytes of JSON",
            grown / u64::from(count),
            serde_json::to_vec(&record).unwrap().len()
        );
    });
}

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Passlock,
    Tutorial,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    SignIn,
    SignUp,
}

/// One side of a group: its router, its authenticator, its running count.
struct Bench {
    side: Side,
    router: Router,
    auth: SoftAuthenticator,
    n: u32,
}

impl Bench {
    async fn new(side: Side, op: Op, sqlite: Option<SqlitePool>) -> Self {
        let router = match side {
            Side::Passlock => passlock_router(sqlite).await,
            Side::Tutorial => tutorial_router(sqlite).await,
        };
        let mut b = Self {
            side,
            router,
            auth: SoftAuthenticator::new(ORIGIN),
            n: 1,
        };
        if op == Op::SignIn {
            // The one passkey every sign-in uses, registered untimed.
            let mut keep = SoftAuthenticator::new(ORIGIN);
            std::mem::swap(&mut keep, &mut b.auth);
            b.sign_up_keeping_credential(&mut keep).await;
            b.auth = keep;
        }
        b
    }

    async fn sign_up_keeping_credential(&mut self, auth: &mut SoftAuthenticator) {
        // Same routes as a timed sign-up, but the credential stays.
        let mut c = Client::new(&self.router, address(0));
        match self.side {
            Side::Passlock => {
                let a = c
                    .post(
                        "/passkey/registration/authorize",
                        &json!({ "username": "signin" }),
                    )
                    .await;
                let base = ceremony_base(&a);
                let o = c
                    .post(
                        &format!("{base}/registration/options"),
                        &json!({ "registrationToken": a["registrationToken"] }),
                    )
                    .await;
                let response = auth.create(&o["optionsJSON"]).await.unwrap();
                let v = c
                    .post(
                        &format!("{base}/registration/verification"),
                        &json!({ "response": response, "sessionToken": o["sessionToken"] }),
                    )
                    .await;
                c.post("/passkey/register", &json!({ "code": v["code"] }))
                    .await;
            }
            Side::Tutorial => {
                let ccr = c.post("/register_start/signin", &Value::Null).await;
                let response = auth.create(&ccr["publicKey"]).await.unwrap();
                c.post("/register_finish", &response).await;
            }
        }
    }

    /// `iterations` operations; answers the mean timed part.
    async fn run(&mut self, op: Op, iterations: u32) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iterations {
            self.n += 1;
            total += match (self.side, op) {
                (Side::Passlock, Op::SignIn) => {
                    passlock_sign_in(&self.router, &mut self.auth, self.n).await
                }
                (Side::Passlock, Op::SignUp) => {
                    passlock_sign_up(&self.router, &mut self.auth, self.n).await
                }
                (Side::Tutorial, Op::SignIn) => {
                    tutorial_sign_in(&self.router, &mut self.auth, self.n).await
                }
                (Side::Tutorial, Op::SignUp) => {
                    tutorial_sign_up(&self.router, &mut self.auth, self.n).await
                }
            };
        }
        total / iterations
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn micros(d: &Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

#[allow(clippy::too_many_arguments)]
fn group(
    rt: &Runtime,
    dir: &std::path::Path,
    name: &str,
    op: Op,
    sqlite: bool,
    rounds: u32,
    iterations: u32,
) {
    let (mut passlock, mut tutorial) = rt.block_on(async {
        let pool = |side: &str| {
            let file = format!("{name}-{side}.db");
            async move {
                if sqlite {
                    Some(sqlite_pool(dir, &file).await)
                } else {
                    None
                }
            }
        };
        (
            Bench::new(Side::Passlock, op, pool("passlock").await).await,
            Bench::new(Side::Tutorial, op, pool("tutorial").await).await,
        )
    });
    // Warm-up: a tenth of a round each.
    rt.block_on(passlock.run(op, iterations.div_ceil(10)));
    rt.block_on(tutorial.run(op, iterations.div_ceil(10)));
    let (mut p, mut t) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            p.push(rt.block_on(passlock.run(op, iterations)));
            t.push(rt.block_on(tutorial.run(op, iterations)));
        } else {
            t.push(rt.block_on(tutorial.run(op, iterations)));
            p.push(rt.block_on(passlock.run(op, iterations)));
        }
    }
    let rounds_of = |v: &[Duration]| v.iter().map(micros).collect::<Vec<_>>().join(" ");
    let (pm, tm) = (median(p.clone()), median(t.clone()));
    println!(
        "{name:15} passlock {:>8} us  tutorial {:>8} us  ratio {:.2}  (rounds, us: passlock {}; tutorial {})",
        micros(&pm),
        micros(&tm),
        tm.as_secs_f64() / pm.as_secs_f64(),
        rounds_of(&p),
        rounds_of(&t),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; numbers are positional. `--scaling
    // [SIZES]`: the cost as the work grows instead (SIZES: stored
    // credentials, comma-separated, default 1000,100000,1000000).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let numbers: Vec<u32> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let rounds = numbers.first().copied().unwrap_or(5).max(1);
    let iterations = numbers.get(1).copied().unwrap_or(100).max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("passlock-signin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if args.iter().any(|a| a == "--scaling") {
        let sizes: Vec<u64> = args.iter().find(|s| s.contains(',')).map_or_else(
            || vec![1_000, 100_000, 1_000_000],
            |s| {
                s.split(',')
                    .filter(|n| !n.is_empty())
                    .map(|n| n.parse().unwrap())
                    .collect()
            },
        );
        scaling(
            &rt,
            &dir,
            numbers.first().copied().unwrap_or(200).max(1),
            &sizes,
        );
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    println!(
        "complete sign-in and sign-up in process, {rounds} alternating rounds of {iterations}; \
         ratio = tutorial time / passlock time (goal >= 0.90)"
    );
    for (name, op, sqlite) in [
        ("signin_memory", Op::SignIn, false),
        ("signin_sqlite", Op::SignIn, true),
        ("signup_memory", Op::SignUp, false),
        ("signup_sqlite", Op::SignUp, true),
    ] {
        group(&rt, &dir, name, op, sqlite, rounds, iterations);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

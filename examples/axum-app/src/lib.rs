//! The axum example app: passkey sign-in with the embedded provider, SQLite
//! for passkeys, ceremonies, sessions and the app's own users table.
//!
//! The page shows the three sign-in patterns (see `docs/patterns.md`):
//! passkey only; password *or* passkey (a password user without a passkey,
//! or every user with [`AppConfig::passkey_required_as_second_factor`] off);
//! password *then* passkey (a user who has a passkey and signs in with the
//! password: the page asks for the passkey as a second factor).
//!
//! `cargo run -p axum-app` serves <http://localhost:3000>
//! (`PASSWORD_OR_PASSKEY=1` turns the second-factor requirement off). Tests
//! build the same app with [`build_app`] on any port.
//!
//! With a `postgres://` database URL every store (passkeys, ceremonies, the
//! users table and, unless Redis is given, sessions) is in PostgreSQL; with
//! [`AppConfig::redis_url`] sessions are in Redis. Several instances over
//! the same PostgreSQL and Redis serve the same users (see `scripts/soak`).
//! The password routes are mounted on SQLite only.

mod password;

use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

use example_support::{Db, INDEX_HTML, RECOVERY_JS, build_passlock, open_stores};
use passlock_axum::passlock_core::recovery::{LogMailer, Mailer};
use passlock_axum::passlock_core::{Passlock, Policy};
use passlock_axum::{PasskeyUser, SignedInUser, StepUp};
use serde_json::{Value, json};
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration;
use tower_sessions::{Expiry, SessionManagerLayer, SessionStore};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config as RedisConfig, Pool};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

pub use example_support::{BoxError, HostedSettings};

/// Where the app runs and what it stores into.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The origin browsers use, e.g. `http://localhost:3000` (the RP ID is
    /// its host).
    pub origin: String,
    /// The database: SQLite (e.g. `sqlite://passlock-example.db`, created
    /// if missing) or PostgreSQL (`postgres://...`, the database must exist).
    pub database_url: String,
    /// Keep sessions in Redis (e.g. `redis://127.0.0.1:6379`) instead of
    /// the database.
    pub redis_url: Option<String>,
    /// Use hosted Passlock instead of the embedded provider.
    pub hosted: Option<HostedSettings>,
    /// Sends account recovery codes; [`LogMailer`] (the code in the
    /// log, for development) by default. The browser tests put a capturing
    /// mailer here.
    pub recovery_mailer: Arc<dyn Mailer>,
    /// Users who have a passkey must use it after their password (the
    /// policy switch of the same name; default `true`).
    pub passkey_required_as_second_factor: bool,
}

impl AppConfig {
    /// `http://localhost:{port}` with the database at `database_url`.
    pub fn localhost(port: u16, database_url: impl Into<String>) -> Self {
        Self {
            origin: format!("http://localhost:{port}"),
            database_url: database_url.into(),
            redis_url: None,
            hosted: None,
            recovery_mailer: Arc::new(LogMailer),
            passkey_required_as_second_factor: true,
        }
    }
}

/// Builds the whole app: stores (migrated), provider (embedded, or hosted
/// Passlock when [`AppConfig::hosted`] is set), passlock routes under
/// `/passkey`, the page at `/`, `GET /api/me` (any complete sign-in),
/// `POST /api/sensitive` (a passkey step-up within 60 seconds), the password
/// routes `POST /api/password/signup` and `POST /api/password/login` (on
/// SQLite), and the session layer.
pub async fn build_app(config: AppConfig) -> Result<Router, BoxError> {
    let stores = open_stores(&config.database_url).await?;

    let mut policy = Policy::default();
    policy.passkey_required_as_second_factor = config.passkey_required_as_second_factor;
    let passlock = build_passlock(
        &stores,
        &config.origin,
        config.hosted.as_ref(),
        policy,
        config.recovery_mailer.clone(),
    )
    .await?;

    let mut routes = Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route(
            "/recovery.js",
            get(|| async {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/javascript; charset=utf-8",
                    )],
                    RECOVERY_JS,
                )
            }),
        )
        .route("/api/me", get(me))
        .route("/api/sensitive", post(sensitive));
    if let Db::Sqlite(pool) = &stores.users {
        routes = routes.merge(password::routes(password::PasswordState {
            passlock: passlock.clone(),
            pool: pool.clone(),
        }));
    }
    let routes = routes
        .merge(passlock_axum::router(passlock.clone()))
        .merge(passlock_axum::well_known_router(&passlock))
        .with_state(passlock.clone());
    match (&config.redis_url, stores.users) {
        (Some(url), _) => {
            let pool = Pool::new(RedisConfig::from_url(url)?, None, None, None, 4)?;
            let _connection = pool.connect();
            pool.wait_for_connect().await?;
            Ok(with_sessions(routes, RedisStore::new(pool), &passlock))
        }
        (None, Db::Postgres(pool)) => {
            let store = PostgresStore::new(pool);
            store.migrate().await?;
            Ok(with_sessions(routes, store, &passlock))
        }
        (None, Db::Sqlite(pool)) => {
            let store = SqliteStore::new(pool);
            store.migrate().await?;
            Ok(with_sessions(routes, store, &passlock))
        }
    }
}

fn with_sessions<S: SessionStore + Clone>(
    routes: Router,
    store: S,
    passlock: &Passlock<i64>,
) -> Router {
    let layer = SessionManagerLayer::new(store)
        .with_secure(passlock.secure_cookies())
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(Duration::hours(12)));
    routes.layer(layer)
}

async fn me(user: SignedInUser<i64>) -> Json<Value> {
    Json(json!({ "user_id": user.user_id }))
}

async fn sensitive(_: StepUp<60>, user: PasskeyUser<i64>) -> Json<Value> {
    tracing::info!(user_id = user.user_id, "sensitive action");
    Json(json!({ "done": true, "user_id": user.user_id }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use passlock_test::authenticator::SoftAuthenticator;
    use tower::ServiceExt;

    use super::*;

    const ORIGIN: &str = "http://localhost:3000";

    /// One browser: sends JSON with the origin and keeps its cookies (the
    /// session, and the sign-up ticket while a sign-up is pending).
    struct Browser {
        app: Router,
        cookies: std::collections::BTreeMap<String, String>,
    }

    impl Browser {
        async fn send(&mut self, method: &str, path: &str, body: Value) -> (u16, Value) {
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .header("origin", ORIGIN)
                .header("content-type", "application/json");
            if !self.cookies.is_empty() {
                let jar: Vec<String> = self
                    .cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                req = req.header("cookie", jar.join("; "));
            }
            let req = req.body(Body::from(body.to_string())).unwrap();
            let res = self.app.clone().oneshot(req).await.unwrap();
            for set in res.headers().get_all("set-cookie") {
                let pair = set.to_str().unwrap().split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                match value.is_empty() {
                    true => self.cookies.remove(name),
                    false => self.cookies.insert(name.to_owned(), value.to_owned()),
                };
            }
            let status = res.status().as_u16();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }

        async fn sign_up(&mut self, auth: &mut SoftAuthenticator, username: &str) -> (u16, Value) {
            let (_, a) = self
                .send(
                    "POST",
                    "/passkey/registration/authorize",
                    json!({ "username": username }),
                )
                .await;
            let base = format!(
                "{}/v2/{}/passkey",
                a["endpoint"].as_str().unwrap(),
                a["tenancyId"].as_str().unwrap()
            );
            let (_, o) = self
                .send(
                    "POST",
                    &format!("{base}/registration/options"),
                    json!({ "registrationToken": a["registrationToken"] }),
                )
                .await;
            let response = auth.create(&o["optionsJSON"]).await.unwrap();
            let (_, v) = self
                .send(
                    "POST",
                    &format!("{base}/registration/verification"),
                    json!({ "response": response, "sessionToken": o["sessionToken"] }),
                )
                .await;
            self.send("POST", "/passkey/register", json!({ "code": v["code"] }))
                .await
        }

        async fn step_up(&mut self, auth: &mut SoftAuthenticator) -> (u16, Value) {
            let (_, a) = self
                .send(
                    "POST",
                    "/passkey/authentication/authorize",
                    json!({ "purpose": "step_up" }),
                )
                .await;
            let base = format!(
                "{}/v2/{}/passkey",
                a["endpoint"].as_str().unwrap(),
                a["tenancyId"].as_str().unwrap()
            );
            let (_, o) = self
                .send(
                    "POST",
                    &format!("{base}/authentication/options"),
                    json!({ "authenticationToken": a["authenticationToken"] }),
                )
                .await;
            let response = auth.get(&o["optionsJSON"]).await.unwrap();
            let (_, v) = self
                .send(
                    "POST",
                    &format!("{base}/authentication/verification"),
                    json!({ "response": response, "sessionToken": o["sessionToken"] }),
                )
                .await;
            self.send("POST", "/passkey/step-up", json!({ "code": v["code"] }))
                .await
        }
    }

    /// Password sign-up signs in a user without a passkey; once they have a
    /// passkey, the password is only a first factor and a step-up completes
    /// it.
    #[tokio::test]
    async fn password_then_passkey() {
        let app = build_app(AppConfig::localhost(3000, "sqlite::memory:"))
            .await
            .unwrap();
        let mut b = Browser {
            app: app.clone(),
            cookies: Default::default(),
        };
        let creds = json!({ "username": "carol", "password": "correct horse" });
        let (status, r) = b.send("POST", "/api/password/signup", creds.clone()).await;
        assert_eq!(status, 201, "{r}");
        assert_eq!(r["second_factor_required"], false);
        let user = r["user_id"].as_str().unwrap().to_owned();
        let (status, me) = b.send("GET", "/api/me", Value::Null).await;
        assert_eq!((status, me["user_id"].to_string()), (200, user.clone()));
        let (status, r) = b.send("POST", "/api/password/signup", creds.clone()).await;
        assert_eq!((status, r["error"].clone()), (409, json!("username_taken")));

        // Add a passkey (allowed without a step-up: the user has none yet).
        let mut key = SoftAuthenticator::new(ORIGIN);
        let (status, added) = b.sign_up(&mut key, "carol").await;
        assert_eq!(status, 201, "{added}");
        assert_eq!(added["user_id"], user.as_str());

        let mut later = Browser {
            app: app.clone(),
            cookies: Default::default(),
        };
        let wrong = json!({ "username": "carol", "password": "wrong horse" });
        let (status, r) = later.send("POST", "/api/password/login", wrong).await;
        assert_eq!(
            (status, r["error"].clone()),
            (401, json!("wrong_credentials"))
        );
        let nobody = json!({ "username": "nobody", "password": "correct horse" });
        assert_eq!(
            later.send("POST", "/api/password/login", nobody).await.0,
            401
        );
        let (status, r) = later.send("POST", "/api/password/login", creds).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["second_factor_required"], true);
        assert_eq!(later.send("GET", "/api/me", Value::Null).await.0, 401);
        let (status, s) = later.send("GET", "/passkey/session", Value::Null).await;
        assert_eq!(
            (status, s["second_factor_pending"].clone()),
            (200, json!(true))
        );
        let (status, r) = later.step_up(&mut key).await;
        assert_eq!(status, 200, "{r}");
        let (status, me) = later.send("GET", "/api/me", Value::Null).await;
        assert_eq!((status, me["user_id"].to_string()), (200, user));
        let (status, done) = later.send("POST", "/api/sensitive", json!({})).await;
        assert_eq!((status, done["done"].clone()), (200, json!(true)));
    }

    #[tokio::test]
    async fn the_example_signs_up_users_into_its_own_table() {
        let app = build_app(AppConfig::localhost(3000, "sqlite::memory:"))
            .await
            .unwrap();
        let mut alice = Browser {
            app: app.clone(),
            cookies: Default::default(),
        };
        let page = app
            .clone()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(alice.send("GET", "/api/me", Value::Null).await.0, 401);

        let (status, signed_in) = alice
            .sign_up(&mut SoftAuthenticator::new(ORIGIN), "alice")
            .await;
        assert_eq!(status, 201, "{signed_in}");
        let (status, me) = alice.send("GET", "/api/me", Value::Null).await;
        assert_eq!(status, 200);
        assert_eq!(
            me["user_id"].to_string(),
            signed_in["user_id"].as_str().unwrap()
        );
        let (status, done) = alice.send("POST", "/api/sensitive", json!({})).await;
        assert_eq!((status, done["done"].clone()), (200, json!(true)));

        let mut mallory = Browser {
            app,
            cookies: Default::default(),
        };
        // The taken name is refused before any ceremony: no passkey is made.
        let mut device = SoftAuthenticator::new(ORIGIN);
        let (status, refused) = mallory
            .send(
                "POST",
                "/passkey/registration/authorize",
                json!({ "username": "alice" }),
            )
            .await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["error"], "username_taken");
        assert!(device.credential_ids().is_empty());
        assert_eq!(mallory.send("GET", "/api/me", Value::Null).await.0, 401);
        // A free name still signs up, as another user.
        let (status, other) = mallory.sign_up(&mut device, "mallory").await;
        assert_eq!(status, 201, "{other}");
        assert_ne!(other["user_id"], signed_in["user_id"]);
    }
}

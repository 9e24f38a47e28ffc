//! The axum mode: `passlock_axum::router` with the tower-sessions memory
//! store, and the peer: axum-login's `login_required!` over the same store.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum_login::{AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend, login_required};
use passlock_axum::PasskeyUser;
use passlock_core::SessionRecord;
use serde_json::Value;
use tower::ServiceExt;
use tower_sessions::session::Id;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer, SessionStore};

use crate::support::{self, BoxError, ORIGIN};

/// The axum-login user: the same id as the passlock user, a constant
/// session hash (as an app whose users have no password would keep).
#[derive(Debug, Clone)]
struct PeerUser {
    id: i64,
}

impl AuthUser for PeerUser {
    type Id = i64;

    fn id(&self) -> i64 {
        self.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        b"bench"
    }
}

/// axum-login's backend: users in memory (as passlock's stores are here).
#[derive(Debug, Clone, Default)]
struct PeerBackend {
    users: Arc<std::collections::HashMap<i64, PeerUser>>,
}

impl AuthnBackend for PeerBackend {
    type User = PeerUser;
    type Credentials = i64;
    type Error = std::convert::Infallible;

    async fn authenticate(&self, id: i64) -> Result<Option<PeerUser>, Self::Error> {
        Ok(self.users.get(&id).cloned())
    }

    async fn get_user(&self, id: &i64) -> Result<Option<PeerUser>, Self::Error> {
        Ok(self.users.get(id).cloned())
    }
}

/// `POST /peer/login`: signs user 1 in with axum-login (in the session
/// passlock's user is already signed in to).
async fn peer_login(mut auth: AuthSession<PeerBackend>) -> StatusCode {
    match auth.authenticate(1).await {
        Ok(Some(user)) if auth.login(&user).await.is_ok() => StatusCode::OK,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The router driven in-process (`oneshot`) for the sign-up.
struct InProcess<'a>(&'a Router);

impl support::Client for InProcess<'_> {
    async fn post(
        &mut self,
        path: &str,
        cookie: Option<&str>,
        body: Value,
    ) -> Result<(u16, Option<String>, Vec<u8>), BoxError> {
        let mut req = Request::builder()
            .method("POST")
            .uri(path)
            .header("origin", ORIGIN)
            .header("content-type", "application/json");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let res = self
            .0
            .clone()
            .oneshot(req.body(Body::from(body.to_string()))?)
            .await?;
        let set_cookie = support::set_cookies(res.headers().get_all("set-cookie").iter())?;
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await?;
        Ok((status, set_cookie, bytes.to_vec()))
    }
}

/// Signs up, prints the line, serves until `GET /shutdown`.
pub(crate) fn run() -> Result<(), BoxError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve())
}

async fn serve() -> Result<(), BoxError> {
    let passlock = support::passlock().await?;
    let sessions = MemoryStore::default();
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let stop = shutdown.clone();
    let layer = |store: MemoryStore| {
        SessionManagerLayer::new(store)
            .with_secure(passlock.secure_cookies())
            .with_http_only(true)
    };
    // Each route sits under exactly one session layer over the one store:
    // passlock's routes under tower-sessions' own, the peer's under
    // axum-login's (which brings its own session layer).
    let peer = Router::new()
        .route(
            "/peer",
            get(|auth: AuthSession<PeerBackend>| async move {
                support::body(auth.user.map_or(0, |u| u.id))
            }),
        )
        .route_layer(login_required!(PeerBackend))
        .route("/peer/login", post(peer_login))
        .layer(
            AuthManagerLayerBuilder::new(
                PeerBackend {
                    users: Arc::new([(1, PeerUser { id: 1 })].into()),
                },
                layer(sessions.clone()),
            )
            .build(),
        );
    let app = Router::new()
        .route(
            "/guarded",
            get(|user: PasskeyUser<i64>| async move { support::body(user.user_id) }),
        )
        .route(
            "/session",
            get(|session: Session| async move {
                // The limit of a guard: load the session, read one value.
                match session.get_value(SessionRecord::<i64>::KEY).await {
                    Ok(Some(_)) => Ok(support::body(1)),
                    _ => Err(StatusCode::UNAUTHORIZED),
                }
            }),
        )
        .route("/bare", get(|| async { support::body(1) }))
        .route(
            "/shutdown",
            get(move || async move {
                stop.notify_one();
                "bye"
            }),
        )
        .merge(passlock_axum::router(passlock.clone()))
        .with_state(passlock.clone())
        .layer(layer(sessions.clone()))
        .merge(peer);

    let cookie = support::sign_up(&mut InProcess(&app)).await?;
    let cookie = if support::peer_in_session() {
        support::peer_login(&mut InProcess(&app), cookie).await?
    } else {
        cookie
    };

    // What the session holds.
    let id: Id = cookie
        .split_once('=')
        .map(|(_, v)| v)
        .ok_or("bad cookie")?
        .parse()?;
    let record = sessions.load(&id).await?.ok_or("no session")?;
    let passlock_record = record
        .data
        .get(SessionRecord::<i64>::KEY)
        .ok_or("no passlock record")?;
    // passlock-axum keeps the record as one JSON string.
    let json = passlock_record
        .as_str()
        .ok_or("the record is not a string")?;
    let typed: SessionRecord<i64> = serde_json::from_str(json)?;
    if typed.auth.is_none() {
        return Err("the bench user is not signed in".into());
    }
    let record_bytes = json.len();
    let session_bytes = serde_json::to_vec(&record)?.len();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    support::announce(port, &cookie, record_bytes, session_bytes);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.notified().await })
    .await?;
    Ok(())
}

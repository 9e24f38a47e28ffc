//! The actix mode: `passlock_actix::scope` behind [`PasslockSessions`] with
//! a minimal in-memory actix-session store (actix-session has none), and
//! the peer: actix-identity's `Identity` over the same sessions.

use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use actix_identity::{Identity, IdentityMiddleware};
use actix_session::SessionExt as _;
use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::body::{MessageBody, to_bytes};
use actix_web::cookie::time::Duration;
use actix_web::cookie::{Cookie, CookieJar, Key};
use actix_web::dev::{ServerHandle, Service as _};
use actix_web::http::header::SET_COOKIE;
use actix_web::{App, HttpMessage as _, HttpRequest, HttpResponse, HttpServer, test, web};
use passlock_actix::{PasskeyUser, PasslockSessions};
use passlock_core::SessionRecord;
use serde_json::Value;

use crate::support::{self, BoxError, ORIGIN};

type State = HashMap<String, String>;

/// Sessions in a `Mutex<HashMap>`; keys are a counter (bench only: a real
/// store needs unguessable keys), TTLs are ignored.
#[derive(Debug, Clone, Default)]
struct MemoryStore {
    next: Arc<AtomicU64>,
    sessions: Arc<Mutex<HashMap<String, State>>>,
}

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionStore for MemoryStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        Ok(self.map().get(key.as_ref()).cloned())
    }

    async fn save(&self, state: State, _: &Duration) -> Result<SessionKey, SaveError> {
        let key = format!("bench-session-{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.map().insert(key.clone(), state);
        key.try_into()
            .map_err(|e| SaveError::Other(anyhow::anyhow!("{e}")))
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        _: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        self.map().insert(key.as_ref().to_owned(), state);
        Ok(key)
    }

    async fn update_ttl(&self, _: &SessionKey, _: &Duration) -> anyhow::Result<()> {
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        self.map().remove(key.as_ref());
        Ok(())
    }
}

/// Status, `Set-Cookie` and body of a response.
async fn parts<B: MessageBody>(
    res: HttpResponse<B>,
) -> Result<(u16, Option<String>, Vec<u8>), BoxError> {
    let set_cookie = support::set_cookies(res.headers().get_all(SET_COOKIE))?;
    let status = res.status().as_u16();
    let bytes = to_bytes(res.into_body())
        .await
        .map_err(|_| "unreadable response body")?;
    Ok((status, set_cookie, bytes.to_vec()))
}

/// The app driven in-process (`actix_web::test`) for the sign-up: `call`
/// sends one request.
struct InProcess<F>(F);

impl<F, Fut> support::Client for InProcess<F>
where
    F: FnMut(test::TestRequest) -> Fut,
    Fut: Future<Output = Result<(u16, Option<String>, Vec<u8>), BoxError>>,
{
    async fn post(
        &mut self,
        path: &str,
        cookie: Option<&str>,
        body: Value,
    ) -> Result<(u16, Option<String>, Vec<u8>), BoxError> {
        let mut req = test::TestRequest::post()
            .uri(path)
            .insert_header(("origin", ORIGIN))
            .insert_header(("content-type", "application/json"))
            .set_payload(body.to_string());
        if let Some(c) = cookie {
            req = req.insert_header(("cookie", c));
        }
        (self.0)(req).await
    }
}

/// Signs up, prints the line, serves (2 workers) until `GET /shutdown`.
pub(crate) fn run() -> Result<(), BoxError> {
    actix_web::rt::System::new().block_on(serve())
}

async fn serve() -> Result<(), BoxError> {
    let passlock = support::passlock().await?;
    let sessions = MemoryStore::default();
    let key = Key::generate();
    let server: Arc<OnceLock<ServerHandle>> = Arc::default();
    let make = {
        let (sessions, key, server) = (sessions.clone(), key.clone(), server.clone());
        move || {
            let server = server.clone();
            App::new()
                .app_data(web::Data::new(passlock.clone()))
                .route(
                    "/guarded",
                    web::get()
                        .to(|user: PasskeyUser<i64>| async move { support::body(user.user_id) }),
                )
                .route(
                    "/session",
                    web::get().to(|req: HttpRequest| async move {
                        // The limit of a guard: read one value of the
                        // session (actix-session loads it for every route).
                        if req
                            .get_session()
                            .entries()
                            .contains_key(SessionRecord::<i64>::KEY)
                        {
                            HttpResponse::Ok().body(support::body(1))
                        } else {
                            HttpResponse::Unauthorized().finish()
                        }
                    }),
                )
                .route("/bare", web::get().to(|| async { support::body(1) }))
                // The peer, wrapped around its own routes only.
                .service(
                    web::resource("/peer")
                        .wrap(IdentityMiddleware::default())
                        .route(web::get().to(|user: Identity| async move {
                            support::body(
                                user.id().ok().and_then(|id| id.parse().ok()).unwrap_or(0),
                            )
                        })),
                )
                .service(
                    web::resource("/peer/login")
                        .wrap(IdentityMiddleware::default())
                        .route(web::post().to(|req: HttpRequest| async move {
                            match Identity::login(&req.extensions(), "1".to_owned()) {
                                Ok(_) => HttpResponse::Ok().json(serde_json::json!({})),
                                Err(_) => HttpResponse::InternalServerError().finish(),
                            }
                        })),
                )
                .route(
                    "/shutdown",
                    web::get().to(move || {
                        if let Some(server) = server.get() {
                            // Graceful: this response still goes out.
                            actix_web::rt::spawn(server.stop(true));
                        }
                        async { "bye" }
                    }),
                )
                .service(passlock_actix::scope(passlock.clone()))
                .wrap(PasslockSessions::new(
                    sessions.clone(),
                    key.clone(),
                    &passlock,
                ))
        }
    };

    let app = Rc::new(test::init_service(make()).await);
    let cookie = support::sign_up(&mut InProcess(|req: test::TestRequest| {
        let app = Rc::clone(&app);
        async move {
            match app.call(req.to_request()).await {
                Ok(res) => parts(res.into_parts().1).await,
                Err(e) => parts(e.error_response()).await,
            }
        }
    }))
    .await?;
    let cookie = if !support::peer_in_session() {
        cookie
    } else {
        support::peer_login(
            &mut InProcess(|req: test::TestRequest| {
                let app = Rc::clone(&app);
                async move {
                    match app.call(req.to_request()).await {
                        Ok(res) => parts(res.into_parts().1).await,
                        Err(e) => parts(e.error_response()).await,
                    }
                }
            }),
            cookie,
        )
        .await?
    };

    // What the session holds: the cookie (percent-encoded) is encrypted
    // with `key` and names the store's session key.
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::parse_encoded(cookie.clone())?);
    let session_key = jar
        .private(&key)
        .get("id")
        .ok_or("undecryptable session cookie")?;
    let state = sessions
        .map()
        .get(session_key.value())
        .cloned()
        .ok_or("no session")?;
    let record = state
        .get(SessionRecord::<i64>::KEY)
        .ok_or("no passlock record")?;
    let record_bytes = record.len();
    let session_bytes = serde_json::to_vec(&state)?.len();

    let running = HttpServer::new(make)
        .workers(2)
        .shutdown_timeout(5)
        .bind(("127.0.0.1", 0))?;
    let port = running.addrs().first().ok_or("not bound")?.port();
    let running = running.run();
    server
        .set(running.handle())
        .map_err(|_| "server handle set twice")?;
    support::announce(port, &cookie, record_bytes, session_bytes);
    running.await?;
    Ok(())
}

//! The routes of the HTTP contract (DESIGN section 5). Every handler parses,
//! makes one call into a `passlock_core::flow` function, applies the
//! session change and renders; none decides anything about authentication.

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
#[cfg(feature = "embedded")]
use axum::routing::MethodRouter;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
#[cfg(feature = "embedded")]
use passlock_core::adapter::BrowserOp;
use passlock_core::adapter::ClientInfo;
use passlock_core::adapter::MAX_BODY_BYTES;
use passlock_core::adapter::flow::{self, AuthorizeAuthenticationBody};
use passlock_core::adapter::wire::{AuthorizeRegistrationBody, RenamePasskeyBody};
use passlock_core::{CLIENT_DTS, CLIENT_JS, FlowError, Passlock, UserId};
use serde::de::IgnoredAny;

#[cfg(feature = "embedded")]
use crate::extract::RawJson;
use crate::extract::{JsonBody, OptionalJsonBody, ProofBody};
use crate::rejection::PasslockRejection;
#[cfg(feature = "embedded")]
use crate::rejection::json_response;
use crate::session::PasslockSession;

type Answer = Result<Response, PasslockRejection>;

/// The passlock routes, to be nested at exactly [`Passlock::prefix`] (the
/// embedded provider tells browsers to run ceremonies under that prefix).
/// Prefer [`router`], which does the nesting.
///
/// The routes need a tower-sessions `SessionManagerLayer` around them. `S`
/// is the state of the router they are nested into (inferred there).
pub fn routes<U: UserId, S: Clone + Send + Sync + 'static>(passlock: Passlock<U>) -> Router<S> {
    let mut router = Router::new()
        .route("/registration/authorize", post(authorize_registration::<U>))
        .route(
            "/authentication/authorize",
            post(authorize_authentication::<U>),
        )
        .route("/register", post(register::<U>))
        .route("/login", post(login::<U>))
        .route("/step-up", post(step_up::<U>))
        .route("/logout", post(logout::<U>))
        .route("/logout/everywhere", post(logout_everywhere::<U>))
        .route("/session", get(session::<U>))
        .route("/passkeys", get(passkeys::<U>))
        .route(
            "/passkeys/{authenticator_id}",
            delete(unlink::<U>).patch(rename::<U>),
        )
        .route("/client.js", get(client_js))
        .route("/client.d.ts", get(client_dts));
    if passlock.recovery_enabled() {
        router = router
            .route("/recovery/start", post(recovery_start::<U>))
            .route("/recovery/verify", post(recovery_verify::<U>));
    }
    #[cfg(feature = "embedded")]
    if passlock.provider().embedded().is_some() {
        for op in BrowserOp::ALL {
            router = router.route(op.route(), browser_op::<U>(op));
        }
        router = router.route("/.well-known/jwks.json", get(jwks::<U>));
    }
    router
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(
            passlock.clone(),
            check_origin::<U>,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .fallback(not_found)
        .layer(middleware::map_response(no_store))
        .with_state(passlock)
}

/// Every answer of the passlock routes (session views, one-time tokens,
/// errors) is `Cache-Control: no-store`, unless the route set its own
/// (`client.js`).
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The passlock routes nested at [`Passlock::prefix`], ready to
/// [`merge`](Router::merge) into the app. Serve the app with
/// `into_make_service_with_connect_info::<SocketAddr>()` so the routes know
/// the client address they throttle by (or configure a trusted proxy
/// header):
///
/// ```no_run
/// # async fn demo(passlock: passlock_axum::passlock_core::Passlock<i64>) {
/// use axum::Router;
/// use tower_sessions::{MemoryStore, SessionManagerLayer, cookie::SameSite};
///
/// let sessions = SessionManagerLayer::new(MemoryStore::default())
///     .with_secure(passlock.secure_cookies())
///     .with_http_only(true)
///     .with_same_site(SameSite::Lax);
/// let app: Router = Router::new()
///     .merge(passlock_axum::router(passlock.clone()))
///     .layer(sessions);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
/// axum::serve(
///     listener,
///     app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
/// )
/// .await
/// .unwrap();
/// # }
/// ```
pub fn router<U: UserId, S: Clone + Send + Sync + 'static>(passlock: Passlock<U>) -> Router<S> {
    let prefix = passlock.prefix().to_owned();
    Router::new().nest(&prefix, routes(passlock))
}

/// Login CSRF: every state-changing request needs an allowed `Origin`.
async fn check_origin<U: UserId>(
    State(pl): State<Passlock<U>>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let origin = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok());
    match pl.check_origin(origin) {
        Ok(()) => next.run(req).await,
        Err(e) => PasslockRejection(e).into_response(),
    }
}

async fn authorize_registration<U: UserId>(
    State(pl): State<Passlock<U>>,
    Client(client): Client,
    s: PasslockSession<U>,
    OptionalJsonBody(body): OptionalJsonBody<AuthorizeRegistrationBody>,
) -> Answer {
    flow::throttle_ceremony(&pl, &client).await?;
    let out = flow::authorize_registration(&pl, s.record(), &body).await?;
    s.apply(out.session).await?;
    Ok(with_cookie(Json(out.value), out.set_cookie))
}

async fn authorize_authentication<U: UserId>(
    State(pl): State<Passlock<U>>,
    Client(client): Client,
    s: PasslockSession<U>,
    OptionalJsonBody(body): OptionalJsonBody<AuthorizeAuthenticationBody>,
) -> Answer {
    flow::throttle_ceremony(&pl, &client).await?;
    let out = flow::authorize_authentication(&pl, s.record(), &body).await?;
    s.apply(out.session).await?;
    Ok(Json(out.value).into_response())
}

async fn register<U: UserId>(
    State(pl): State<Passlock<U>>,
    Client(client): Client,
    headers: HeaderMap,
    s: PasslockSession<U>,
    ProofBody(proof): ProofBody,
) -> Answer {
    let cookies = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let ticket = passlock_core::adapter::from_cookie_header(cookies);
    let out = flow::register(&pl, s.record(), ticket, &proof, &client).await?;
    s.apply(out.session).await?;
    Ok(with_cookie(
        (StatusCode::CREATED, Json(out.value)),
        out.set_cookie,
    ))
}

/// The response with the flow's `Set-Cookie` (the sign-up ticket), if any.
fn with_cookie(answer: impl IntoResponse, set_cookie: Option<String>) -> Response {
    let mut response = answer.into_response();
    if let Some(value) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

async fn login<U: UserId>(
    State(pl): State<Passlock<U>>,
    Client(client): Client,
    s: PasslockSession<U>,
    ProofBody(proof): ProofBody,
) -> Answer {
    let out = flow::login(&pl, s.record(), &proof, &client).await?;
    s.apply(out.session).await?;
    Ok(Json(out.value).into_response())
}

async fn step_up<U: UserId>(
    State(pl): State<Passlock<U>>,
    Client(client): Client,
    s: PasslockSession<U>,
    ProofBody(proof): ProofBody,
) -> Answer {
    let out = flow::step_up(&pl, s.record(), &proof, &client).await?;
    s.apply(out.session).await?;
    Ok(Json(out.value).into_response())
}

/// The client for throttling: the peer from `ConnectInfo` (serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`) or the trusted
/// proxy header. Without either, the request counts in the shared
/// unknown-address bucket (and passlock logs that once).
struct Client(ClientInfo);

impl<U: UserId> FromRequestParts<Passlock<U>> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        pl: &Passlock<U>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(crate::session::client_of(parts, pl)))
    }
}

async fn logout<U: UserId>(
    State(pl): State<Passlock<U>>,
    s: PasslockSession<U>,
    _: OptionalJsonBody<IgnoredAny>,
) -> Answer {
    s.logout(&pl).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn logout_everywhere<U: UserId>(
    State(pl): State<Passlock<U>>,
    s: PasslockSession<U>,
    _: OptionalJsonBody<IgnoredAny>,
) -> Answer {
    s.logout_everywhere(&pl).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn recovery_start<U: UserId>(
    State(pl): State<Passlock<U>>,
    Client(client): Client,
    JsonBody(body): JsonBody<flow::RecoveryStartBody>,
) -> Answer {
    let out = flow::recovery_start(&pl, &body, &client).await?;
    Ok((StatusCode::ACCEPTED, Json(out.value)).into_response())
}

async fn recovery_verify<U: UserId>(
    State(pl): State<Passlock<U>>,
    Client(client): Client,
    s: PasslockSession<U>,
    JsonBody(body): JsonBody<flow::RecoveryVerifyBody>,
) -> Answer {
    let out = flow::recovery_verify(&pl, &body, &client).await?;
    s.apply(out.session).await?;
    Ok(Json(out.value).into_response())
}

async fn session<U: UserId>(s: PasslockSession<U>) -> Answer {
    Ok(Json(flow::session(s.record())?).into_response())
}

async fn passkeys<U: UserId>(State(pl): State<Passlock<U>>, s: PasslockSession<U>) -> Answer {
    Ok(Json(flow::list_passkeys(&pl, s.record()).await?).into_response())
}

async fn unlink<U: UserId>(
    State(pl): State<Passlock<U>>,
    s: PasslockSession<U>,
    authenticator: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Answer {
    let Path(authenticator) = authenticator.map_err(|_| FlowError::NotFound)?;
    let out = flow::unlink(&pl, s.record(), &authenticator, s.client()).await?;
    s.apply(out.session).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rename<U: UserId>(
    State(pl): State<Passlock<U>>,
    Client(client): Client,
    s: PasslockSession<U>,
    authenticator: Result<Path<String>, axum::extract::rejection::PathRejection>,
    OptionalJsonBody(body): OptionalJsonBody<RenamePasskeyBody>,
) -> Answer {
    let Path(authenticator) = authenticator.map_err(|_| FlowError::NotFound)?;
    let view = flow::rename_passkey(&pl, s.record(), &authenticator, &body.name, &client).await?;
    Ok(Json(view).into_response())
}

async fn client_dts() -> Response {
    (
        [
            (CONTENT_TYPE, "application/typescript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        CLIENT_DTS,
    )
        .into_response()
}

async fn client_js() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        CLIENT_JS,
    )
        .into_response()
}

/// One browser-facing call of the embedded Passlock-compatible server.
#[cfg(feature = "embedded")]
fn browser_op<U: UserId>(op: BrowserOp) -> MethodRouter<Passlock<U>> {
    post(
        move |State(pl): State<Passlock<U>>,
              Client(client): Client,
              Path(tenancy): Path<String>,
              RawJson(body): RawJson| async move {
            if let Err(e) = flow::throttle_ceremony(&pl, &client).await {
                return PasslockRejection(e).into_response();
            }
            match pl.provider().embedded() {
                Some(embedded) => {
                    let answer = embedded.handle(&tenancy, op, &body).await;
                    json_response(answer.status, answer.body)
                }
                None => PasslockRejection(FlowError::NotFound).into_response(),
            }
        },
    )
}

#[cfg(feature = "embedded")]
async fn jwks<U: UserId>(State(pl): State<Passlock<U>>) -> Response {
    match pl.provider().embedded() {
        Some(embedded) => Json(embedded.jwks()).into_response(),
        None => PasslockRejection(FlowError::NotFound).into_response(),
    }
}

/// The routes an app mounts at the ROOT of its host (not under the
/// prefix): with the embedded provider, `GET /.well-known/webauthn`, the
/// related origins document of WebAuthn Level 3 (`{"origins":[...]}`, see
/// [`EmbeddedConfig::related_origins`](passlock_core::provider::embedded::EmbeddedConfig::related_origins)).
/// Browsers fetch it from `https://{rp_id}/.well-known/webauthn` before a
/// ceremony on a related origin; it needs no session. Empty for the hosted
/// providers (they serve their own).
///
/// ```no_run
/// # fn demo(passlock: passlock_axum::passlock_core::Passlock<i64>) {
/// let app: axum::Router = axum::Router::new()
///     .merge(passlock_axum::router(passlock.clone()))
///     .merge(passlock_axum::well_known_router(&passlock));
/// # let _ = app;
/// # }
/// ```
pub fn well_known_router<U: UserId, S: Clone + Send + Sync + 'static>(
    passlock: &Passlock<U>,
) -> Router<S> {
    #[cfg(feature = "embedded")]
    if let Some(embedded) = passlock.provider().embedded() {
        let document = embedded.well_known_webauthn();
        return Router::new().route(
            passlock_core::provider::embedded::WELL_KNOWN_WEBAUTHN,
            get(move || {
                let document = document.clone();
                async move { ([(CACHE_CONTROL, "public, max-age=3600")], Json(document)) }
            }),
        );
    }
    let _ = passlock;
    Router::new()
}

async fn not_found() -> PasslockRejection {
    PasslockRejection(FlowError::NotFound)
}

async fn method_not_allowed() -> PasslockRejection {
    PasslockRejection(FlowError::MethodNotAllowed)
}

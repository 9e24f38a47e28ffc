//! The routes of the HTTP contract (DESIGN section 5). Every handler parses,
//! makes one call into a `passlock_core::flow` function, applies the
//! session change and renders; none decides anything about authentication.

use actix_web::dev::HttpServiceFactory;
use actix_web::http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use actix_web::middleware::DefaultHeaders;
#[cfg(feature = "embedded")]
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError as _, Route, Scope, guard, web};
#[cfg(feature = "embedded")]
use passlock_core::adapter::BrowserOp;
use passlock_core::adapter::ClientInfo;
use passlock_core::adapter::flow::{self, AuthorizeAuthenticationBody};
use passlock_core::adapter::wire::{AuthorizeRegistrationBody, RenamePasskeyBody};
use passlock_core::{CLIENT_DTS, CLIENT_JS, FlowError, Passlock, Proof, UserId};
use serde::de::IgnoredAny;

use crate::error::PasslockError;
#[cfg(feature = "embedded")]
use crate::error::json_response;
use crate::extract::{Body, Checked, Json, Optional};
use crate::session::PasslockSession;

type Answer = Result<HttpResponse, PasslockError>;

/// The passlock routes as an actix [`Scope`] mounted at exactly
/// [`Passlock::prefix`] (the embedded provider tells browsers to run
/// ceremonies under that prefix). The scope carries its own
/// `web::Data<Passlock<U>>`; the app still registers one for the extractors
/// ([`PasskeyUser`](crate::PasskeyUser), [`StepUp`](crate::StepUp), ...) and
/// guards on its own routes, and wraps everything in
/// [`PasslockSessions`](crate::PasslockSessions).
///
/// ```no_run
/// # async fn demo(passlock: passlock_actix::passlock_core::Passlock<i64>) -> std::io::Result<()> {
/// use actix_session::storage::RedisSessionStore;
/// use actix_web::{App, HttpServer, cookie::Key, web};
/// use passlock_actix::PasslockSessions;
///
/// let store = RedisSessionStore::new("redis://127.0.0.1:6379").await.map_err(std::io::Error::other)?;
/// let key = Key::generate(); // load a fixed key in production
/// HttpServer::new(move || {
///     App::new()
///         .app_data(web::Data::new(passlock.clone()))
///         .service(passlock_actix::scope(passlock.clone()))
///         .wrap(PasslockSessions::new(store.clone(), key.clone(), &passlock))
/// })
/// .bind(("127.0.0.1", 3001))?
/// .run()
/// .await
/// # }
/// ```
pub fn scope<U: UserId>(passlock: Passlock<U>) -> Scope {
    let mut scope = web::scope(passlock.prefix())
        .service(at(
            "/registration/authorize",
            "POST",
            web::post().to(authorize_registration::<U>),
        ))
        .service(at(
            "/authentication/authorize",
            "POST",
            web::post().to(authorize_authentication::<U>),
        ))
        .service(at("/register", "POST", web::post().to(register::<U>)))
        .service(at("/login", "POST", web::post().to(login::<U>)))
        .service(at("/step-up", "POST", web::post().to(step_up::<U>)))
        .service(at("/logout", "POST", web::post().to(logout::<U>)))
        .service(at(
            "/logout/everywhere",
            "POST",
            web::post().to(logout_everywhere::<U>),
        ))
        .service(at("/session", "GET,HEAD", get().to(session::<U>)))
        .service(at("/passkeys", "GET,HEAD", get().to(passkeys::<U>)))
        .service(at_routes(
            "/passkeys/{authenticator_id}",
            "DELETE,PATCH",
            vec![web::delete().to(unlink::<U>), web::patch().to(rename::<U>)],
        ))
        .service(at("/client.js", "GET,HEAD", get().to(client_js)))
        .service(at("/client.d.ts", "GET,HEAD", get().to(client_dts)));
    if passlock.recovery_enabled() {
        scope = scope
            .service(at(
                "/recovery/start",
                "POST",
                web::post().to(recovery_start::<U>),
            ))
            .service(at(
                "/recovery/verify",
                "POST",
                web::post().to(recovery_verify::<U>),
            ));
    }
    #[cfg(feature = "embedded")]
    if passlock.provider().embedded().is_some() {
        for op in BrowserOp::ALL {
            let handler =
                move |Checked(pl): Checked<U>, req: HttpRequest, Body(body): Body<Bytes>| {
                    browser_op(pl, req, body, op)
                };
            scope = scope.service(at(op.route(), "POST", web::post().to(handler)));
        }
        scope = scope.service(at(
            "/.well-known/jwks.json",
            "GET,HEAD",
            get().to(jwks::<U>),
        ));
    }
    scope
        .app_data(web::Data::new(passlock))
        .default_service(web::to(not_found))
}

/// One resource; other methods get a JSON `405` with `Allow: {allow}`.
/// Every answer is `Cache-Control: no-store` (session views, one-time
/// tokens, errors) unless the handler set its own (`client.js`).
fn at(path: &str, allow: &'static str, route: Route) -> impl HttpServiceFactory + 'static {
    at_routes(path, allow, vec![route])
}

/// [`at`] with several methods on one resource.
fn at_routes(
    path: &str,
    allow: &'static str,
    routes: Vec<Route>,
) -> impl HttpServiceFactory + 'static {
    let refuse = move || async move {
        let mut response = PasslockError(FlowError::MethodNotAllowed).error_response();
        let allow = HeaderValue::from_static(allow);
        response.headers_mut().insert(ALLOW, allow);
        response
    };
    routes
        .into_iter()
        .fold(web::resource(path), |r, route| r.route(route))
        .default_service(web::to(refuse))
        .wrap(DefaultHeaders::new().add((CACHE_CONTROL, "no-store")))
}

/// `GET`, and `HEAD` as axum's `get` does.
fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

async fn authorize_registration<U: UserId>(
    Checked(pl): Checked<U>,
    req: HttpRequest,
    s: PasslockSession<U>,
    Body(Optional(body)): Body<Optional<AuthorizeRegistrationBody>>,
) -> Answer {
    flow::throttle_ceremony(&pl, &client(&pl, &req)).await?;
    let out = flow::authorize_registration(&pl, s.record(), &body).await?;
    s.apply(out.session)?;
    Ok(with_cookie(HttpResponse::Ok(), out.set_cookie).json(out.value))
}

async fn authorize_authentication<U: UserId>(
    Checked(pl): Checked<U>,
    req: HttpRequest,
    s: PasslockSession<U>,
    Body(Optional(body)): Body<Optional<AuthorizeAuthenticationBody>>,
) -> Answer {
    flow::throttle_ceremony(&pl, &client(&pl, &req)).await?;
    let out = flow::authorize_authentication(&pl, s.record(), &body).await?;
    s.apply(out.session)?;
    Ok(HttpResponse::Ok().json(out.value))
}

async fn register<U: UserId>(
    Checked(pl): Checked<U>,
    s: PasslockSession<U>,
    Body(proof): Body<Proof>,
    req: HttpRequest,
) -> Answer {
    let cookies = req
        .headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok());
    let ticket = passlock_core::adapter::from_cookie_header(cookies);
    let out = flow::register(&pl, s.record(), ticket, &proof, &client(&pl, &req)).await?;
    s.apply(out.session)?;
    Ok(with_cookie(HttpResponse::Created(), out.set_cookie).json(out.value))
}

/// Adds the flow's `Set-Cookie` (the sign-up ticket), if any.
fn with_cookie(
    mut builder: actix_web::HttpResponseBuilder,
    set_cookie: Option<String>,
) -> actix_web::HttpResponseBuilder {
    if let Some(value) = set_cookie {
        builder.append_header((actix_web::http::header::SET_COOKIE, value));
    }
    builder
}

async fn login<U: UserId>(
    Checked(pl): Checked<U>,
    s: PasslockSession<U>,
    Body(proof): Body<Proof>,
    req: HttpRequest,
) -> Answer {
    let out = flow::login(&pl, s.record(), &proof, &client(&pl, &req)).await?;
    s.apply(out.session)?;
    Ok(HttpResponse::Ok().json(out.value))
}

async fn step_up<U: UserId>(
    Checked(pl): Checked<U>,
    s: PasslockSession<U>,
    Body(proof): Body<Proof>,
    req: HttpRequest,
) -> Answer {
    let out = flow::step_up(&pl, s.record(), &proof, &client(&pl, &req)).await?;
    s.apply(out.session)?;
    Ok(HttpResponse::Ok().json(out.value))
}

/// The client for throttling: the peer address or the trusted proxy header
/// (neither, as in some test requests: the shared unknown-address bucket).
fn client<U: UserId>(pl: &Passlock<U>, req: &HttpRequest) -> ClientInfo {
    crate::session::client_of(pl, req)
}

async fn logout<U: UserId>(
    Checked(pl): Checked<U>,
    s: PasslockSession<U>,
    _: Body<Optional<IgnoredAny>>,
) -> Answer {
    s.logout(&pl).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn logout_everywhere<U: UserId>(
    Checked(pl): Checked<U>,
    s: PasslockSession<U>,
    _: Body<Optional<IgnoredAny>>,
) -> Answer {
    s.logout_everywhere(&pl).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn recovery_start<U: UserId>(
    Checked(pl): Checked<U>,
    req: HttpRequest,
    Body(Json(body)): Body<Json<flow::RecoveryStartBody>>,
) -> Answer {
    let out = flow::recovery_start(&pl, &body, &client(&pl, &req)).await?;
    Ok(HttpResponse::Accepted().json(out.value))
}

async fn recovery_verify<U: UserId>(
    Checked(pl): Checked<U>,
    req: HttpRequest,
    s: PasslockSession<U>,
    Body(Json(body)): Body<Json<flow::RecoveryVerifyBody>>,
) -> Answer {
    let out = flow::recovery_verify(&pl, &body, &client(&pl, &req)).await?;
    s.apply(out.session)?;
    Ok(HttpResponse::Ok().json(out.value))
}

async fn session<U: UserId>(s: PasslockSession<U>) -> Answer {
    Ok(HttpResponse::Ok().json(flow::session(s.record())?))
}

async fn passkeys<U: UserId>(Checked(pl): Checked<U>, s: PasslockSession<U>) -> Answer {
    Ok(HttpResponse::Ok().json(flow::list_passkeys(&pl, s.record()).await?))
}

async fn unlink<U: UserId>(
    Checked(pl): Checked<U>,
    s: PasslockSession<U>,
    req: HttpRequest,
) -> Answer {
    let authenticator = req
        .match_info()
        .get("authenticator_id")
        .ok_or(FlowError::NotFound)?;
    let out = flow::unlink(&pl, s.record(), authenticator, s.client()).await?;
    s.apply(out.session)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn rename<U: UserId>(
    Checked(pl): Checked<U>,
    s: PasslockSession<U>,
    req: HttpRequest,
    Body(Optional(body)): Body<Optional<RenamePasskeyBody>>,
) -> Answer {
    let authenticator = req
        .match_info()
        .get("authenticator_id")
        .ok_or(FlowError::NotFound)?;
    let view = flow::rename_passkey(&pl, s.record(), authenticator, &body.name, s.client()).await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn client_dts() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/typescript; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(CLIENT_DTS)
}

/// The resource an app mounts at the ROOT of its host (not under the
/// prefix): `GET /.well-known/webauthn`, the related origins document of
/// WebAuthn Level 3 (`{"origins":[...]}`, see
/// [`EmbeddedConfig::related_origins`](passlock_core::provider::embedded::EmbeddedConfig::related_origins))
/// with the embedded provider; a JSON `404` with the hosted providers
/// (they serve their own). Browsers fetch it from
/// `https://{rp_id}/.well-known/webauthn` before a ceremony on a related
/// origin; it needs no session.
///
/// ```no_run
/// # fn demo(passlock: passlock_actix::passlock_core::Passlock<i64>) {
/// let app = actix_web::App::new()
///     .service(passlock_actix::scope(passlock.clone()))
///     .service(passlock_actix::well_known(&passlock));
/// # let _ = app;
/// # }
/// ```
pub fn well_known<U: UserId>(passlock: &Passlock<U>) -> actix_web::Resource {
    #[cfg(feature = "embedded")]
    let document = passlock
        .provider()
        .embedded()
        .map(passlock_core::provider::embedded::EmbeddedProvider::well_known_webauthn);
    #[cfg(not(feature = "embedded"))]
    let document: Option<serde_json::Value> = {
        let _ = passlock;
        None
    };
    let document = web::Data::new(document);
    web::resource("/.well-known/webauthn")
        .app_data(document)
        .route(
            get().to(|doc: web::Data<Option<serde_json::Value>>| async move {
                match doc.get_ref() {
                    Some(d) => Ok(HttpResponse::Ok()
                        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
                        .json(d)),
                    None => Err(PasslockError(FlowError::NotFound)),
                }
            }),
        )
}

async fn client_js() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(CLIENT_JS)
}

/// One browser-facing call of the embedded Passlock-compatible server.
#[cfg(feature = "embedded")]
async fn browser_op<U: UserId>(
    pl: Passlock<U>,
    req: HttpRequest,
    body: Bytes,
    op: BrowserOp,
) -> Answer {
    let embedded = pl.provider().embedded().ok_or(FlowError::NotFound)?;
    flow::throttle_ceremony(&pl, &client(&pl, &req)).await?;
    let tenancy = req.match_info().get("tenancy_id").unwrap_or_default();
    let answer = embedded.handle(tenancy, op, &body).await;
    Ok(json_response(answer.status, &answer.body))
}

#[cfg(feature = "embedded")]
async fn jwks<U: UserId>(Checked(pl): Checked<U>) -> Answer {
    let embedded = pl.provider().embedded().ok_or(FlowError::NotFound)?;
    Ok(HttpResponse::Ok().json(embedded.jwks()))
}

async fn not_found() -> Answer {
    Err(PasslockError(FlowError::NotFound))
}

//! The same raw requests against passlock-axum and passlock-actix: same
//! status, same JSON body, same protocol headers.

use actix_web::cookie::Key;
use passlock_actix::passlock_core::clock::ManualClock;
use tower_sessions::{MemoryStore, SessionManagerLayer};

use super::{ActixApp, app};
use crate::harness::{self, ORIGIN, Reply, TestApp, TestRequest};

/// The axum router, sent requests the way `tests/http/axum.rs` does.
struct AxumApp(axum::Router);

impl TestApp for AxumApp {
    async fn send(&self, req: TestRequest) -> Reply {
        use tower::ServiceExt as _;
        let mut builder = axum::http::Request::builder()
            .method(req.method)
            .uri(&req.path);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(axum::body::Body::from(req.body)).unwrap();
        let response = self.0.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply::new(status, headers, &body)
    }
}

fn req(method: &'static str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> TestRequest {
    TestRequest {
        method,
        path: path.to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.to_vec(),
    }
}

#[tokio::test]
async fn both_adapters_answer_alike() {
    let clock = ManualClock::starting_now();
    let passlock = harness::passlock(&clock).await;
    let for_actix = passlock.clone();
    let actix = ActixApp::start(move || async move {
        app(
            for_actix,
            super::failing::SwitchStore::default(),
            Key::generate(),
        )
    });
    let sessions =
        SessionManagerLayer::new(MemoryStore::default()).with_secure(passlock.secure_cookies());
    let axum = AxumApp(
        axum::Router::new()
            .merge(passlock_axum::router(passlock.clone()))
            .merge(passlock_axum::well_known_router(&passlock))
            .with_state(passlock)
            .layer(sessions),
    );

    let json = ("content-type", "application/json");
    let origin = ("origin", ORIGIN);
    let big = vec![b' '; 17 * 1024];
    let cases = [
        req("GET", "/passkey/session", &[], b""),
        req("GET", "/passkey/passkeys", &[], b""),
        req("GET", "/passkey/nope", &[], b""),
        req("POST", "/passkey/nope", &[json, origin], b"{}"),
        req("GET", "/passkey/login", &[], b""),
        req("PUT", "/passkey/login", &[json, origin], b"{}"),
        req("POST", "/passkey/session", &[json, origin], b"{}"),
        req("GET", "/passkey/passkeys/abc", &[], b""),
        req("POST", "/passkey/login", &[json], br#"{"code":"x"}"#),
        req("POST", "/passkey/login", &[json, ("origin", "null")], b"{}"),
        req("DELETE", "/passkey/passkeys/abc", &[], b""),
        req("DELETE", "/passkey/passkeys/abc", &[origin], b""),
        req(
            "POST",
            "/passkey/login",
            &[("content-type", "text/plain"), origin],
            b"{}",
        ),
        req("POST", "/passkey/login", &[origin], b""),
        req("POST", "/passkey/login", &[json, origin], b""),
        req("POST", "/passkey/login", &[json, origin], b"{\"code\":"),
        req(
            "POST",
            "/passkey/login",
            &[json, origin],
            br#"{"code":"a","id_token":"b"}"#,
        ),
        req(
            "POST",
            "/passkey/login",
            &[json, origin],
            br#"{"code":"nope"}"#,
        ),
        req("POST", "/passkey/login", &[json, origin], &big),
        req("POST", "/passkey/logout", &[origin], b""),
        req("POST", "/passkey/logout", &[origin], b"bye"),
        req(
            "POST",
            "/passkey/logout",
            &[("content-type", "application/json; charset=utf-8"), origin],
            b" ",
        ),
        req("POST", "/passkey/registration/authorize", &[origin], b""),
        req(
            "POST",
            "/passkey/registration/authorize",
            &[json, origin],
            br#"{"username":""}"#,
        ),
        req(
            "POST",
            "/passkey/registration/authorize",
            &[json, origin],
            br#"{"user":"x"}"#,
        ),
        req(
            "POST",
            "/passkey/authentication/authorize",
            &[json, origin],
            br#"{"purpose":"admin"}"#,
        ),
        req(
            "POST",
            "/passkey/authentication/authorize",
            &[json, origin],
            br#"{"purpose":"step_up"}"#,
        ),
        req(
            "POST",
            "/passkey/step-up",
            &[json, origin],
            br#"{"code":"x"}"#,
        ),
        req(
            "POST",
            "/passkey/register",
            &[json, origin],
            br#"{"code":"x"}"#,
        ),
        req(
            "POST",
            "/passkey/v2/embedded/passkey/registration/options",
            &[json],
            b"{}",
        ),
        req(
            "POST",
            "/passkey/v2/embedded/passkey/registration/options",
            &[origin],
            b"{}",
        ),
        req(
            "POST",
            "/passkey/v2/embedded/passkey/registration/options",
            &[json, origin],
            b"{}",
        ),
        req(
            "POST",
            "/passkey/v2/other/passkey/authentication/options",
            &[json, origin],
            b"{}",
        ),
        req(
            "GET",
            "/passkey/v2/embedded/passkey/registration/options",
            &[],
            b"",
        ),
        req("HEAD", "/passkey/client.js", &[], b""),
        req("GET", "/passkey/client.d.ts", &[], b""),
        req("HEAD", "/passkey/client.d.ts", &[], b""),
        req("POST", "/passkey/client.d.ts", &[json, origin], b"{}"),
        req(
            "PATCH",
            "/passkey/passkeys/abc",
            &[json, origin],
            br#"{"name":"x"}"#,
        ),
        req(
            "PATCH",
            "/passkey/passkeys/abc",
            &[json],
            br#"{"name":"x"}"#,
        ),
        req(
            "PATCH",
            "/passkey/passkeys/abc",
            &[json, origin],
            br#"{"nom":"x"}"#,
        ),
        req("PUT", "/passkey/passkeys/abc", &[json, origin], b"{}"),
        req(
            "POST",
            "/passkey/registration/authorize",
            &[json, origin],
            br#"{"username":"bob","passkey_name":" "}"#,
        ),
        req(
            "POST",
            "/passkey/authentication/authorize",
            &[json, origin],
            br#"{"purpose":"login","mediation":"sometimes"}"#,
        ),
        req("GET", "/.well-known/webauthn", &[], b""),
        req("POST", "/passkey/client.js", &[json, origin], b"{}"),
    ];
    for case in cases {
        let label = format!("{} {} {:?}", case.method, case.path, case.headers);
        let a = axum.send(case.clone()).await;
        let b = actix.send(case).await;
        assert_eq!(a.status, b.status, "{label}\naxum: {a:?}\nactix: {b:?}");
        assert_eq!(a.json, b.json, "{label}\naxum: {a:?}\nactix: {b:?}");
        for header in [
            "content-type",
            "www-authenticate",
            "allow",
            "retry-after",
            "cache-control",
        ] {
            assert_eq!(
                a.header(header),
                b.header(header),
                "{label} {header}\naxum: {a:?}\nactix: {b:?}"
            );
        }
        assert_eq!(b.header("set-cookie"), None, "{label}: {b:?}");
    }
}

//! The adapter-independent part of the HTTP scenarios: a [`TestApp`] that
//! sends requests, a cookie-keeping [`Client`], the [`World`] a scenario runs
//! in (passlock with a manual clock, in-memory stores and users) and the
//! browser side of the ceremonies (what `client.js` does), driven by the
//! test kit's software authenticator.
//!
//! An adapter plugs in by implementing [`TestApp`] for an app that mounts
//! the passlock routes at `/passkey` behind a session layer, plus
//! `GET /app/me` (`Option<PasskeyUser<i64>>`: `{"user_id": n | null}`) and
//! `POST /app/sensitive` (`StepUp<60>` + `PasskeyUser<i64>`: `{"done": true}`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use passlock_core::clock::ManualClock;
use passlock_core::provider::embedded::{
    CeremonyStore, CredentialStore, EmbeddedConfig, EmbeddedProvider,
};
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::{AuthenticatorId, AuthenticatorStore, Passlock, SignUpError, SignUpHook};
use passlock_test::authenticator::SoftAuthenticator;
use serde_json::{Value, json};

/// The origin every scenario runs on.
pub(crate) const ORIGIN: &str = "http://localhost:3000";

/// A request as a browser would send it.
#[derive(Debug, Clone)]
pub(crate) struct TestRequest {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// An answer: status, headers (lower-case names) and the body as JSON
/// (`Value::Null` when empty or not JSON; `text` holds it raw).
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) json: Value,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn new(status: u16, headers: Vec<(String, String)>, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body).into_owned();
        let json = serde_json::from_slice(body).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            json,
            text,
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts an error answer: status and JSON `error` code, and that the
    /// body has exactly the `{"error","message"}` shape.
    #[track_caller]
    pub(crate) fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status of {self:?}");
        assert_eq!(self.json["error"], code, "code of {self:?}");
        assert!(self.json["message"].is_string(), "message of {self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
    }
}

/// What the browser hands to `/register`, `/login` and `/step-up` after a
/// ceremony: the one-time `code` or the signed `id_token` (both come back
/// from the provider's verification route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProofKind {
    Code,
    IdToken,
}

impl ProofKind {
    /// The field of the verification answer and of the request body.
    pub(crate) fn field(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::IdToken => "id_token",
        }
    }
}

/// A provider verification body; `id_token` asks the embedded provider for
/// an id_token beside the code (the hosted service sends one anyway).
fn verification_body(response: Value, session: &Value, id_token: bool) -> Value {
    let mut body = json!({ "response": response, "sessionToken": session });
    if id_token {
        body["idToken"] = json!(true);
    }
    body
}

/// An app under test: one request in, one answer out (in-process).
pub(crate) trait TestApp: Send + Sync {
    fn send(&self, req: TestRequest) -> impl Future<Output = Reply> + Send;

    /// Which proof the browser side sends (the code, unless the app says
    /// otherwise).
    fn proof_kind(&self) -> ProofKind {
        ProofKind::Code
    }
}

/// Users kept in memory: the app's sign-up hook.
#[derive(Debug, Default)]
pub(crate) struct MemoryUsers {
    next: AtomicI64,
    names: Mutex<HashMap<String, i64>>,
}

#[async_trait::async_trait]
impl SignUpHook<i64> for MemoryUsers {
    async fn create_user(&self, username: &str) -> Result<i64, SignUpError> {
        let mut names = self.names.lock().unwrap();
        if names.contains_key(username) {
            return Err(SignUpError::Refused("this username is taken".to_owned()));
        }
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        names.insert(username.to_owned(), id);
        Ok(id)
    }

    async fn abandon_user(&self, user: &i64) -> Result<(), SignUpError> {
        self.names.lock().unwrap().retain(|_, id| id != user);
        Ok(())
    }

    async fn username_available(&self, username: &str) -> Result<bool, SignUpError> {
        Ok(!self.names.lock().unwrap().contains_key(username))
    }

    async fn username_of(&self, user: &i64) -> Result<Option<String>, SignUpError> {
        let names = self.names.lock().unwrap();
        Ok(names
            .iter()
            .find(|(_, id)| *id == user)
            .map(|(name, _)| name.clone()))
    }
}

/// A passlock over the embedded provider and memory stores, on a manual clock.
pub(crate) async fn passlock(clock: &ManualClock) -> Passlock<i64> {
    passlock_on(Arc::new(MemoryAuthenticatorStore::<i64>::new()), clock).await
}

/// The embedded provider's configuration for the tests, on `clock` (the
/// clock of the Passlock too: ceremony times and session freshness are
/// read on one clock, as in an app).
fn embedded_config(clock: &ManualClock) -> EmbeddedConfig {
    EmbeddedConfig::new("localhost", "passlock tests", [ORIGIN]).with_clock(Arc::new(clock.clone()))
}

/// A passlock over the embedded provider (memory) and `store`, on a manual clock.
pub(crate) async fn passlock_on(
    store: Arc<dyn AuthenticatorStore<i64>>,
    clock: &ManualClock,
) -> Passlock<i64> {
    let provider = EmbeddedProvider::in_memory(embedded_config(clock))
        .await
        .unwrap();
    Passlock::builder(Arc::new(provider), store)
        .sign_up(Arc::new(MemoryUsers::default()))
        .clock(Arc::new(clock.clone()))
        // Lets a scenario pose as several client addresses.
        .trusted_proxy_header("x-test-client")
        .build()
        .unwrap()
}

/// A passlock over the embedded provider keeping its passkeys and
/// ceremonies in `credentials` and `ceremonies` (SQL stores: races reach the
/// database), links in `store`, on a manual clock.
pub(crate) async fn passlock_with(
    store: Arc<dyn AuthenticatorStore<i64>>,
    credentials: Arc<dyn CredentialStore>,
    ceremonies: Arc<dyn CeremonyStore>,
    clock: &ManualClock,
) -> Passlock<i64> {
    let provider = EmbeddedProvider::new(embedded_config(clock), credentials, ceremonies)
        .await
        .unwrap();
    Passlock::builder(Arc::new(provider), store)
        .sign_up(Arc::new(MemoryUsers::default()))
        .clock(Arc::new(clock.clone()))
        .trusted_proxy_header("x-test-client")
        .build()
        .unwrap()
}

/// What a scenario runs against.
pub(crate) struct World<A> {
    pub(crate) app: A,
    pub(crate) passlock: Passlock<i64>,
    pub(crate) clock: ManualClock,
}

impl<A: TestApp> World<A> {
    /// A new browser with an empty cookie jar.
    pub(crate) fn client(&self) -> Client<'_, A> {
        Client {
            app: &self.app,
            jar: BTreeMap::new(),
            remote: None,
        }
    }

    /// The authenticators linked to `user`, as text, sorted.
    pub(crate) async fn links(&self, user: i64) -> Vec<String> {
        let mut v: Vec<String> = self
            .passlock
            .store()
            .authenticators_of(&user)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.authenticator_id.to_string())
            .collect();
        v.sort();
        v
    }

    /// The user `authenticator` is linked to.
    pub(crate) async fn owner(&self, authenticator: &str) -> Option<i64> {
        let aid = AuthenticatorId::new(authenticator).unwrap();
        self.passlock.store().user_of(&aid).await.unwrap()
    }
}

/// A browser: keeps cookies, sends `Origin` and JSON by default.
///
/// Paths are the app's; an absolute `http://` URL (a hosted provider's
/// browser-facing routes) goes over the network instead, without the app's
/// cookies, as `client.js`'s cross-origin `fetch` does.
pub(crate) struct Client<'a, A> {
    app: &'a A,
    jar: BTreeMap<String, String>,
    remote: Option<reqwest::Client>,
}

impl<A: TestApp> Client<'_, A> {
    /// Sends `req` with the jar's cookies and keeps the answer's cookies.
    pub(crate) async fn send(&mut self, mut req: TestRequest) -> Reply {
        if req.path.starts_with("http://") || req.path.starts_with("https://") {
            return self.send_remote(req).await;
        }
        if !self.jar.is_empty() {
            let cookie = self
                .jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req.headers.push(("cookie".to_owned(), cookie));
        }
        let path = req.path.clone();
        let reply = self.app.send(req).await;
        // Every answer of the passlock routes, success or error, is
        // `Cache-Control: no-store`; `client.js` keeps its own header.
        if path.starts_with("/passkey/") && path != "/passkey/client.js" {
            assert_eq!(
                reply.header("cache-control"),
                Some("no-store"),
                "{path}: {reply:?}"
            );
        }
        for (name, value) in &reply.headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                self.keep_cookie(value);
            }
        }
        reply
    }

    /// Sends `req` to another server over HTTP (no cookies either way).
    async fn send_remote(&mut self, req: TestRequest) -> Reply {
        let http = self.remote.get_or_insert_with(reqwest::Client::new);
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
        let mut builder = http.request(method, &req.path).body(req.body);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let response = builder.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = response.bytes().await.unwrap();
        Reply::new(status, headers, &body)
    }

    /// The body handing a ceremony's proof (what the ceremony helpers
    /// return) to `/register`, `/login` or `/step-up`: `{"code": proof}` or
    /// `{"id_token": proof}`, as the app's [`ProofKind`] says.
    pub(crate) fn proof(&self, proof: &str) -> Value {
        let mut body = serde_json::Map::new();
        body.insert(self.app.proof_kind().field().to_owned(), json!(proof));
        Value::Object(body)
    }

    fn keep_cookie(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';').map(str::trim);
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let removed = value.is_empty()
            || parts.any(|p| {
                let p = p.to_ascii_lowercase();
                p == "max-age=0" || p.starts_with("max-age=-")
            });
        if removed {
            self.jar.remove(name);
        } else {
            self.jar.insert(name.to_owned(), value.to_owned());
        }
    }

    /// The cookies held, as one string (to compare session ids).
    pub(crate) fn cookies(&self) -> String {
        format!("{:?}", self.jar)
    }

    /// The names of the cookies held.
    pub(crate) fn cookie_names(&self) -> Vec<&str> {
        self.jar.keys().map(String::as_str).collect()
    }

    /// `POST /passkey/registration/authorize` for an anonymous sign-up of
    /// `username`.
    pub(crate) async fn authorize_sign_up(&mut self, username: &str) -> Reply {
        self.post(
            "/passkey/registration/authorize",
            json!({ "username": username }),
        )
        .await
    }

    /// The value of one cookie held.
    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.get(name).map(String::as_str)
    }

    /// Sets one cookie, as a `Set-Cookie` answer would.
    pub(crate) fn set_cookie(&mut self, name: &str, value: &str) {
        self.jar.insert(name.to_owned(), value.to_owned());
    }

    /// Replaces the jar (replaying an old session cookie).
    pub(crate) fn set_cookies(&mut self, other: &Client<'_, A>) {
        self.jar = other.jar.clone();
    }

    pub(crate) async fn get(&mut self, path: &str) -> Reply {
        self.send(TestRequest {
            method: "GET",
            path: path.to_owned(),
            headers: vec![("accept".to_owned(), "application/json".to_owned())],
            body: Vec::new(),
        })
        .await
    }

    /// A same-origin JSON POST (as `client.js` sends it).
    pub(crate) async fn post(&mut self, path: &str, body: Value) -> Reply {
        self.post_raw(path, "application/json", body.to_string().into_bytes())
            .await
    }

    pub(crate) async fn post_raw(
        &mut self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        self.send(TestRequest {
            method: "POST",
            path: path.to_owned(),
            headers: vec![
                ("origin".to_owned(), ORIGIN.to_owned()),
                ("content-type".to_owned(), content_type.to_owned()),
            ],
            body,
        })
        .await
    }

    /// A same-origin JSON PATCH (a passkey rename).
    pub(crate) async fn patch(&mut self, path: &str, body: Value) -> Reply {
        self.send(TestRequest {
            method: "PATCH",
            path: path.to_owned(),
            headers: vec![
                ("origin".to_owned(), ORIGIN.to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ],
            body: body.to_string().into_bytes(),
        })
        .await
    }

    pub(crate) async fn delete(&mut self, path: &str) -> Reply {
        self.send(TestRequest {
            method: "DELETE",
            path: path.to_owned(),
            headers: vec![("origin".to_owned(), ORIGIN.to_owned())],
            body: Vec::new(),
        })
        .await
    }

    /// `GET /passkey/session`'s user id, or `None` on `401`.
    pub(crate) async fn session_user(&mut self) -> Option<i64> {
        let r = self.get("/passkey/session").await;
        match r.status {
            200 => Some(r.json["user_id"].as_str().unwrap().parse().unwrap()),
            401 => {
                r.assert_error(401, "not_authenticated");
                None
            }
            other => panic!("unexpected /session answer {other}: {r:?}"),
        }
    }

    /// The whole session view (asserts signed in).
    pub(crate) async fn session_view(&mut self) -> Value {
        let r = self.get("/passkey/session").await;
        assert_eq!(r.status, 200, "{r:?}");
        r.json
    }

    /// The browser half of a registration: authorize (with `body`), options,
    /// `create`, verification. Returns the proof (the code, or the id_token
    /// when the app takes those) and the authenticator id.
    pub(crate) async fn registration_ceremony(
        &mut self,
        auth: &mut SoftAuthenticator,
        body: Value,
    ) -> (String, String) {
        let answer = self.post("/passkey/registration/authorize", body).await;
        assert_eq!(answer.status, 200, "authorize: {answer:?}");
        let base = service_base(&answer.json);
        let options = self
            .post(
                &format!("{base}/registration/options"),
                json!({ "registrationToken": answer.json["registrationToken"] }),
            )
            .await;
        assert_eq!(options.status, 200, "options: {options:?}");
        let response = auth.create(&options.json["optionsJSON"]).await.unwrap();
        let verified = self
            .post(
                &format!("{base}/registration/verification"),
                verification_body(
                    response,
                    &options.json["sessionToken"],
                    self.app.proof_kind() == ProofKind::IdToken,
                ),
            )
            .await;
        assert_eq!(verified.status, 200, "verification: {verified:?}");
        assert_eq!(verified.json["_tag"], "RegistrationSuccess");
        let proof = self.app.proof_kind().field();
        (
            verified.json[proof].as_str().unwrap().to_owned(),
            verified.json["principal"]["authenticatorId"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    /// The browser half of an authentication for `purpose`; returns the
    /// proof (code or id_token, see [`TestApp::proof_kind`]).
    pub(crate) async fn authentication_ceremony(
        &mut self,
        auth: &mut SoftAuthenticator,
        purpose: &str,
    ) -> String {
        let kind = self.app.proof_kind();
        let verified = self
            .authentication_answer(auth, purpose, kind == ProofKind::IdToken)
            .await;
        verified.json[kind.field()].as_str().unwrap().to_owned()
    }

    /// The browser half of an authentication for `purpose`; returns the
    /// provider's verification answer, asked to hold both the `code` and the
    /// `id_token`.
    pub(crate) async fn authentication_verified(
        &mut self,
        auth: &mut SoftAuthenticator,
        purpose: &str,
    ) -> Reply {
        self.authentication_answer(auth, purpose, true).await
    }

    /// The browser half of an authentication for `purpose`, asking for an
    /// id_token when `id_token`; returns the verification answer.
    async fn authentication_answer(
        &mut self,
        auth: &mut SoftAuthenticator,
        purpose: &str,
        id_token: bool,
    ) -> Reply {
        let answer = self
            .post(
                "/passkey/authentication/authorize",
                json!({ "purpose": purpose }),
            )
            .await;
        assert_eq!(answer.status, 200, "authorize: {answer:?}");
        let base = service_base(&answer.json);
        let options = self
            .post(
                &format!("{base}/authentication/options"),
                json!({ "authenticationToken": answer.json["authenticationToken"] }),
            )
            .await;
        assert_eq!(options.status, 200, "options: {options:?}");
        let response = auth.get(&options.json["optionsJSON"]).await.unwrap();
        let verified = self
            .post(
                &format!("{base}/authentication/verification"),
                verification_body(response, &options.json["sessionToken"], id_token),
            )
            .await;
        assert_eq!(verified.status, 200, "verification: {verified:?}");
        verified
    }

    /// Signs up `username` with a new passkey on `auth`; returns
    /// `(user_id, authenticator_id)`.
    pub(crate) async fn sign_up(
        &mut self,
        auth: &mut SoftAuthenticator,
        username: &str,
    ) -> (i64, String) {
        let (code, aid) = self
            .registration_ceremony(auth, json!({ "username": username }))
            .await;
        let r = self.post("/passkey/register", self.proof(&code)).await;
        assert_eq!(r.status, 201, "register: {r:?}");
        assert_eq!(r.json["authenticator_id"], aid.as_str());
        (r.json["user_id"].as_str().unwrap().parse().unwrap(), aid)
    }

    /// A usernameless login with `auth`.
    pub(crate) async fn login(&mut self, auth: &mut SoftAuthenticator) -> Reply {
        let code = self.authentication_ceremony(auth, "login").await;
        self.post("/passkey/login", self.proof(&code)).await
    }

    /// A step-up with `auth`.
    pub(crate) async fn step_up(&mut self, auth: &mut SoftAuthenticator) -> Reply {
        let code = self.authentication_ceremony(auth, "step_up").await;
        self.post("/passkey/step-up", self.proof(&code)).await
    }
}

/// `{endpoint}/v2/{tenancyId}/passkey` of an authorize answer.
pub(crate) fn service_base(answer: &Value) -> String {
    format!(
        "{}/v2/{}/passkey",
        answer["endpoint"].as_str().unwrap(),
        answer["tenancyId"].as_str().unwrap()
    )
}

/// A fresh software authenticator on [`ORIGIN`].
pub(crate) fn authenticator() -> SoftAuthenticator {
    SoftAuthenticator::new(ORIGIN)
}

/// A JSON POST as a browser at client address `addr` sends it (the test
/// passlocks trust the `x-test-client` header as the client address).
pub(crate) fn post_request_from(addr: &str, path: &str, body: Value) -> TestRequest {
    TestRequest {
        method: "POST",
        path: path.to_owned(),
        headers: vec![
            ("origin".to_owned(), ORIGIN.to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-test-client".to_owned(), addr.to_owned()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// [`post_request_from`] sent by the browser `c` (with its cookies).
pub(crate) async fn post_from<A: TestApp>(
    c: &mut Client<'_, A>,
    addr: &str,
    path: &str,
    body: Value,
) -> Reply {
    c.send(post_request_from(addr, path, body)).await
}

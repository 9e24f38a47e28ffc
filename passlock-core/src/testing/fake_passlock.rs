//! [`FakePasslock`]: an in-process Passlock REST API v2 on `127.0.0.1:0`,
//! following the wire format of DESIGN section 6 exactly.
//!
//! * Server-side routes (`principal`, `*/authorize`, `passkeys`, `challenges`)
//!   require `Authorization: Bearer {apiKey}` (else `401 @error/Unauthorized`);
//!   a right key on another tenancy's path is `403 @error/Forbidden`.
//! * Errors are `{"_tag":"@error/<Name>","message"}` with
//!   `Content-Type: application/json` exactly.
//! * [`FakePasslock::issue`] simulates a completed browser ceremony: it
//!   records the passkey in the vault and returns a single-use code (valid
//!   five minutes on the fake's clock) and an RS256 id_token.
//! * The browser-facing `options` / `verification` routes run a *simulated*
//!   ceremony: the fake trusts `response.id` as the credential id (it does
//!   not check WebAuthn signatures; the embedded provider does that) and
//!   reports the UV flag of `response.response.authenticatorData` as
//!   `passkey.userVerified` and `pk:uv`.
//! * The code and the id_token of one ceremony are twins: the principal id
//!   the code exchanges to is the id_token's `jti`.
//! * `GET /.well-known/jwks.json` (at the root) serves every key;
//!   [`rotate_key`](FakePasslock::rotate_key) adds a key that signs from then
//!   on, [`remove_old_keys`](FakePasslock::remove_old_keys) drops the others.
//! * Faults: [`set_fault`](FakePasslock::set_fault) applies to every route
//!   family (except [`Fault::JwksDown`], which only takes the JWKS down);
//!   [`set_route_fault`](FakePasslock::set_route_fault) overrides it for one
//!   [`RouteFamily`].
//! * [`hits`](FakePasslock::hits) counts requests per route name (counted
//!   on arrival, before any fault): `principal`, `authorize_registration`,
//!   `authorize_authentication`, `registration_options`,
//!   `registration_verification`, `authentication_options`,
//!   `authentication_verification`, `list_passkeys`, `get_passkey`,
//!   `prepare_update`, `prepare_delete`, `prepare_prune`, `create_challenge`,
//!   `get_challenge`, `verify_challenge`, `delete_challenge`, `jwks`,
//!   `unknown`.
//!
//! Not served (answer `404 @error/NotFound`): the vault `*/exchange` routes
//! and the seed's PATCH/DELETE vault variants.

// Route handlers answer `Result<Resp, Resp>`: both arms are responses, and
// `?` keeps them short. Size does not matter in a test fake.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::clock::{SharedClock, UnixMillis};
use crate::error::ConfigError;
use crate::id::{PasskeyId, TenancyId, UserHandle};
use crate::principal::{ExtendedPrincipal, PasskeyFlags, PrincipalMetadata};
use crate::provider::passlock::{Passkey, PasskeySummary, PasslockConfig, PasslockHosted};
use crate::secret::{ApiKey, Code, IdToken, random_token};
use crate::testing::keys::{KeyError, TestKey};
use crate::testing::server::{self, Fake, Head, Plan, Resp, Server, internal_error, ok, respond};

/// How long issued codes, tokens and id_tokens live (ms).
const TTL_MS: i64 = 5 * 60 * 1000;
/// Challenges live ten minutes.
const CHALLENGE_TTL_MS: i64 = 10 * 60 * 1000;
/// Wrong codes allowed per challenge.
const CHALLENGE_ATTEMPTS: u32 = 3;
/// Pending challenges per email before `ChallengeRateLimited`.
const CHALLENGE_RATE: usize = 3;

/// A fault the fake injects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fault {
    /// Answer normally.
    #[default]
    None,
    /// Wait this long before answering.
    Latency(Duration),
    /// Answer `500` with a `text/plain` body.
    Status500,
    /// Answer `200 application/json` with a body that is not JSON.
    MalformedJson,
    /// Answer the normal body with `Content-Type: text/html`.
    WrongContentType,
    /// Close the connection without answering.
    DropConnection,
    /// The JWKS answers `503` (other routes are unaffected).
    JwksDown,
    /// Answer `302 Found` to this location (clients must not follow it).
    Redirect(String),
    /// Answer `429 Too Many Requests` (a `text/plain` body), with this
    /// `Retry-After` value when given (seconds or an HTTP date, sent as is).
    TooManyRequests(Option<String>),
    /// Answer this typed error: `{"_tag":"@error/<tag>","message"}` (with
    /// `retryAfterSeconds: 30` for `ChallengeRateLimited` and
    /// `credentialId`/`rpId` for `PasskeyNotFound`).
    ApiError {
        /// The HTTP status.
        status: u16,
        /// The name after `@error/`.
        tag: &'static str,
    },
}

/// A family of routes, for [`FakePasslock::set_route_fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RouteFamily {
    /// `GET /principal/{code}`.
    Principal,
    /// `POST /passkey/{registration,authentication}/authorize`.
    Authorize,
    /// The browser-facing `options` and `verification` routes.
    Ceremony,
    /// The vault: `/passkeys/...`.
    Passkeys,
    /// `/challenges...`.
    Challenges,
    /// `GET /.well-known/jwks.json`.
    Jwks,
    /// Anything else.
    Unknown,
}

struct PendingRegistration {
    rp_id: String,
    user_id: UserHandle,
    username: String,
    expires_at: UnixMillis,
}

struct PendingAuthentication {
    rp_id: String,
    allow: Option<Vec<String>>,
    expires_at: UnixMillis,
}

enum Session {
    Registration(PendingRegistration),
    Authentication(PendingAuthentication),
}

struct ChallengeRecord {
    public: Value,
    email: String,
    secret: String,
    code: String,
    expires_at: UnixMillis,
    attempts: u32,
}

#[derive(Default)]
struct State {
    keys: Vec<TestKey>,
    next_kid: u32,
    codes: HashMap<String, ExtendedPrincipal>,
    registrations: HashMap<String, PendingRegistration>,
    authentications: HashMap<String, PendingAuthentication>,
    sessions: HashMap<String, Session>,
    vault: BTreeMap<String, Passkey>,
    challenges: HashMap<String, ChallengeRecord>,
    page_size: usize,
    fault: Fault,
    route_faults: HashMap<RouteFamily, Fault>,
}

/// The tenancy id is [`server::Shared::id`].
type Inner = server::Shared<State>;

/// The fake Passlock service. Stops when dropped.
pub struct FakePasslock {
    inner: Arc<Inner>,
    server: Server,
}

impl std::fmt::Debug for FakePasslock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePasslock")
            .field("addr", &self.server.addr())
            .field("tenancy", &self.inner.id)
            .finish_non_exhaustive()
    }
}

/// Why the fake could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeError {
    /// Binding the socket failed.
    #[error("cannot bind the fake server: {0}")]
    Io(#[from] std::io::Error),
    /// Key generation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl FakePasslock {
    /// Starts a fake on the system clock.
    pub async fn start() -> Result<Self, FakeError> {
        Self::start_with_clock(crate::clock::system()).await
    }

    /// Starts a fake on `clock` (a `ManualClock` for expiry tests).
    pub async fn start_with_clock(clock: SharedClock) -> Result<Self, FakeError> {
        let tenancy = TenancyId::new(format!("tenancy-{}", &random_token(6)))
            .map_err(|e| ConfigError::new("tenancy", e.to_string()))?;
        let state = State {
            keys: vec![TestKey::rsa("key-1")?],
            next_kid: 2,
            page_size: 10,
            ..State::default()
        };
        let inner = Arc::new(Inner::new(
            tenancy,
            ApiKey::new(format!("sk_test_{}", random_token(24))),
            clock,
            state,
        ));
        let server = Server::start(inner.clone()).await?;
        Ok(Self { inner, server })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// The tenancy id.
    pub fn tenancy_id(&self) -> TenancyId {
        self.inner.id.clone()
    }

    /// The API key.
    pub fn api_key(&self) -> ApiKey {
        self.inner.api_key.clone()
    }

    /// The fake's clock.
    pub fn clock(&self) -> SharedClock {
        self.inner.clock()
    }

    /// A client configuration pointing at this fake.
    pub fn client_config(&self) -> PasslockConfig {
        PasslockConfig::new(self.tenancy_id(), self.api_key()).with_endpoint(self.endpoint())
    }

    /// A [`PasslockHosted`] provider on this fake (RP id `localhost`), on
    /// the fake's clock.
    pub fn provider(&self) -> Result<PasslockHosted, ConfigError> {
        PasslockHosted::new(self.client_config(), "localhost", "Fake app", self.clock())
    }

    /// Injects `fault` on every route family (see [`Fault::JwksDown`]).
    pub fn set_fault(&self, fault: Fault) {
        self.inner.state().fault = fault;
    }

    /// Injects `fault` on one route family, overriding [`set_fault`](Self::set_fault).
    /// `Fault::None` here clears the override.
    pub fn set_route_fault(&self, family: RouteFamily, fault: Fault) {
        let mut s = self.inner.state();
        if fault == Fault::None {
            s.route_faults.remove(&family);
        } else {
            s.route_faults.insert(family, fault);
        }
    }

    /// Requests received on route `name` (see the module docs for names).
    pub fn hits(&self, name: &str) -> u64 {
        self.inner.hits(name)
    }

    /// Requests received on every route together (unknown paths included).
    pub fn total_hits(&self) -> u64 {
        self.inner.total_hits()
    }

    /// Requests received on the JWKS.
    pub fn jwks_fetches(&self) -> u64 {
        self.hits("jwks")
    }

    /// Sets the vault's page size (default 10).
    pub fn set_page_size(&self, size: usize) {
        self.inner.state().page_size = size.max(1);
    }

    /// The key that signs id_tokens now.
    pub fn signing_key(&self) -> Option<TestKey> {
        self.inner.state().keys.last().cloned()
    }

    /// Adds a fresh RSA key that signs from now on (the old ones stay in the
    /// JWKS); returns its `kid`.
    pub fn rotate_key(&self) -> Result<String, KeyError> {
        let n = self.inner.state().next_kid;
        let key = TestKey::rsa(format!("key-{n}"))?;
        let kid = key.kid().to_owned();
        let mut s = self.inner.state();
        s.next_kid = n + 1;
        s.keys.push(key);
        Ok(kid)
    }

    /// Removes every key but the current one from the JWKS.
    pub fn remove_old_keys(&self) {
        let mut s = self.inner.state();
        let len = s.keys.len();
        if len > 1 {
            s.keys.drain(..len - 1);
        }
    }

    /// The standard id_token claims of a ceremony, on the fake's clock.
    pub fn claims(
        &self,
        user_id: &UserHandle,
        authenticator_id: &str,
        user_verified: bool,
    ) -> Value {
        let now = self.inner.now().div_euclid(1000);
        json!({
            "iss": "passlock.dev",
            "aud": self.inner.id.as_str(),
            "sub": user_id.as_str(),
            "jti": random_token(16),
            "iat": now,
            "exp": now + TTL_MS / 1000,
            "a:id": authenticator_id,
            "a:typ": "passkey",
            "pk:uv": user_verified,
        })
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &Value) -> Result<IdToken, KeyError> {
        let key = self.signing_key().ok_or(KeyError::Generate)?;
        Ok(IdToken::new(key.sign(claims)?))
    }

    /// Simulates a completed browser ceremony: records the passkey in the
    /// vault (if new) and returns a single-use code and an id_token.
    pub fn issue(
        &self,
        user_id: &UserHandle,
        authenticator_id: &str,
        user_verified: bool,
    ) -> Result<(Code, IdToken), KeyError> {
        let claims = self.claims(user_id, authenticator_id, user_verified);
        let token = self.sign(&claims)?;
        // One ceremony: the code's principal id is the id_token's jti.
        let jti = claims["jti"].as_str().unwrap_or_default();
        let code = issue_code(
            &self.inner,
            user_id,
            authenticator_id,
            user_verified,
            None,
            jti,
        )
        .ok_or(KeyError::Generate)?;
        Ok((Code::new(code), token))
    }

    /// Like [`issue`](Self::issue) but only the single-use code, without
    /// signing an id_token (cheap: for benchmarks of the code exchange).
    pub fn issue_code(
        &self,
        user_id: &UserHandle,
        authenticator_id: &str,
        user_verified: bool,
    ) -> Option<Code> {
        let principal_id = random_token(16);
        issue_code(
            &self.inner,
            user_id,
            authenticator_id,
            user_verified,
            None,
            &principal_id,
        )
        .map(Code::new)
    }

    /// Puts a passkey into the vault.
    pub fn add_passkey(&self, passkey_id: &str, user_id: &UserHandle, username: &str) {
        let now = self.inner.now();
        if let Ok(id) = PasskeyId::new(passkey_id) {
            let mut p = Passkey::new(id, Some(user_id.clone()), Some(username.to_owned()));
            p.created_at = Some(now);
            self.inner.state().vault.insert(passkey_id.to_owned(), p);
        }
    }

    /// Whether the vault holds `passkey_id`.
    pub fn has_passkey(&self, passkey_id: &str) -> bool {
        self.inner.state().vault.contains_key(passkey_id)
    }

    /// The username stored on a passkey.
    pub fn passkey_username(&self, passkey_id: &str) -> Option<String> {
        self.inner
            .state()
            .vault
            .get(passkey_id)
            .and_then(|p| p.username.clone())
    }

    /// The one-time code of a pending challenge (what the mail carried).
    pub fn challenge_code(&self, challenge_id: &str) -> Option<String> {
        self.inner
            .state()
            .challenges
            .get(challenge_id)
            .map(|c| c.code.clone())
    }
}

fn issue_code(
    inner: &Inner,
    user_id: &UserHandle,
    authenticator_id: &str,
    user_verified: bool,
    username: Option<&str>,
    principal_id: &str,
) -> Option<String> {
    let now = inner.now();
    let authenticator = crate::id::AuthenticatorId::new(authenticator_id).ok()?;
    let code = random_token(24);
    if principal_id.is_empty() {
        return None;
    }
    let principal = ExtendedPrincipal {
        tag: ExtendedPrincipal::TAG.to_owned(),
        id: principal_id.to_owned(),
        user_id: user_id.clone(),
        authenticator_id: authenticator,
        authenticator_type: "passkey".to_owned(),
        passkey: Some(PasskeyFlags {
            user_verified,
            verified: true,
            platform_name: None,
        }),
        created_at: now,
        expires_at: now + TTL_MS,
        metadata: PrincipalMetadata::default(),
    };
    let mut s = inner.state();
    s.codes.insert(code.clone(), principal);
    if !s.vault.contains_key(authenticator_id)
        && let Ok(id) = PasskeyId::new(authenticator_id)
    {
        let mut p = Passkey::new(id, Some(user_id.clone()), username.map(str::to_owned));
        p.created_at = Some(now);
        s.vault.insert(authenticator_id.to_owned(), p);
    }
    Some(code)
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

fn err(status: u16, name: &str) -> Resp {
    err_with(status, name, Map::new())
}

fn err_with(status: u16, name: &str, extra: Map<String, Value>) -> Resp {
    let mut body = Map::new();
    body.insert("_tag".into(), Value::String(format!("@error/{name}")));
    body.insert("message".into(), Value::String(format!("{name} (fake)")));
    body.extend(extra);
    ok(status, &Value::Object(body))
}

fn injected_error(status: u16, tag: &str) -> Resp {
    let mut extra = Map::new();
    match tag {
        "ChallengeRateLimited" => {
            extra.insert("retryAfterSeconds".into(), json!(30));
        }
        "PasskeyNotFound" => {
            extra.insert("credentialId".into(), json!("injected-credential"));
            extra.insert("rpId".into(), json!("localhost"));
        }
        _ => {}
    }
    err_with(status, tag, extra)
}

/// What the pipeline does about `fault`.
fn plan(fault: Fault) -> Plan {
    match fault {
        Fault::None => Plan::None,
        Fault::Latency(d) => Plan::Latency(d),
        Fault::DropConnection => Plan::DropConnection,
        Fault::TooManyRequests(retry_after) => {
            Plan::Answer(server::too_many_requests(retry_after.as_deref()))
        }
        Fault::ApiError { status, tag } => Plan::Answer(injected_error(status, tag)),
        Fault::Redirect(location) => {
            let mut r = respond(302, "text/plain", Vec::new());
            if let Ok(v) = hyper::header::HeaderValue::from_str(&location) {
                r.headers_mut().insert(hyper::header::LOCATION, v);
            }
            Plan::Answer(r)
        }
        Fault::JwksDown => Plan::Answer(internal_error(503)),
        Fault::Status500 => Plan::Answer(internal_error(500)),
        Fault::MalformedJson => Plan::MalformedJson(b"{\"_tag\":\"ExtendedPrinc"),
        Fault::WrongContentType => Plan::WrongContentType,
    }
}

/// (family, hit name, needs the API key)
fn classify(method: &hyper::Method, s: &[&str]) -> (RouteFamily, &'static str, bool) {
    use hyper::Method as M;
    if s == [".well-known", "jwks.json"] && method == M::GET {
        return (RouteFamily::Jwks, "jwks", false);
    }
    let rest: &[&str] = match s {
        ["v2", _tenancy, rest @ ..] => rest,
        _ => return (RouteFamily::Unknown, "unknown", false),
    };
    match (method, rest) {
        (&M::GET, ["principal", _]) => (RouteFamily::Principal, "principal", true),
        (&M::POST, ["passkey", "registration", "authorize"]) => {
            (RouteFamily::Authorize, "authorize_registration", true)
        }
        (&M::POST, ["passkey", "authentication", "authorize"]) => {
            (RouteFamily::Authorize, "authorize_authentication", true)
        }
        (&M::POST, ["passkey", "registration", "options"]) => {
            (RouteFamily::Ceremony, "registration_options", false)
        }
        (&M::POST, ["passkey", "registration", "verification"]) => {
            (RouteFamily::Ceremony, "registration_verification", false)
        }
        (&M::POST, ["passkey", "authentication", "options"]) => {
            (RouteFamily::Ceremony, "authentication_options", false)
        }
        (&M::POST, ["passkey", "authentication", "verification"]) => {
            (RouteFamily::Ceremony, "authentication_verification", false)
        }
        (&M::GET, ["passkeys"] | ["passkeys", ""]) => {
            (RouteFamily::Passkeys, "list_passkeys", true)
        }
        (&M::POST, ["passkeys", "update"]) => (RouteFamily::Passkeys, "prepare_update", true),
        (&M::POST, ["passkeys", "delete"]) => (RouteFamily::Passkeys, "prepare_delete", true),
        (&M::POST, ["passkeys", "prune"]) => (RouteFamily::Passkeys, "prepare_prune", true),
        (&M::GET, ["passkeys", _]) => (RouteFamily::Passkeys, "get_passkey", true),
        (&M::POST, ["challenges"]) => (RouteFamily::Challenges, "create_challenge", true),
        (&M::POST, ["challenges", "verify"]) => (RouteFamily::Challenges, "verify_challenge", true),
        (&M::GET, ["challenges", _]) => (RouteFamily::Challenges, "get_challenge", true),
        (&M::DELETE, ["challenges", _]) => (RouteFamily::Challenges, "delete_challenge", true),
        _ => (RouteFamily::Unknown, "unknown", false),
    }
}

impl Fake for Inner {
    const PLUS_AS_SPACE: bool = false;
    type Route = (RouteFamily, &'static str, bool);

    fn arrive(&self, head: &Head) -> (Self::Route, Plan) {
        let (family, name, needs_key) = classify(&head.method, &head.segs());
        self.hit(name);
        let fault = {
            let s = self.state();
            let f = s
                .route_faults
                .get(&family)
                .cloned()
                .unwrap_or_else(|| s.fault.clone());
            if f == Fault::JwksDown && family != RouteFamily::Jwks {
                Fault::None
            } else {
                f
            }
        };
        ((family, name, needs_key), plan(fault))
    }

    fn too_large(&self) -> Resp {
        err(413, "BadRequest")
    }

    fn route(&self, head: &Head, (family, name, needs_key): Self::Route, body: &[u8]) -> Resp {
        let segs = &head.segs;
        let tenancy_ok = segs.get(1).map(String::as_str) == Some(self.id.as_str());
        if needs_key {
            if !self.key_ok(head.bearer.as_deref()) {
                err(401, "Unauthorized")
            } else if !tenancy_ok {
                err(403, "Forbidden")
            } else {
                dispatch(self, name, &segs[2..], &head.query, body)
            }
        } else if family == RouteFamily::Ceremony && !tenancy_ok {
            err(404, "InvalidTenancy")
        } else {
            dispatch(
                self,
                name,
                segs.get(2..).unwrap_or_default(),
                &head.query,
                body,
            )
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Resp> {
    serde_json::from_slice(body).map_err(|_| err(400, "BadRequest"))
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn dispatch(inner: &Inner, name: &str, rest: &[String], query: &str, body: &[u8]) -> Resp {
    let r = match name {
        "jwks" => Ok(jwks(inner)),
        "principal" => Ok(exchange(inner, rest.get(1).map_or("", String::as_str))),
        "authorize_registration" => authorize_registration(inner, body),
        "authorize_authentication" => authorize_authentication(inner, body),
        "registration_options" => registration_options(inner, body),
        "authentication_options" => authentication_options(inner, body),
        "registration_verification" | "authentication_verification" => {
            ceremony_verification(inner, body)
        }
        "list_passkeys" => Ok(list_passkeys(inner, query)),
        "get_passkey" => Ok(get_passkey(inner, rest.get(1).map_or("", String::as_str))),
        "prepare_update" => prepare_update(inner, body),
        "prepare_delete" => prepare_delete(inner, body),
        "prepare_prune" => prepare_prune(inner, body),
        "create_challenge" => create_challenge(inner, body),
        "get_challenge" => Ok(get_challenge(inner, rest.get(1).map_or("", String::as_str))),
        "verify_challenge" => verify_challenge(inner, body),
        "delete_challenge" => Ok(delete_challenge(
            inner,
            rest.get(1).map_or("", String::as_str),
        )),
        _ => Ok(err(404, "NotFound")),
    };
    r.unwrap_or_else(|e| e)
}

fn jwks(inner: &Inner) -> Resp {
    let keys: Vec<Value> = inner
        .state()
        .keys
        .iter()
        .filter_map(|k| serde_json::to_value(k.jwk()).ok())
        .collect();
    ok(200, &json!({ "keys": keys }))
}

fn exchange(inner: &Inner, code: &str) -> Resp {
    let now = inner.now();
    // Single use: taken out before it is checked.
    let taken = inner.state().codes.remove(code);
    match taken {
        Some(p) if p.expires_at > now => match serde_json::to_value(&p) {
            Ok(v) => ok(200, &v),
            Err(_) => err(500, "Internal"),
        },
        _ => err(404, "InvalidCode"),
    }
}

fn authorize_registration(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let v: Value = parse(body)?;
    let (Some(rp_id), Some(_rp_name), Some(user), Some(username)) = (
        str_field(&v, "rpId"),
        str_field(&v, "rpName"),
        str_field(&v, "userId"),
        str_field(&v, "username"),
    ) else {
        return Err(err(400, "BadRequest"));
    };
    let user_id = UserHandle::new(user).map_err(|_| err(400, "BadRequest"))?;
    let token = random_token(24);
    let expires_at = inner.now() + TTL_MS;
    inner.state().registrations.insert(
        token.clone(),
        PendingRegistration {
            rp_id: rp_id.to_owned(),
            user_id,
            username: username.to_owned(),
            expires_at,
        },
    );
    Ok(ok(
        200,
        &json!({"_tag": "AuthorizedPasskeyRegistration", "registrationToken": token, "expiresAt": expires_at}),
    ))
}

fn authorize_authentication(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let v: Value = parse(body)?;
    let Some(rp_id) = str_field(&v, "rpId") else {
        return Err(err(400, "BadRequest"));
    };
    let allow = match v.get("allowCredentials") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| err(400, "BadRequest"))?,
        ),
        Some(_) => return Err(err(400, "BadRequest")),
    };
    let token = random_token(24);
    let expires_at = inner.now() + TTL_MS;
    inner.state().authentications.insert(
        token.clone(),
        PendingAuthentication {
            rp_id: rp_id.to_owned(),
            allow,
            expires_at,
        },
    );
    Ok(ok(
        200,
        &json!({"_tag": "AuthorizedPasskeyAuthentication", "authenticationToken": token, "expiresAt": expires_at}),
    ))
}

fn registration_options(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let v: Value = parse(body)?;
    let token = str_field(&v, "registrationToken").ok_or_else(|| err(400, "BadRequest"))?;
    let now = inner.now();
    let mut s = inner.state();
    let pending = s
        .registrations
        .remove(token)
        .filter(|p| p.expires_at > now)
        .ok_or_else(|| err(400, "BadRequest"))?;
    let options = json!({
        "challenge": random_token(32),
        "rp": {"id": pending.rp_id, "name": "Fake app"},
        // WebAuthn's `user.id` is bytes: the handle's, base64url-encoded
        // (the handle itself is any string the app chose, e.g. "42").
        "user": {"id": URL_SAFE_NO_PAD.encode(pending.user_id.as_str()), "name": pending.username, "displayName": pending.username},
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
        "timeout": 60000,
        "attestation": "none",
    });
    let session = random_token(24);
    s.sessions
        .insert(session.clone(), Session::Registration(pending));
    Ok(ok(
        200,
        &json!({"sessionToken": session, "optionsJSON": options}),
    ))
}

fn authentication_options(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let v: Value = parse(body)?;
    let token = str_field(&v, "authenticationToken").ok_or_else(|| err(400, "BadRequest"))?;
    let now = inner.now();
    let mut s = inner.state();
    let pending = s
        .authentications
        .remove(token)
        .filter(|p| p.expires_at > now)
        .ok_or_else(|| err(400, "BadRequest"))?;
    let allow: Vec<Value> = pending
        .allow
        .iter()
        .flatten()
        .map(|id| json!({"type": "public-key", "id": id}))
        .collect();
    let options = json!({
        "challenge": random_token(32),
        "rpId": pending.rp_id,
        "allowCredentials": allow,
        "userVerification": "preferred",
        "timeout": 60000,
    });
    let session = random_token(24);
    s.sessions
        .insert(session.clone(), Session::Authentication(pending));
    Ok(ok(
        200,
        &json!({"sessionToken": session, "optionsJSON": options, "mediation": "optional"}),
    ))
}

/// The UV flag (bit 2 of the flags byte after the 32-byte RP id hash) of
/// the `response.response.authenticatorData` (base64url) the browser sent,
/// as the service reports it in `passkey.userVerified` and `pk:uv`. A
/// response without readable authenticator data did not verify the user.
fn uv_flag(body: &Value) -> bool {
    body.get("response")
        .and_then(|r| r.get("response"))
        .and_then(|r| str_field(r, "authenticatorData"))
        .and_then(|d| URL_SAFE_NO_PAD.decode(d.trim_end_matches('=')).ok())
        .and_then(|data| data.get(32).copied())
        .is_some_and(|flags| flags & 0x04 != 0)
}

/// The simulated verification: trusts `response.id` as the credential id
/// and reads the UV flag from the authenticator data (see [`uv_flag`]).
fn ceremony_verification(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let v: Value = parse(body)?;
    let session = str_field(&v, "sessionToken").ok_or_else(|| err(400, "BadRequest"))?;
    let cred = v
        .get("response")
        .and_then(|r| str_field(r, "id"))
        .ok_or_else(|| err(400, "BadRequest"))?
        .to_owned();
    PasskeyId::new(cred.as_str()).map_err(|_| err(400, "BadRequest"))?;
    let now = inner.now();
    let taken = inner.state().sessions.remove(session);
    let (tag, user_id, username) = match taken {
        Some(Session::Registration(p)) if p.expires_at > now => {
            ("RegistrationSuccess", p.user_id, Some(p.username))
        }
        Some(Session::Authentication(p)) if p.expires_at > now => {
            let owner = inner
                .state()
                .vault
                .get(&cred)
                .and_then(|k| k.user_id.clone());
            let Some(owner) = owner else {
                let mut extra = Map::new();
                extra.insert("credentialId".into(), json!(cred));
                extra.insert("rpId".into(), json!(p.rp_id));
                return Err(err_with(404, "PasskeyNotFound", extra));
            };
            if p.allow.as_ref().is_some_and(|a| !a.contains(&cred)) {
                return Err(err(400, "BadRequest"));
            }
            ("AuthenticationSuccess", owner, None)
        }
        _ => return Err(err(400, "BadRequest")),
    };
    let user_verified = uv_flag(&v);
    // One ceremony: the code's principal id is the id_token's jti.
    let jti = random_token(16);
    let code = issue_code(
        inner,
        &user_id,
        &cred,
        user_verified,
        username.as_deref(),
        &jti,
    )
    .ok_or_else(|| err(400, "BadRequest"))?;
    let now_s = now.div_euclid(1000);
    let claims = json!({
        "iss": "passlock.dev", "aud": inner.id.as_str(), "sub": user_id.as_str(),
        "jti": jti, "iat": now_s, "exp": now_s + TTL_MS / 1000,
        "a:id": cred, "a:typ": "passkey", "pk:uv": user_verified,
    });
    let key = inner.state().keys.last().cloned();
    let id_token = key
        .and_then(|k| k.sign(&claims).ok())
        .ok_or_else(|| err(500, "Internal"))?;
    Ok(ok(
        200,
        &json!({
            "_tag": tag,
            "principal": {"authenticatorId": cred, "userId": user_id.as_str()},
            "id_token": id_token,
            "code": code,
        }),
    ))
}

fn list_passkeys(inner: &Inner, query: &str) -> Resp {
    let cursor = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.into_owned());
    let s = inner.state();
    let after = match cursor {
        None => None,
        Some(c) => match s.vault.contains_key(&c) {
            true => Some(c),
            false => return err(400, "BadRequest"),
        },
    };
    let records: Vec<&Passkey> = match &after {
        None => s.vault.values().take(s.page_size + 1).collect(),
        Some(c) => s
            .vault
            .range::<String, _>((
                std::ops::Bound::Excluded(c.clone()),
                std::ops::Bound::Unbounded,
            ))
            .map(|(_, v)| v)
            .take(s.page_size + 1)
            .collect(),
    };
    let more = records.len() > s.page_size;
    let page: Vec<PasskeySummary> = records
        .iter()
        .take(s.page_size)
        .map(|p| PasskeySummary::new(p.id.clone(), p.user_id.clone(), p.created_at))
        .collect();
    let next = if more {
        page.last().map(|p| p.id.to_string())
    } else {
        None
    };
    ok(
        200,
        &json!({"_tag": "FindAllPasskeys", "cursor": next, "records": page}),
    )
}

fn get_passkey(inner: &Inner, id: &str) -> Resp {
    match inner.state().vault.get(id) {
        Some(p) => serde_json::to_value(p).map_or_else(|_| err(500, "Internal"), |v| ok(200, &v)),
        None => err(404, "NotFound"),
    }
}

fn prepared(inner: &Inner, tag: &str, token_field: &str, warnings: Vec<Value>) -> Resp {
    let mut body = Map::new();
    body.insert("_tag".into(), json!(tag));
    body.insert(token_field.into(), json!(random_token(24)));
    body.insert("expiresAt".into(), json!(inner.now() + TTL_MS));
    body.insert("warnings".into(), Value::Array(warnings));
    ok(202, &Value::Object(body))
}

fn prepare_update(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let v: Value = parse(body)?;
    let (Some(user), Some(username)) = (str_field(&v, "userId"), str_field(&v, "username")) else {
        return Err(err(400, "BadRequest"));
    };
    let mut s = inner.state();
    let mut n = 0;
    for p in s.vault.values_mut() {
        if p.user_id.as_ref().is_some_and(|u| u.as_str() == user) {
            p.username = Some(username.to_owned());
            n += 1;
        }
    }
    drop(s);
    let warnings = if n == 0 {
        vec![json!({"code": "NoPasskeys", "message": "the user has no passkeys"})]
    } else {
        vec![]
    };
    Ok(prepared(
        inner,
        "PreparedPasskeyUpdate",
        "updateToken",
        warnings,
    ))
}

fn prepare_delete(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let v: Value = parse(body)?;
    let ids = v.get("passkeyIds");
    let user = v.get("userId");
    let mut s = inner.state();
    let mut warnings = Vec::new();
    match (ids, user) {
        (Some(Value::Array(ids)), None) if !ids.is_empty() => {
            let mut deleted = 0;
            for id in ids {
                let Some(id) = id.as_str() else {
                    return Err(err(400, "BadRequest"));
                };
                if s.vault.remove(id).is_some() {
                    deleted += 1;
                } else {
                    warnings.push(json!({"code": "PasskeyNotFound", "message": "no such passkey", "passkeyId": id}));
                }
            }
            if deleted == 0 {
                let mut extra = Map::new();
                extra.insert("credentialId".into(), ids[0].clone());
                extra.insert("rpId".into(), json!("localhost"));
                return Err(err_with(404, "PasskeyNotFound", extra));
            }
        }
        (None, Some(Value::String(user))) => {
            let before = s.vault.len();
            s.vault
                .retain(|_, p| p.user_id.as_ref().is_none_or(|u| u.as_str() != user));
            if s.vault.len() == before {
                warnings.push(json!({"code": "NoPasskeys", "message": "the user has no passkeys"}));
            }
        }
        _ => return Err(err(400, "BadRequest")),
    }
    drop(s);
    Ok(prepared(
        inner,
        "PreparedPasskeyDelete",
        "deleteToken",
        warnings,
    ))
}

fn prepare_prune(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let v: Value = parse(body)?;
    if str_field(&v, "userId").is_none() {
        return Err(err(400, "BadRequest"));
    }
    Ok(prepared(
        inner,
        "PreparedPasskeyPrune",
        "pruneToken",
        vec![],
    ))
}

fn create_challenge(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let v: Value = parse(body)?;
    let (Some(email), Some(purpose)) = (str_field(&v, "email"), str_field(&v, "purpose")) else {
        return Err(err(400, "BadRequest"));
    };
    let valid_email = email
        .split_once('@')
        .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.contains('@'));
    if !valid_email {
        return Err(err(400, "InvalidEmail"));
    }
    let now = inner.now();
    let mut s = inner.state();
    s.challenges.retain(|_, c| c.expires_at > now);
    if v.get("invalidateOthers") == Some(&Value::Bool(true)) {
        s.challenges.retain(|_, c| c.email != email);
    }
    let pending = s.challenges.values().filter(|c| c.email == email).count();
    if pending >= CHALLENGE_RATE && v.get("skipRateLimit") != Some(&Value::Bool(true)) {
        let mut extra = Map::new();
        extra.insert("retryAfterSeconds".into(), json!(60));
        return Err(err_with(429, "ChallengeRateLimited", extra));
    }
    let id = random_token(12);
    let secret = random_token(24);
    let digits: u32 = random_token(8).bytes().fold(0u32, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    let code = format!("{:06}", digits % 1_000_000);
    let mut public = json!({
        "_tag": "Challenge",
        "challengeId": id,
        "purpose": purpose,
        "email": email,
        "createdAt": now,
        "expiresAt": now + CHALLENGE_TTL_MS,
        "metadata": v.get("metadata").cloned().unwrap_or_else(|| json!({})),
    });
    if let (Some(u), Some(obj)) = (str_field(&v, "userId"), public.as_object_mut()) {
        obj.insert("userId".into(), json!(u));
    }
    s.challenges.insert(
        id.clone(),
        ChallengeRecord {
            public: public.clone(),
            email: email.to_owned(),
            secret: secret.clone(),
            code: code.clone(),
            expires_at: now + CHALLENGE_TTL_MS,
            attempts: 0,
        },
    );
    let mut created = public;
    if let Some(obj) = created.as_object_mut() {
        obj.remove("_tag");
        obj.insert("secret".into(), json!(secret));
        obj.insert("code".into(), json!(code));
        obj.insert(
            "message".into(),
            json!({"html": format!("<p>Your code is {code}</p>"), "text": format!("Your code is {code}")}),
        );
    }
    Ok(ok(
        201,
        &json!({"_tag": "ChallengeCreated", "challenge": created}),
    ))
}

fn get_challenge(inner: &Inner, id: &str) -> Resp {
    let now = inner.now();
    match inner.state().challenges.get(id) {
        Some(c) if c.expires_at > now => ok(200, &c.public),
        Some(_) => err(410, "ChallengeExpired"),
        None => err(404, "NotFound"),
    }
}

fn verify_challenge(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let v: Value = parse(body)?;
    let (Some(id), Some(secret), Some(code)) = (
        str_field(&v, "challengeId"),
        str_field(&v, "secret"),
        str_field(&v, "code"),
    ) else {
        return Err(err(400, "BadRequest"));
    };
    let now = inner.now();
    let mut s = inner.state();
    let Some(c) = s.challenges.get_mut(id) else {
        return Err(err(404, "InvalidChallenge"));
    };
    if !ApiKey::new(secret).ct_eq(&ApiKey::new(c.secret.clone())) {
        return Err(err(400, "InvalidChallenge"));
    }
    if c.expires_at <= now {
        s.challenges.remove(id);
        return Err(err(410, "ChallengeExpired"));
    }
    if c.attempts >= CHALLENGE_ATTEMPTS {
        return Err(err(429, "ChallengeAttemptsExceeded"));
    }
    if !ApiKey::new(code).ct_eq(&ApiKey::new(c.code.clone())) {
        c.attempts += 1;
        return Err(if c.attempts >= CHALLENGE_ATTEMPTS {
            err(429, "ChallengeAttemptsExceeded")
        } else {
            err(400, "InvalidChallengeCode")
        });
    }
    let public = c.public.clone();
    s.challenges.remove(id);
    Ok(ok(
        200,
        &json!({"_tag": "ChallengeVerified", "challenge": public}),
    ))
}

fn delete_challenge(inner: &Inner, id: &str) -> Resp {
    match inner.state().challenges.remove(id) {
        Some(_) => ok(200, &json!({"_tag": "ChallengeDeleted", "challengeId": id})),
        None => err(404, "NotFound"),
    }
}

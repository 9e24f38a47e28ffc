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
//! * Mailbox challenges live ten minutes on the fake's clock; the third
//!   wrong code of a challenge (and every later attempt, even the right
//!   code) answers `429 @error/ChallengeAttemptsExceeded`; a wrong secret
//!   or an unknown id is `InvalidChallenge`; a verified challenge is
//!   consumed; a fourth pending challenge for one address is
//!   `ChallengeRateLimited` (unless `skipRateLimit`). Every `201` is
//!   recorded with its request body:
//!   [`created_challenges`](FakePasslock::created_challenges).
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
use serde_json::{Value, json};

use crate::keys::{KeyError, TestKey};
use crate::server::{self, Fake, Head, Plan, Resp, Server, internal_error, ok, respond};
use passlock_core::clock::{SharedClock, UnixMillis};
use passlock_core::error::ConfigError;
use passlock_core::id::ChallengeId;
use passlock_core::id::{PasskeyId, TenancyId, UserHandle};
use passlock_core::provider::passlock::{PasslockConfig, PasslockHosted};
use passlock_core::provider::v2::{
    AuthenticationOptionsRequest, AuthorizeAuthentication, AuthorizeRegistration,
    AuthorizedPasskeyAuthentication, AuthorizedPasskeyRegistration, CeremonySuccess, Challenge,
    ChallengeCreated, ChallengeDeleted, ChallengeMessage, ChallengeVerified, CreateChallenge,
    CreatedChallenge, ErrorBody, ErrorTag, ExtendedPrincipal, FindAllPasskeys, OptionsAnswer,
    Passkey, PasskeyFlags, PasskeySummary, PrepareUpdate, PreparedPasskeyOperation,
    PrincipalMetadata, PrunePasskeys, RegistrationOptionsRequest, SuccessTag, VaultWarning,
    VerificationRequest, VerifyChallenge,
};
use passlock_core::secret::{
    ApiKey, AuthenticationToken, ChallengeSecret, Code, IdToken, RegistrationToken, SessionToken,
    VaultToken, random_token,
};

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
    /// The `mediation` asked for at authorize time (handed back with the options).
    mediation: Option<String>,
}

enum Session {
    Registration(PendingRegistration),
    Authentication(PendingAuthentication),
}

/// A `POST /challenges` the fake answered `201`: the body as received,
/// with the id and secret it created (see
/// [`FakePasslock::created_challenges`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReceivedChallenge {
    /// The request body.
    pub request: CreateChallenge,
    /// The id of the created challenge.
    pub challenge_id: String,
    /// Its secret (what the app must keep to itself).
    pub secret: ChallengeSecret,
}

struct ChallengeRecord {
    public: Challenge,
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
    created_challenges: Vec<ReceivedChallenge>,
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
        Self::start_with_clock(passlock_core::clock::system()).await
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

    /// Every challenge created so far, in order.
    pub fn created_challenges(&self) -> Vec<ReceivedChallenge> {
        self.inner.state().created_challenges.clone()
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
    let authenticator = passlock_core::id::AuthenticatorId::new(authenticator_id).ok()?;
    let code = random_token(24);
    if principal_id.is_empty() {
        return None;
    }
    let principal = ExtendedPrincipal {
        tag: SuccessTag::ExtendedPrincipal,
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

/// The typed error body `tag` answers (message `"<Name> (fake)"`).
fn error_body(tag: ErrorTag) -> ErrorBody {
    let message = format!("{} (fake)", tag.name());
    ErrorBody::new(tag, message)
}

fn err(status: u16, tag: ErrorTag) -> Resp {
    ok(status, &error_body(tag))
}

/// `PasskeyNotFound` naming `credential_id` on `rp_id`.
fn passkey_not_found(credential_id: &str, rp_id: &str) -> Resp {
    let mut body = error_body(ErrorTag::PasskeyNotFound);
    body.credential_id = Some(credential_id.to_owned());
    body.rp_id = Some(rp_id.to_owned());
    ok(404, &body)
}

fn injected_error(status: u16, tag: &str) -> Resp {
    let mut body = error_body(ErrorTag::from_name(tag));
    match body.tag {
        ErrorTag::ChallengeRateLimited => body.retry_after_seconds = Some(30),
        ErrorTag::PasskeyNotFound => return passkey_not_found("injected-credential", "localhost"),
        _ => {}
    }
    ok(status, &body)
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
        err(413, ErrorTag::BadRequest)
    }

    fn route(&self, head: &Head, (family, name, needs_key): Self::Route, body: &[u8]) -> Resp {
        let segs = &head.segs;
        let tenancy_ok = segs.get(1).map(String::as_str) == Some(self.id.as_str());
        if needs_key {
            if !self.key_ok(head.bearer.as_deref()) {
                err(401, ErrorTag::Unauthorized)
            } else if !tenancy_ok {
                err(403, ErrorTag::Forbidden)
            } else {
                dispatch(self, name, &segs[2..], &head.query, body)
            }
        } else if family == RouteFamily::Ceremony && !tenancy_ok {
            err(404, ErrorTag::InvalidTenancy)
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
    serde_json::from_slice(body).map_err(|_| err(400, ErrorTag::BadRequest))
}

/// `Ok` when `s` is not empty, else `400 BadRequest`.
fn present(s: &str) -> Result<&str, Resp> {
    if s.is_empty() {
        Err(err(400, ErrorTag::BadRequest))
    } else {
        Ok(s)
    }
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
        _ => Ok(err(404, ErrorTag::NotFound)),
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
            Err(_) => err(500, ErrorTag::from_name("Internal")),
        },
        _ => err(404, ErrorTag::InvalidCode),
    }
}

fn authorize_registration(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let request: AuthorizeRegistration = parse(body)?;
    present(&request.rp_id)?;
    present(&request.rp_name)?;
    present(&request.username)?;
    let token = random_token(24);
    let expires_at = inner.now() + TTL_MS;
    inner.state().registrations.insert(
        token.clone(),
        PendingRegistration {
            rp_id: request.rp_id,
            user_id: request.user_id,
            username: request.username,
            expires_at,
        },
    );
    Ok(ok(
        200,
        &AuthorizedPasskeyRegistration::new(RegistrationToken::new(token), expires_at),
    ))
}

fn authorize_authentication(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let request: AuthorizeAuthentication = parse(body)?;
    present(&request.rp_id)?;
    let token = random_token(24);
    let expires_at = inner.now() + TTL_MS;
    inner.state().authentications.insert(
        token.clone(),
        PendingAuthentication {
            rp_id: request.rp_id,
            allow: request.allow_credentials,
            expires_at,
            mediation: request.mediation,
        },
    );
    Ok(ok(
        200,
        &AuthorizedPasskeyAuthentication::new(AuthenticationToken::new(token), expires_at),
    ))
}

fn registration_options(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let request: RegistrationOptionsRequest = parse(body)?;
    let token = present(request.registration_token.expose_secret())?;
    let now = inner.now();
    let mut s = inner.state();
    let pending = s
        .registrations
        .remove(token)
        .filter(|p| p.expires_at > now)
        .ok_or_else(|| err(400, ErrorTag::BadRequest))?;
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
        &OptionsAnswer::registration(SessionToken::new(session), options),
    ))
}

fn authentication_options(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let request: AuthenticationOptionsRequest = parse(body)?;
    let token = present(request.authentication_token.expose_secret())?;
    let now = inner.now();
    let mut s = inner.state();
    let pending = s
        .authentications
        .remove(token)
        .filter(|p| p.expires_at > now)
        .ok_or_else(|| err(400, ErrorTag::BadRequest))?;
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
    let mut answer = OptionsAnswer::authentication(SessionToken::new(session.clone()), options);
    if let Some(mediation) = &pending.mediation {
        answer.mediation = Some(mediation.clone());
    }
    s.sessions.insert(session, Session::Authentication(pending));
    Ok(ok(200, &answer))
}

/// The UV flag (bit 2 of the flags byte after the 32-byte RP id hash) of
/// the `response.response.authenticatorData` (base64url) the browser sent,
/// as the service reports it in `passkey.userVerified` and `pk:uv`. A
/// response without readable authenticator data did not verify the user.
fn uv_flag(response: &Value) -> bool {
    response
        .get("response")
        .and_then(|r| str_field(r, "authenticatorData"))
        .and_then(|d| URL_SAFE_NO_PAD.decode(d.trim_end_matches('=')).ok())
        .and_then(|data| data.get(32).copied())
        .is_some_and(|flags| flags & 0x04 != 0)
}

/// The simulated verification: trusts `response.id` as the credential id
/// and reads the UV flag from the authenticator data (see [`uv_flag`]).
fn ceremony_verification(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let request: VerificationRequest = parse(body)?;
    let session = present(request.session_token.expose_secret())?;
    let cred = str_field(&request.response, "id")
        .ok_or_else(|| err(400, ErrorTag::BadRequest))?
        .to_owned();
    PasskeyId::new(cred.as_str()).map_err(|_| err(400, ErrorTag::BadRequest))?;
    let now = inner.now();
    let taken = inner.state().sessions.remove(session);
    let (registration, user_id, username) = match taken {
        Some(Session::Registration(p)) if p.expires_at > now => (true, p.user_id, Some(p.username)),
        Some(Session::Authentication(p)) if p.expires_at > now => {
            let owner = inner
                .state()
                .vault
                .get(&cred)
                .and_then(|k| k.user_id.clone());
            let Some(owner) = owner else {
                return Err(passkey_not_found(&cred, &p.rp_id));
            };
            if p.allow.as_ref().is_some_and(|a| !a.contains(&cred)) {
                return Err(err(400, ErrorTag::BadRequest));
            }
            (false, owner, None)
        }
        _ => return Err(err(400, ErrorTag::BadRequest)),
    };
    let user_verified = uv_flag(&request.response);
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
    .ok_or_else(|| err(400, ErrorTag::BadRequest))?;
    let now_s = now.div_euclid(1000);
    let claims = json!({
        "iss": "passlock.dev", "aud": inner.id.as_str(), "sub": user_id.as_str(),
        "jti": jti, "iat": now_s, "exp": now_s + TTL_MS / 1000,
        "a:id": cred, "a:typ": "passkey", "pk:uv": user_verified,
    });
    let key = inner.state().keys.last().cloned();
    let id_token = key
        .and_then(|k| k.sign(&claims).ok())
        .ok_or_else(|| err(500, ErrorTag::from_name("Internal")))?;
    let authenticator = passlock_core::id::AuthenticatorId::new(cred)
        .map_err(|_| err(400, ErrorTag::BadRequest))?;
    Ok(ok(
        200,
        &CeremonySuccess::new(
            registration,
            authenticator,
            user_id,
            Some(IdToken::new(id_token)),
            Code::new(code),
        ),
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
            false => return err(400, ErrorTag::BadRequest),
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
    ok(200, &FindAllPasskeys::new(next, page))
}

fn get_passkey(inner: &Inner, id: &str) -> Resp {
    match inner.state().vault.get(id) {
        Some(p) => serde_json::to_value(p).map_or_else(
            |_| err(500, ErrorTag::from_name("Internal")),
            |v| ok(200, &v),
        ),
        None => err(404, ErrorTag::NotFound),
    }
}

fn prepared(inner: &Inner, tag: SuccessTag, warnings: Vec<VaultWarning>) -> Resp {
    let mut body =
        PreparedPasskeyOperation::new(tag, VaultToken::new(random_token(24)), inner.now() + TTL_MS);
    body.warnings = warnings;
    ok(202, &body)
}

fn no_passkeys() -> VaultWarning {
    VaultWarning::new("NoPasskeys", "the user has no passkeys", None)
}

fn prepare_update(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let request: PrepareUpdate = parse(body)?;
    let user = request.user_id.as_str();
    let username = present(&request.username)?;
    let mut s = inner.state();
    let mut n = 0;
    for p in s.vault.values_mut() {
        if p.user_id.as_ref().is_some_and(|u| u.as_str() == user) {
            p.username = Some(username.to_owned());
            n += 1;
        }
    }
    drop(s);
    let warnings = if n == 0 { vec![no_passkeys()] } else { vec![] };
    Ok(prepared(inner, SuccessTag::PreparedPasskeyUpdate, warnings))
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
                    return Err(err(400, ErrorTag::BadRequest));
                };
                if s.vault.remove(id).is_some() {
                    deleted += 1;
                } else {
                    warnings.push(VaultWarning::new(
                        "PasskeyNotFound",
                        "no such passkey",
                        PasskeyId::new(id).ok(),
                    ));
                }
            }
            if deleted == 0 {
                let first = ids[0].as_str().unwrap_or_default();
                return Err(passkey_not_found(first, "localhost"));
            }
        }
        (None, Some(Value::String(user))) => {
            let before = s.vault.len();
            s.vault
                .retain(|_, p| p.user_id.as_ref().is_none_or(|u| u.as_str() != user));
            if s.vault.len() == before {
                warnings.push(no_passkeys());
            }
        }
        _ => return Err(err(400, ErrorTag::BadRequest)),
    }
    drop(s);
    Ok(prepared(inner, SuccessTag::PreparedPasskeyDelete, warnings))
}

fn prepare_prune(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let _request: PrunePasskeys = parse(body)?;
    Ok(prepared(inner, SuccessTag::PreparedPasskeyPrune, vec![]))
}

fn create_challenge(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let request: CreateChallenge = parse(body)?;
    let email = present(&request.email)?;
    let purpose = present(&request.purpose)?;
    let valid_email = email
        .split_once('@')
        .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.contains('@'));
    if !valid_email {
        return Err(err(400, ErrorTag::InvalidEmail));
    }
    let now = inner.now();
    let mut s = inner.state();
    s.challenges.retain(|_, c| c.expires_at > now);
    if request.invalidate_others == Some(true) {
        s.challenges.retain(|_, c| c.email != email);
    }
    let pending = s.challenges.values().filter(|c| c.email == email).count();
    if pending >= CHALLENGE_RATE && request.skip_rate_limit != Some(true) {
        let mut body = error_body(ErrorTag::ChallengeRateLimited);
        body.retry_after_seconds = Some(60);
        return Err(ok(429, &body));
    }
    let id = random_token(12);
    let secret = random_token(24);
    let digits: u32 = random_token(8).bytes().fold(0u32, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    let code = format!("{:06}", digits % 1_000_000);
    let challenge_id =
        ChallengeId::new(id.as_str()).map_err(|_| err(500, ErrorTag::from_name("Internal")))?;
    let mut public = Challenge::new(challenge_id, purpose, email, now, now + CHALLENGE_TTL_MS);
    if let Some(metadata) = request.metadata.clone() {
        public.metadata = metadata;
    }
    public.user_id = request.user_id.clone();
    s.created_challenges.push(ReceivedChallenge {
        request: request.clone(),
        challenge_id: id.clone(),
        secret: ChallengeSecret::new(secret.clone()),
    });
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
    let message = ChallengeMessage::new(
        format!("<p>Your code is {code}</p>"),
        format!("Your code is {code}"),
    );
    let created = CreatedChallenge::new(
        &public,
        ChallengeSecret::new(secret),
        ChallengeSecret::new(code),
        message,
    );
    Ok(ok(201, &ChallengeCreated::new(created)))
}

fn get_challenge(inner: &Inner, id: &str) -> Resp {
    let now = inner.now();
    match inner.state().challenges.get(id) {
        Some(c) if c.expires_at > now => ok(200, &c.public),
        Some(_) => err(410, ErrorTag::ChallengeExpired),
        None => err(404, ErrorTag::NotFound),
    }
}

fn verify_challenge(inner: &Inner, body: &[u8]) -> Result<Resp, Resp> {
    let request: VerifyChallenge = parse(body)?;
    let id = request.challenge_id.as_str();
    let secret = present(request.secret.expose_secret())?;
    let code = present(request.code.expose_secret())?;
    let now = inner.now();
    let mut s = inner.state();
    let Some(c) = s.challenges.get_mut(id) else {
        return Err(err(404, ErrorTag::InvalidChallenge));
    };
    if !ApiKey::new(secret).ct_eq(&ApiKey::new(c.secret.clone())) {
        return Err(err(400, ErrorTag::InvalidChallenge));
    }
    if c.expires_at <= now {
        s.challenges.remove(id);
        return Err(err(410, ErrorTag::ChallengeExpired));
    }
    if c.attempts >= CHALLENGE_ATTEMPTS {
        return Err(err(429, ErrorTag::ChallengeAttemptsExceeded));
    }
    if !ApiKey::new(code).ct_eq(&ApiKey::new(c.code.clone())) {
        c.attempts += 1;
        return Err(if c.attempts >= CHALLENGE_ATTEMPTS {
            err(429, ErrorTag::ChallengeAttemptsExceeded)
        } else {
            err(400, ErrorTag::InvalidChallengeCode)
        });
    }
    let public = c.public.clone();
    s.challenges.remove(id);
    Ok(ok(200, &ChallengeVerified::new(public)))
}

fn delete_challenge(inner: &Inner, id: &str) -> Resp {
    match inner.state().challenges.remove(id) {
        Some(_) => ok(200, &ChallengeDeleted::new(ChallengeId::new(id).ok())),
        None => err(404, ErrorTag::NotFound),
    }
}

//! [`FakePassage`]: an in-process Passage Passkey Flex API on `127.0.0.1:0`,
//! following the wire format of DESIGN section 6 exactly (see
//! [`passlock_core::provider::passage`]).
//!
//! * Every route is under `/v1/apps/{appId}` and requires
//!   `Authorization: Bearer {apiKey}` (else `401 invalid_access_token`);
//!   another app id is `404 app_not_found`.
//! * Errors are `{"code":"<snake_code>","error":"<message>"}` with
//!   `Content-Type: application/json`.
//! * `POST /transactions/register {external_id, passkey_display_name}` and
//!   `POST /transactions/authenticate {external_id}` answer
//!   `{transaction_id}`; authenticating an unknown external id is
//!   `404 user_not_found`, one without a device `409 user_has_no_passkeys`.
//! * [`FakePassage::complete`] plays the browser: it completes a pending
//!   transaction (a registration creates the user if needed and adds a
//!   device) and returns a nonce, single use and valid
//!   [`NONCE_TTL_MS`] on the fake's clock.
//!   `POST /authenticate/verify {nonce}` answers `{external_id}` once; a
//!   used, unknown or expired nonce is `401 invalid_nonce`.
//! * Users and devices: `GET /users?identifier=&limit=`, `GET /users/{id}`,
//!   `GET /users/{id}/devices`, `DELETE /users/{id}/devices/{device_id}`
//!   (`404 user_not_found` / `404 device_not_found`).
//! * Faults: [`set_fault`](FakePassage::set_fault) applies to every route.
//! * [`hits`](FakePassage::hits) counts requests per route name (on
//!   arrival, before any fault): `register_transaction`,
//!   `authenticate_transaction`, `verify_nonce`, `list_users`, `get_user`,
//!   `list_devices`, `revoke_device`, `unknown`.

// Route handlers answer `Result<Resp, Resp>`: both arms are responses.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::server::{
    self, Fake, Head, Plan, Resp, Server, internal_error, ok, percent_decode, respond,
};
use passlock_core::clock::{SharedClock, UnixMillis};
use passlock_core::error::ConfigError;
use passlock_core::id::TenancyId;
use passlock_core::provider::passage::{PassageConfig, PassageFlex};
use passlock_core::secret::{ApiKey, PassageNonce, random_token};

/// How long a transaction can be completed (ms).
pub const TRANSACTION_TTL_MS: i64 = 5 * 60 * 1000;
/// How long a nonce can be verified (ms).
pub const NONCE_TTL_MS: i64 = 60 * 1000;

/// A fault the fake injects on every route.
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
    /// Answer `429 Too Many Requests` (a `text/plain` body), with this
    /// `Retry-After` value when given (seconds or an HTTP date, sent as is).
    TooManyRequests(Option<String>),
    /// Answer this typed error: `{"code","error"}`.
    ApiError {
        /// The HTTP status.
        status: u16,
        /// The snake_case code.
        code: &'static str,
    },
}

/// Why [`FakePassage::complete`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompleteError {
    /// No such pending transaction (unknown, already completed).
    #[error("unknown transaction")]
    UnknownTransaction,
    /// The transaction expired.
    #[error("the transaction expired")]
    Expired,
    /// An authentication for a user without a device.
    #[error("the user has no passkeys")]
    NoPasskeys,
}

enum Kind {
    Register { display_name: String },
    Authenticate,
}

struct Transaction {
    external_id: String,
    kind: Kind,
    expires_at: UnixMillis,
}

struct Nonce {
    external_id: String,
    expires_at: UnixMillis,
}

struct Device {
    id: String,
    friendly_name: String,
    created_at: UnixMillis,
    last_login_at: Option<UnixMillis>,
    usage_count: u64,
}

struct User {
    id: String,
    external_id: String,
    created_at: UnixMillis,
    devices: Vec<Device>,
}

#[derive(Default)]
struct State {
    transactions: HashMap<String, Transaction>,
    nonces: HashMap<String, Nonce>,
    /// By Passage user id.
    users: BTreeMap<String, User>,
    fault: Fault,
}

impl State {
    fn user_by_external(&mut self, external_id: &str) -> Option<&mut User> {
        self.users
            .values_mut()
            .find(|u| u.external_id == external_id)
    }
}

/// The app id is [`server::Shared::id`].
type Inner = server::Shared<State>;

/// The fake Passage service. Stops when dropped.
pub struct FakePassage {
    inner: Arc<Inner>,
    server: Server,
}

impl std::fmt::Debug for FakePassage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePassage")
            .field("addr", &self.server.addr())
            .field("app_id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

/// RFC 3339 (UTC, seconds) of epoch milliseconds.
fn rfc3339(ms: UnixMillis) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl FakePassage {
    /// Starts a fake on the system clock.
    pub async fn start() -> Result<Self, std::io::Error> {
        Self::start_with_clock(passlock_core::clock::system()).await
    }

    /// Starts a fake on `clock` (a `ManualClock` for expiry tests).
    pub async fn start_with_clock(clock: SharedClock) -> Result<Self, std::io::Error> {
        let app_id = TenancyId::new(format!("app{}", random_token(6)))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let inner = Arc::new(Inner::new(
            app_id,
            ApiKey::new(format!("passage_test_{}", random_token(24))),
            clock,
            State::default(),
        ));
        let server = Server::start(inner.clone()).await?;
        Ok(Self { inner, server })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// The app id.
    pub fn app_id(&self) -> TenancyId {
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
    pub fn config(&self) -> PassageConfig {
        PassageConfig::new(self.app_id(), self.api_key()).with_endpoint(self.endpoint())
    }

    /// A [`PassageFlex`] provider on this fake, on the fake's clock. Its
    /// simulated ceremonies stand for a Passage app that requires user
    /// verification, so the provider states so
    /// ([`PassageConfig::with_service_enforced_user_verification`]);
    /// [`config`](Self::config) does not.
    pub fn provider(&self) -> Result<PassageFlex, ConfigError> {
        PassageFlex::new(
            self.config().with_service_enforced_user_verification(true),
            self.clock(),
        )
    }

    /// Injects `fault` on every route (`Fault::None` clears it).
    pub fn set_fault(&self, fault: Fault) {
        self.inner.state().fault = fault;
    }

    /// Requests received on route `name` (see the module docs for names).
    pub fn hits(&self, name: &str) -> u64 {
        self.inner.hits(name)
    }

    /// Requests received on every route together (unknown paths included).
    pub fn total_hits(&self) -> u64 {
        self.inner.total_hits()
    }

    /// Completes a pending transaction as the browser would (the WebAuthn
    /// ceremony is simulated) and returns the nonce Passage hands the
    /// browser. Each transaction completes once.
    pub fn complete(&self, transaction_id: &str) -> Result<PassageNonce, CompleteError> {
        let now = self.inner.now();
        let mut s = self.inner.state();
        let tx = s
            .transactions
            .remove(transaction_id)
            .ok_or(CompleteError::UnknownTransaction)?;
        if tx.expires_at <= now {
            return Err(CompleteError::Expired);
        }
        match tx.kind {
            Kind::Register { display_name } => {
                let device = Device {
                    id: format!("dev_{}", random_token(9)),
                    friendly_name: display_name,
                    created_at: now,
                    last_login_at: Some(now),
                    usage_count: 1,
                };
                match s.user_by_external(&tx.external_id) {
                    Some(user) => user.devices.push(device),
                    None => {
                        let id = format!("usr_{}", random_token(9));
                        s.users.insert(
                            id.clone(),
                            User {
                                id,
                                external_id: tx.external_id.clone(),
                                created_at: now,
                                devices: vec![device],
                            },
                        );
                    }
                }
            }
            Kind::Authenticate => {
                let device = s
                    .user_by_external(&tx.external_id)
                    .and_then(|u| u.devices.first_mut())
                    .ok_or(CompleteError::NoPasskeys)?;
                device.last_login_at = Some(now);
                device.usage_count += 1;
            }
        }
        let nonce = random_token(24);
        s.nonces.insert(
            nonce.clone(),
            Nonce {
                external_id: tx.external_id,
                expires_at: now + NONCE_TTL_MS,
            },
        );
        Ok(PassageNonce::new(nonce))
    }

    /// Adds a user (if missing) with one device; returns (user id, device id).
    pub fn add_device(&self, external_id: &str, name: &str) -> (String, String) {
        let now = self.inner.now();
        let mut s = self.inner.state();
        let device_id = format!("dev_{}", random_token(9));
        let device = Device {
            id: device_id.clone(),
            friendly_name: name.to_owned(),
            created_at: now,
            last_login_at: None,
            usage_count: 0,
        };
        if let Some(user) = s.user_by_external(external_id) {
            user.devices.push(device);
            return (user.id.clone(), device_id);
        }
        let id = format!("usr_{}", random_token(9));
        s.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                external_id: external_id.to_owned(),
                created_at: now,
                devices: vec![device],
            },
        );
        (id, device_id)
    }

    /// Adds a user without devices; returns its Passage user id.
    pub fn add_user(&self, external_id: &str) -> String {
        let now = self.inner.now();
        let mut s = self.inner.state();
        if let Some(user) = s.user_by_external(external_id) {
            return user.id.clone();
        }
        let id = format!("usr_{}", random_token(9));
        s.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                external_id: external_id.to_owned(),
                created_at: now,
                devices: Vec::new(),
            },
        );
        id
    }

    /// The Passage user id of an external id.
    pub fn user_id_of(&self, external_id: &str) -> Option<String> {
        self.inner
            .state()
            .user_by_external(external_id)
            .map(|u| u.id.clone())
    }

    /// The device ids of an external id (empty for an unknown user).
    pub fn devices_of(&self, external_id: &str) -> Vec<String> {
        self.inner
            .state()
            .user_by_external(external_id)
            .map(|u| u.devices.iter().map(|d| d.id.clone()).collect())
            .unwrap_or_default()
    }

    /// Pending (not yet completed) transactions.
    pub fn pending_transactions(&self) -> usize {
        self.inner.state().transactions.len()
    }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

fn err(status: u16, code: &str) -> Resp {
    ok(
        status,
        &json!({ "code": code, "error": format!("{code} (fake)") }),
    )
}

/// The app id and the path below `/v1/apps/{appId}`, if the path is there.
fn split<'a>(segs: &'a [&'a str]) -> (Option<&'a str>, &'a [&'a str]) {
    match segs {
        ["v1", "apps", app, rest @ ..] => (Some(*app), rest),
        _ => (None, &[]),
    }
}

fn classify(method: &hyper::Method, rest: &[&str]) -> &'static str {
    use hyper::Method as M;
    match (method, rest) {
        (&M::POST, ["transactions", "register"]) => "register_transaction",
        (&M::POST, ["transactions", "authenticate"]) => "authenticate_transaction",
        (&M::POST, ["authenticate", "verify"]) => "verify_nonce",
        (&M::GET, ["users"]) => "list_users",
        (&M::GET, ["users", _]) => "get_user",
        (&M::GET, ["users", _, "devices"]) => "list_devices",
        (&M::DELETE, ["users", _, "devices", _]) => "revoke_device",
        _ => "unknown",
    }
}

impl Fake for Inner {
    const PLUS_AS_SPACE: bool = true;
    type Route = &'static str;

    fn arrive(&self, head: &Head) -> (Self::Route, Plan) {
        let segs = head.segs();
        let name = match split(&segs) {
            (Some(_), rest) => classify(&head.method, rest),
            (None, _) => "unknown",
        };
        self.hit(name);
        let plan = match self.state().fault.clone() {
            Fault::None => Plan::None,
            Fault::Latency(d) => Plan::Latency(d),
            Fault::DropConnection => Plan::DropConnection,
            Fault::TooManyRequests(retry_after) => {
                Plan::Answer(server::too_many_requests(retry_after.as_deref()))
            }
            Fault::ApiError { status, code } => Plan::Answer(err(status, code)),
            Fault::Status500 => Plan::Answer(internal_error(500)),
            Fault::MalformedJson => Plan::MalformedJson(b"{\"transaction_id\":"),
            Fault::WrongContentType => Plan::WrongContentType,
        };
        (name, plan)
    }

    fn too_large(&self) -> Resp {
        err(413, "request_too_large")
    }

    fn route(&self, head: &Head, name: Self::Route, body: &[u8]) -> Resp {
        let segs = head.segs();
        let (app, rest) = split(&segs);
        if !self.key_ok(head.bearer.as_deref()) {
            err(401, "invalid_access_token")
        } else if app != Some(self.id.as_str()) {
            err(404, "app_not_found")
        } else {
            dispatch(self, name, rest, &head.query, body).unwrap_or_else(|e| e)
        }
    }
}

fn parse(body: &[u8]) -> Result<Value, Resp> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| err(400, "invalid_request"))
}

fn field<'a>(v: &'a Value, k: &str) -> Result<&'a str, Resp> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err(400, "invalid_request"))
}

fn dispatch(
    inner: &Inner,
    name: &str,
    rest: &[&str],
    query: &str,
    body: &[u8],
) -> Result<Resp, Resp> {
    let now = inner.now();
    match name {
        "register_transaction" => {
            let v = parse(body)?;
            let external_id = field(&v, "external_id")?.to_owned();
            let display_name = field(&v, "passkey_display_name")?.to_owned();
            Ok(new_transaction(
                inner,
                external_id,
                Kind::Register { display_name },
                now,
            ))
        }
        "authenticate_transaction" => {
            let v = parse(body)?;
            let external_id = field(&v, "external_id")?.to_owned();
            {
                let mut s = inner.state();
                let user = s
                    .user_by_external(&external_id)
                    .ok_or_else(|| err(404, "user_not_found"))?;
                if user.devices.is_empty() {
                    return Err(err(409, "user_has_no_passkeys"));
                }
            }
            Ok(new_transaction(inner, external_id, Kind::Authenticate, now))
        }
        "verify_nonce" => {
            let v = parse(body)?;
            let nonce = field(&v, "nonce")?;
            // Single use: taken out whatever the outcome.
            let taken = inner.state().nonces.remove(nonce);
            match taken {
                Some(n) if n.expires_at > now => {
                    Ok(ok(200, &json!({ "external_id": n.external_id })))
                }
                _ => Err(err(401, "invalid_nonce")),
            }
        }
        "list_users" => {
            let mut identifier = None;
            let mut limit = 10usize;
            for pair in query.split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                match k {
                    "identifier" => identifier = Some(percent_decode(v, true)),
                    "limit" => limit = v.parse().map_err(|_| err(400, "invalid_request"))?,
                    _ => {}
                }
            }
            let s = inner.state();
            let users: Vec<Value> = s
                .users
                .values()
                .filter(|u| identifier.as_deref().is_none_or(|i| u.external_id == i))
                .take(limit)
                .map(user_json)
                .collect();
            let total = users.len();
            Ok(ok(
                200,
                &json!({ "users": users, "limit": limit, "page": 1, "total_users": total }),
            ))
        }
        "get_user" => {
            let s = inner.state();
            let user = s
                .users
                .get(rest.get(1).copied().unwrap_or_default())
                .ok_or_else(|| err(404, "user_not_found"))?;
            Ok(ok(200, &json!({ "user": user_json(user) })))
        }
        "list_devices" => {
            let s = inner.state();
            let user = s
                .users
                .get(rest.get(1).copied().unwrap_or_default())
                .ok_or_else(|| err(404, "user_not_found"))?;
            let devices: Vec<Value> = user.devices.iter().map(device_json).collect();
            Ok(ok(200, &json!({ "devices": devices })))
        }
        "revoke_device" => {
            let mut s = inner.state();
            let user = s
                .users
                .get_mut(rest.get(1).copied().unwrap_or_default())
                .ok_or_else(|| err(404, "user_not_found"))?;
            let device = rest.get(3).copied().unwrap_or_default();
            let before = user.devices.len();
            user.devices.retain(|d| d.id != device);
            if user.devices.len() == before {
                return Err(err(404, "device_not_found"));
            }
            Ok(respond(200, "application/json", Vec::new()))
        }
        _ => Err(err(404, "not_found")),
    }
}

fn new_transaction(inner: &Inner, external_id: String, kind: Kind, now: UnixMillis) -> Resp {
    let id = random_token(18);
    inner.state().transactions.insert(
        id.clone(),
        Transaction {
            external_id,
            kind,
            expires_at: now + TRANSACTION_TTL_MS,
        },
    );
    ok(200, &json!({ "transaction_id": id }))
}

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "external_id": u.external_id,
        "status": "active",
        "created_at": rfc3339(u.created_at),
        "updated_at": rfc3339(u.created_at),
        "login_count": u.devices.iter().map(|d| d.usage_count).sum::<u64>(),
        "webauthn": !u.devices.is_empty(),
        "webauthn_devices": u.devices.iter().map(device_json).collect::<Vec<_>>(),
        "webauthn_types": if u.devices.is_empty() { json!([]) } else { json!(["passkey"]) },
    })
}

fn device_json(d: &Device) -> Value {
    json!({
        "id": d.id,
        "cred_id": format!("cred_{}", d.id),
        "friendly_name": d.friendly_name,
        "created_at": rfc3339(d.created_at),
        "updated_at": rfc3339(d.created_at),
        "last_login_at": d.last_login_at.map(rfc3339),
        "usage_count": d.usage_count,
        "type": "passkey",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}

//! The Passage Passkey Flex provider and REST client.
//!
//! **Passage Passkey Flex was retired in January 2026.** This provider
//! exists for apps still running against a compatible deployment; it follows
//! the service's documented wire format (DESIGN section 6, seed 004, taken
//! from `passage-flex-node` 1.0.3) and is tested against
//! `passlock_test::fake_passage::FakePassage` (the `passlock-test` crate),
//! a faithful in-process fake.
//!
//! # Wire format
//!
//! Base `{endpoint}/v1/apps/{appId}` (default endpoint
//! [`DEFAULT_ENDPOINT`]), `Authorization: Bearer {apiKey}`, snake_case JSON:
//!
//! | call | request | success |
//! | --- | --- | --- |
//! | `POST /transactions/register` | `{external_id, passkey_display_name}` | `{transaction_id}` |
//! | `POST /transactions/authenticate` | `{external_id}` | `{transaction_id}` |
//! | `POST /authenticate/verify` | `{nonce}` | `{external_id}` |
//! | `GET /users?identifier={external_id}&limit=1` | | `{users:[{id, external_id, ...}]}` |
//! | `GET /users/{user_id}` | | `{user:{id, external_id, ...}}` |
//! | `GET /users/{user_id}/devices` | | `{devices:[{id, friendly_name?, ...}]}` |
//! | `DELETE /users/{user_id}/devices/{device_id}` | | any 2xx |
//!
//! Errors are `{"code":"<snake_code>","error":"<message>"}`, turned into
//! [`PassageApiError`]: `401 invalid_access_token` / `invalid_nonce`,
//! `404 user_not_found`, `409 user_has_no_passkeys`, `400 invalid_request`,
//! `500 internal_server_error`; any other code is
//! [`PassageApiError::Other`]. A body that is not this shape (not JSON, wrong
//! content type) is an [`UpstreamError::BadResponse`], never a panic.
//!
//! # Mapping onto [`PasskeyProvider`]
//!
//! * **Registration**: the [`UserHandle`] is the Passage *external id*, the
//!   username the `passkey_display_name`. The transaction id is the
//!   [`RegistrationToken`] handed to the browser, the endpoint is the Passage
//!   endpoint and the tenancy id is the app id. Passage does not say when a
//!   transaction expires; `expires_at` is an estimate ([`TRANSACTION_TTL_MS`]).
//! * **Authentication**: Passkey Flex authenticates a *known* user (MFA,
//!   step-up). A usernameless request answers
//!   [`ProviderError::Unsupported`]`("usernameless login")`: an app using
//!   Passage signs users in with its own first factor and uses the passkey
//!   as a second factor or for step-up. A restricted request authenticates
//!   the Passage user named by the first allowed authenticator id
//!   (`passage:{external_id}`, see below), else
//!   [`AuthenticationRequest::user`].
//! * **Verification**: only [`Proof::Nonce`]; codes and id_tokens are
//!   [`Rejection::Malformed`]. The nonce is verified once (Passage consumes
//!   it) and gives the external id back.
//!
//! # Authenticator ids: one per Passage user
//!
//! A Passage nonce does not name the device that signed. The principal's
//! authenticator id is therefore a stable **per-user** id,
//! `passage:{external_id}` ([`authenticator_id_of`]): the app's
//! `AuthenticatorStore` links that one id to the app user, whatever device
//! the user signs with. Consequences:
//!
//! * there is one link per Passage user, not one per passkey: `GET
//!   /passkey/passkeys` lists one entry per Passage user, however many
//!   devices it holds; adding a second passkey to the same Passage user
//!   links the same pair again (a no-op);
//! * deleting that authenticator ([`PasskeyProvider::delete_passkey`])
//!   revokes **every** device of the Passage user;
//! * per-device management (names, last use, revoking one device) goes
//!   through the devices API: [`PassageClient::list_devices`] and
//!   [`PassageClient::revoke_device`].
//!
//! Verification does not look the user or its devices up: the nonce is
//! already proof of a ceremony by that external id, and a lookup failing
//! after Passage consumed the nonce would lose a valid sign-in.
//!
//! The nonce does not say whether the authenticator verified the user: the
//! principal's `user_verified` is what the app states about its Passage app
//! ([`PassageConfig::with_service_enforced_user_verification`], default
//! `false`, which the default policy refuses).
//!
//! Nothing here logs or returns the API key, a transaction id or a nonce
//! (their `Debug` is redacted).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::{SharedClock, UnixMillis};
use crate::error::{ConfigError, ProviderError, Rejection, UpstreamError};
use crate::http::{HttpConfig, HttpResponse, Method, Retry};
use crate::id::{AuthenticatorId, TenancyId, UserHandle};
use crate::principal::Principal;
use crate::proof::Proof;
use crate::provider::rest::{self, RestClient, Service};
use crate::provider::{
    AuthenticationRequest, Authorization, Endpoint, PasskeyProvider, RegistrationRequest,
};
use crate::secret::{ApiKey, AuthenticationToken, PassageNonce, RegistrationToken};

/// The public Passage endpoint (retired in January 2026).
pub const DEFAULT_ENDPOINT: &str = "https://api.passage.id";

/// How long a transaction is assumed valid (ms); Passage does not say.
pub const TRANSACTION_TTL_MS: i64 = 5 * 60 * 1000;

/// The prefix of the per-user authenticator ids of this provider.
pub const AUTHENTICATOR_PREFIX: &str = "passage:";

/// The authenticator id of a Passage user: `passage:{external_id}`.
pub fn authenticator_id_of(external_id: &UserHandle) -> Result<AuthenticatorId, ProviderError> {
    AuthenticatorId::new(format!("{AUTHENTICATOR_PREFIX}{}", external_id.as_str()))
        .map_err(|_| ProviderError::BadRequest("the external id is not usable"))
}

/// The external id inside an authenticator id of this provider.
pub fn external_id_of(authenticator: &AuthenticatorId) -> Option<UserHandle> {
    authenticator
        .as_str()
        .strip_prefix(AUTHENTICATOR_PREFIX)
        .and_then(|s| UserHandle::new(s).ok())
}

/// How to reach a Passage app.
#[derive(Clone)]
#[non_exhaustive]
pub struct PassageConfig {
    /// The Passage app id (also the tenancy id handed to the browser).
    pub app_id: TenancyId,
    /// The app's API key.
    pub api_key: ApiKey,
    /// The service base URL (default [`DEFAULT_ENDPOINT`]). `https` is
    /// required, except for `localhost` and loopback addresses.
    pub endpoint: String,
    /// Timeouts and limits.
    pub http: HttpConfig,
    /// Whether the Passage app requires user verification in its
    /// ceremonies (default `false`). A verified nonce does not say whether
    /// the authenticator verified the user, so principals report
    /// `user_verified` as this value: with the default, and
    /// [`Policy::require_user_verification`](crate::config::Policy::require_user_verification)
    /// on (its default), every Passage proof is refused with `401
    /// user_not_verified`. Set it only when the Passage app is configured to
    /// require user verification.
    pub service_enforced_user_verification: bool,
}

impl std::fmt::Debug for PassageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassageConfig")
            .field("app_id", &self.app_id)
            .field("api_key", &self.api_key) // redacted by ApiKey's Debug
            .field("endpoint", &self.endpoint)
            .field("http", &self.http)
            .field(
                "service_enforced_user_verification",
                &self.service_enforced_user_verification,
            )
            .finish()
    }
}

impl PassageConfig {
    /// The public endpoint, with default timeouts.
    pub fn new(app_id: TenancyId, api_key: ApiKey) -> Self {
        Self {
            app_id,
            api_key,
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            http: HttpConfig::default(),
            service_enforced_user_verification: false,
        }
    }

    /// States that the Passage app requires user verification, so verified
    /// nonces count as user-verified (see
    /// [`service_enforced_user_verification`](Self::service_enforced_user_verification)).
    #[must_use]
    pub fn with_service_enforced_user_verification(mut self, enforced: bool) -> Self {
        self.service_enforced_user_verification = enforced;
        self
    }

    /// Another endpoint (a compatible deployment, a fake).
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Other timeouts and limits.
    #[must_use]
    pub fn with_http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Checks the endpoint (an absolute `https` URL, or `http` on a
    /// loopback host, without query, fragment or credentials), the key and
    /// the app id (`[A-Za-z0-9_-]`, it goes in every URL).
    pub fn validate(&self) -> Result<url::Url, ConfigError> {
        if !crate::http::is_url_safe_id(self.app_id.as_str()) {
            return Err(ConfigError::new(
                "app_id",
                "may only hold letters, digits, '-' and '_'",
            ));
        }
        crate::http::validate_endpoint(&self.endpoint, &self.api_key)
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A typed error answered by Passage (`{"code","error"}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PassageApiError {
    /// The API key is missing or wrong (401).
    #[error("invalid_access_token")]
    InvalidAccessToken,
    /// The nonce is unknown, expired or already used (401).
    #[error("invalid_nonce")]
    InvalidNonce,
    /// No user with this id or external id (404).
    #[error("user_not_found")]
    UserNotFound,
    /// The user has no passkey to authenticate with (409).
    #[error("user_has_no_passkeys")]
    UserHasNoPasskeys,
    /// The request was refused as malformed (400).
    #[error("invalid_request")]
    InvalidRequest,
    /// The service failed (500).
    #[error("internal_server_error")]
    InternalServerError,
    /// A code this client does not know (sanitised: ASCII letters, digits
    /// and `_`, at most 64).
    #[error("{0}")]
    Other(String),
}

impl PassageApiError {
    /// The snake_case code on the wire.
    pub fn code(&self) -> &str {
        match self {
            Self::InvalidAccessToken => "invalid_access_token",
            Self::InvalidNonce => "invalid_nonce",
            Self::UserNotFound => "user_not_found",
            Self::UserHasNoPasskeys => "user_has_no_passkeys",
            Self::InvalidRequest => "invalid_request",
            Self::InternalServerError => "internal_server_error",
            Self::Other(code) => code,
        }
    }

    /// Parses a code. The message (`error`) is never kept: it may echo input.
    pub fn from_code(code: &str) -> Self {
        match code {
            "invalid_access_token" => Self::InvalidAccessToken,
            "invalid_nonce" => Self::InvalidNonce,
            "user_not_found" => Self::UserNotFound,
            "user_has_no_passkeys" => Self::UserHasNoPasskeys,
            "invalid_request" => Self::InvalidRequest,
            "internal_server_error" => Self::InternalServerError,
            other => Self::Other(
                other
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(64)
                    .collect(),
            ),
        }
    }

    /// Parses an error body `{"code","error"}`; `None` without a string code.
    pub fn from_body(body: &Map<String, Value>) -> Option<Self> {
        let code = body.get("code")?.as_str()?;
        Some(Self::from_code(code))
    }
}

/// A failed call to Passage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassageError {
    /// Passage answered a typed error.
    #[error("Passage answered {error} (HTTP {status})")]
    Api {
        /// The error.
        error: PassageApiError,
        /// The HTTP status.
        status: u16,
    },
    /// Passage could not be reached, timed out, or answered something that
    /// is not its wire format (non-JSON, wrong content type, wrong shape).
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl PassageError {
    /// The typed service error, if this is one.
    pub fn api(&self) -> Option<&PassageApiError> {
        match self {
            Self::Api { error, .. } => Some(error),
            Self::Upstream(_) => None,
        }
    }
}

impl From<PassageError> for ProviderError {
    fn from(e: PassageError) -> Self {
        match e {
            PassageError::Upstream(u) => Self::Upstream(u),
            PassageError::Api { status, .. } if status >= 500 => {
                Self::Upstream(UpstreamError::BadResponse {
                    reason: "server error",
                    status: Some(status),
                    source: None,
                })
            }
            PassageError::Api { error, status } => match error {
                PassageApiError::InvalidNonce => Rejection::InvalidToken.into(),
                PassageApiError::UserNotFound | PassageApiError::UserHasNoPasskeys => {
                    Rejection::UnknownCredential.into()
                }
                other => Self::Refused {
                    code: other.code().to_owned(),
                    status,
                },
            },
        }
    }
}

fn bad(reason: &'static str, status: u16) -> PassageError {
    PassageError::Upstream(rest::bad(reason, status))
}

// ---------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------

/// A Passage user (the fields this client reads; unknown ones are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PassageUser {
    /// Passage's own user id (used in the users and devices paths).
    pub id: String,
    /// The app's external id.
    pub external_id: String,
    /// e.g. `active`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl PassageUser {
    /// A user.
    pub fn new(id: impl Into<String>, external_id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            external_id: external_id.into(),
            status: None,
            created_at: None,
        }
    }
}

/// A passkey (WebAuthn device) of a Passage user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PassageDevice {
    /// The device id.
    pub id: String,
    /// The name shown to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// RFC 3339 time of the last sign-in with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login_at: Option<String>,
    /// How many times it was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_count: Option<u64>,
}

impl PassageDevice {
    /// A device.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            friendly_name: None,
            created_at: None,
            last_login_at: None,
            usage_count: None,
        }
    }
}

#[derive(Deserialize)]
struct TransactionAnswer {
    transaction_id: String,
}

#[derive(Deserialize)]
struct VerifyAnswer {
    external_id: String,
}

#[derive(Deserialize)]
struct UsersAnswer {
    users: Vec<PassageUser>,
}

#[derive(Deserialize)]
struct UserAnswer {
    user: PassageUser,
}

#[derive(Deserialize)]
struct DevicesAnswer {
    devices: Vec<PassageDevice>,
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// The Passage Passkey Flex REST client. Cheap to clone.
#[derive(Clone)]
pub struct PassageClient {
    rest: RestClient,
    app_id: TenancyId,
}

impl std::fmt::Debug for PassageClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassageClient")
            .field("endpoint", &self.rest.endpoint())
            .field("app_id", &self.app_id)
            .field("api_key", self.rest.api_key()) // redacted
            .finish_non_exhaustive()
    }
}

/// What Passage differs in from the shared REST skeleton.
struct Passage;

impl Service for Passage {
    type Error = PassageError;

    /// A value that cannot be a Passage id is `user_not_found`.
    fn unsafe_segment() -> PassageError {
        PassageError::Api {
            error: PassageApiError::UserNotFound,
            status: 404,
        }
    }

    fn error_of(resp: &HttpResponse) -> PassageError {
        error_of(resp)
    }
}

/// A call without a body.
const NO_BODY: Option<&()> = None;

/// `POST /transactions/register` body.
#[derive(Serialize)]
struct RegisterTransaction<'a> {
    external_id: &'a str,
    passkey_display_name: &'a str,
}

/// `POST /transactions/authenticate` body.
#[derive(Serialize)]
struct AuthenticateTransaction<'a> {
    external_id: &'a str,
}

/// `POST /authenticate/verify` body.
#[derive(Serialize)]
struct VerifyNonce<'a> {
    nonce: &'a str,
}

impl PassageClient {
    /// A client for the configured app.
    pub fn new(config: PassageConfig) -> Result<Self, ConfigError> {
        let base = config.validate()?;
        let rest = RestClient::new(
            base,
            &["v1", "apps", config.app_id.as_str()],
            config.api_key,
            config.http,
        )?;
        Ok(Self {
            rest,
            app_id: config.app_id,
        })
    }

    /// The endpoint, without a trailing slash.
    pub fn endpoint(&self) -> String {
        self.rest.endpoint()
    }

    /// The app id.
    pub fn app_id(&self) -> &TenancyId {
        &self.app_id
    }

    /// `{endpoint}/v1/apps/{appId}/{segments...}`. Every segment must pass
    /// [`is_url_safe_id`](crate::http::is_url_safe_id) (a value that cannot
    /// be a Passage id is `user_not_found`, before any call).
    fn url(&self, segments: &[&str]) -> Result<url::Url, PassageError> {
        self.rest.url::<Passage>(segments, false)
    }

    /// `POST /transactions/register`: a transaction id for the browser to
    /// register a passkey for `external_id`.
    pub async fn create_register_transaction(
        &self,
        external_id: &UserHandle,
        passkey_display_name: &str,
    ) -> Result<RegistrationToken, PassageError> {
        let url = self.url(&["transactions", "register"])?;
        let body = RegisterTransaction {
            external_id: external_id.as_str(),
            passkey_display_name,
        };
        let ok: TransactionAnswer = self
            .rest
            .call::<Passage, _, _>(Method::Post, url, Some(&body), Retry::Never)
            .await?;
        Ok(RegistrationToken::new(ok.transaction_id))
    }

    /// `POST /transactions/authenticate`: a transaction id for the browser
    /// to authenticate `external_id` with one of its passkeys.
    pub async fn create_authenticate_transaction(
        &self,
        external_id: &UserHandle,
    ) -> Result<AuthenticationToken, PassageError> {
        let url = self.url(&["transactions", "authenticate"])?;
        let body = AuthenticateTransaction {
            external_id: external_id.as_str(),
        };
        let ok: TransactionAnswer = self
            .rest
            .call::<Passage, _, _>(Method::Post, url, Some(&body), Retry::Never)
            .await?;
        Ok(AuthenticationToken::new(ok.transaction_id))
    }

    /// `POST /authenticate/verify`: the external id a nonce proves. Sent at
    /// most once (Passage consumes the nonce): never retried.
    pub async fn verify_nonce(&self, nonce: &PassageNonce) -> Result<UserHandle, PassageError> {
        if nonce.is_empty() {
            return Err(PassageError::Api {
                error: PassageApiError::InvalidNonce,
                status: 401,
            });
        }
        let url = self.url(&["authenticate", "verify"])?;
        let body = VerifyNonce {
            nonce: nonce.expose_secret(),
        };
        let ok: VerifyAnswer = self
            .rest
            .call::<Passage, _, _>(Method::Post, url, Some(&body), Retry::Never)
            .await?;
        UserHandle::new(ok.external_id).map_err(|_| bad("unusable external id", 200))
    }

    /// `GET /users?identifier={external_id}&limit=1`: the user with this
    /// external id, `None` when there is none (an empty list or
    /// `404 user_not_found`).
    pub async fn find_user(
        &self,
        external_id: &UserHandle,
    ) -> Result<Option<PassageUser>, PassageError> {
        let mut url = self.url(&["users"])?;
        url.query_pairs_mut()
            .append_pair("identifier", external_id.as_str())
            .append_pair("limit", "1");
        match self
            .rest
            .call::<Passage, UsersAnswer, _>(Method::Get, url, NO_BODY, Retry::OnConnectFailure)
            .await
        {
            Ok(answer) => Ok(answer
                .users
                .into_iter()
                .find(|u| u.external_id == external_id.as_str())),
            Err(PassageError::Api {
                error: PassageApiError::UserNotFound,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /users/{user_id}`.
    pub async fn get_user(&self, user_id: &str) -> Result<PassageUser, PassageError> {
        let url = self.url(&["users", user_id])?;
        let answer: UserAnswer = self
            .rest
            .call::<Passage, _, _>(Method::Get, url, NO_BODY, Retry::OnConnectFailure)
            .await?;
        Ok(answer.user)
    }

    /// `GET /users/{user_id}/devices`: the user's passkeys.
    pub async fn list_devices(&self, user_id: &str) -> Result<Vec<PassageDevice>, PassageError> {
        let url = self.url(&["users", user_id, "devices"])?;
        let answer: DevicesAnswer = self
            .rest
            .call::<Passage, _, _>(Method::Get, url, NO_BODY, Retry::OnConnectFailure)
            .await?;
        Ok(answer.devices)
    }

    /// `DELETE /users/{user_id}/devices/{device_id}`: revokes one passkey.
    /// Any 2xx is success (the body is ignored).
    pub async fn revoke_device(&self, user_id: &str, device_id: &str) -> Result<(), PassageError> {
        let url = self.url(&["users", user_id, "devices", device_id])?;
        let resp = self
            .rest
            .send::<Passage, _>(Method::Delete, url, NO_BODY, Retry::Never)
            .await?;
        if resp.is_success() {
            Ok(())
        } else {
            Err(error_of(&resp))
        }
    }
}

/// The typed error of a non-2xx answer. A `429` is
/// [`UpstreamError::Busy`] with its `Retry-After`, whatever its body; a body
/// that is not `{"code"}` JSON is an [`UpstreamError::BadResponse`].
fn error_of(resp: &HttpResponse) -> PassageError {
    let status = resp.status;
    if status == 429 {
        return PassageError::Upstream(UpstreamError::Busy {
            retry_after: resp.retry_after,
        });
    }
    if resp.is_json()
        && let Ok(body) = serde_json::from_slice::<Map<String, Value>>(&resp.body)
        && let Some(error) = PassageApiError::from_body(&body)
    {
        return PassageError::Api { error, status };
    }
    if status >= 500 {
        bad("server error", status)
    } else {
        bad("unexpected error body", status)
    }
}

/// Decodes one response of Passage as every answer type the client reads
/// (and as an error body), as [`PassageClient`] does; the fuzz entry point
/// for the wire structs and the `{"code"}` error parsing. Returns how many
/// of the types accepted it. Not part of the API.
#[doc(hidden)]
pub fn fuzz_decode_response(status: u16, content_type: Option<&str>, body: &[u8]) -> usize {
    fn accepts<T: DeserializeOwned>(resp: &HttpResponse) -> Option<T> {
        rest::decode::<Passage, T>(resp).ok()
    }
    let resp = rest::fuzz_response(status, content_type, body);
    let results = [
        accepts::<TransactionAnswer>(&resp).is_some(),
        accepts::<VerifyAnswer>(&resp).is_some_and(|a| UserHandle::new(a.external_id).is_ok()),
        accepts::<UsersAnswer>(&resp).is_some(),
        accepts::<UserAnswer>(&resp).is_some(),
        accepts::<DevicesAnswer>(&resp).is_some(),
    ];
    // The error path renders its message and HTTP mapping too.
    let error = error_of(&resp);
    let _ = (error.to_string(), ProviderError::from(error).status());
    results.iter().filter(|ok| **ok).count()
}

// ---------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------

/// The Passage Passkey Flex [`PasskeyProvider`] (see the module docs for the
/// mapping and the per-user authenticator ids).
#[derive(Debug, Clone)]
pub struct PassageFlex {
    client: PassageClient,
    clock: SharedClock,
    user_verified: bool,
}

impl PassageFlex {
    /// The provider for `config`, on `clock` (for `expires_at` and the time
    /// of verified ceremonies).
    pub fn new(mut config: PassageConfig, clock: SharedClock) -> Result<Self, ConfigError> {
        config.http.clock = clock.clone();
        let user_verified = config.service_enforced_user_verification;
        Ok(Self {
            client: PassageClient::new(config)?,
            clock,
            user_verified,
        })
    }

    /// The REST client (users, devices).
    pub fn client(&self) -> &PassageClient {
        &self.client
    }

    fn now(&self) -> UnixMillis {
        self.clock.now_millis()
    }

    fn authorization<T>(&self, token: T) -> Authorization<T> {
        Authorization::new(
            token,
            self.now() + TRANSACTION_TTL_MS,
            self.client.app_id().clone(),
            Endpoint::Remote(self.client.endpoint()),
        )
    }
}

#[async_trait::async_trait]
impl PasskeyProvider for PassageFlex {
    /// Derived from the API key, which every instance of the app holds.
    fn sealing_key(&self) -> Option<crate::ticket::SealingKey> {
        Some(crate::ticket::SealingKey::derive(
            self.client.rest.api_key().expose_secret().as_bytes(),
            "passlock sign-up ticket v1",
        ))
    }

    fn name(&self) -> &'static str {
        "passage"
    }

    async fn authorize_registration(
        &self,
        request: RegistrationRequest,
    ) -> Result<Authorization<RegistrationToken>, ProviderError> {
        let name = request.display_name.as_deref().unwrap_or(&request.username);
        let token = self
            .client
            .create_register_transaction(&request.user, name)
            .await?;
        Ok(self.authorization(token))
    }

    async fn authorize_authentication(
        &self,
        request: AuthenticationRequest,
    ) -> Result<Authorization<AuthenticationToken>, ProviderError> {
        let Some(allow) = request.allow else {
            return Err(ProviderError::Unsupported("usernameless login"));
        };
        // The linked authenticator names the Passage user that holds the
        // passkeys (after a passkey sign-up its external id is the handle
        // reserved then, not the app user's id).
        let external_id = allow
            .iter()
            .find_map(external_id_of)
            .or(request.user)
            .ok_or(ProviderError::BadRequest("no Passage user to authenticate"))?;
        let token = self
            .client
            .create_authenticate_transaction(&external_id)
            .await?;
        Ok(self.authorization(token))
    }

    async fn verify(&self, proof: &Proof) -> Result<Principal, ProviderError> {
        let Proof::Nonce(nonce) = proof else {
            return Err(Rejection::Malformed.into());
        };
        let external_id = self.client.verify_nonce(nonce).await?;
        Ok(Principal::new(
            authenticator_id_of(&external_id)?,
            external_id,
            self.user_verified,
            self.now(),
        ))
    }

    /// Revokes every device of the Passage user behind `authenticator`. An
    /// authenticator that is not a Passage one, or a user already gone, is
    /// not an error (deleting is idempotent).
    async fn delete_passkey(&self, authenticator: &AuthenticatorId) -> Result<(), ProviderError> {
        let Some(external_id) = external_id_of(authenticator) else {
            return Ok(());
        };
        let Some(user) = self.client.find_user(&external_id).await? else {
            return Ok(());
        };
        let devices = match self.client.list_devices(&user.id).await {
            Ok(d) => d,
            Err(PassageError::Api { status: 404, .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for device in devices {
            match self.client.revoke_device(&user.id, &device.id).await {
                Ok(()) | Err(PassageError::Api { status: 404, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, ct: &str, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            content_type: Some(ct.to_owned()),
            body: body.as_bytes().to_vec(),
            retry_after: None,
        }
    }

    #[test]
    fn error_bodies_become_typed_errors() {
        let cases = [
            (
                401,
                "invalid_access_token",
                PassageApiError::InvalidAccessToken,
            ),
            (401, "invalid_nonce", PassageApiError::InvalidNonce),
            (404, "user_not_found", PassageApiError::UserNotFound),
            (
                409,
                "user_has_no_passkeys",
                PassageApiError::UserHasNoPasskeys,
            ),
            (400, "invalid_request", PassageApiError::InvalidRequest),
            (
                500,
                "internal_server_error",
                PassageApiError::InternalServerError,
            ),
            (418, "te a-pot!", PassageApiError::Other("teapot".into())),
        ];
        for (status, code, want) in cases {
            let body = format!(r#"{{"code":"{code}","error":"msg"}}"#);
            let e = error_of(&resp(status, "application/json", &body));
            assert_eq!(e.api(), Some(&want), "{code}");
        }
        for (ct, body) in [
            ("text/html", r#"{"code":"invalid_nonce"}"#),
            ("application/json", "<html>"),
            ("application/json", r#"{"error":"no code"}"#),
        ] {
            let e = error_of(&resp(401, ct, body));
            assert!(
                matches!(e, PassageError::Upstream(UpstreamError::BadResponse { .. })),
                "{e:?}"
            );
        }
    }

    #[test]
    fn provider_error_mapping() {
        let api = |error, status| ProviderError::from(PassageError::Api { error, status });
        assert!(matches!(
            api(PassageApiError::InvalidNonce, 401),
            ProviderError::Rejected(Rejection::InvalidToken)
        ));
        assert!(matches!(
            api(PassageApiError::InvalidAccessToken, 401),
            ProviderError::Refused { status: 401, .. }
        ));
        assert!(matches!(
            api(PassageApiError::InternalServerError, 500),
            ProviderError::Upstream(UpstreamError::BadResponse { .. })
        ));
        assert!(matches!(
            api(PassageApiError::UserHasNoPasskeys, 409),
            ProviderError::Rejected(Rejection::UnknownCredential)
        ));
        assert!(matches!(
            api(PassageApiError::InvalidRequest, 400),
            ProviderError::Refused { status: 400, .. }
        ));
    }

    #[test]
    fn config_validation_and_redaction() {
        let app = TenancyId::new("app1").unwrap();
        let key = ApiKey::new("pk_super_secret_key");
        let c = PassageConfig::new(app.clone(), key.clone());
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("pk_super_secret_key"));
        let client = PassageClient::new(c).unwrap();
        assert!(!format!("{client:?}").contains("pk_super_secret_key"));
        for bad in [
            "http://api.passage.id",
            "https://api.passage.id/?q=1",
            "https://u:p@api.passage.id",
            "nope",
        ] {
            assert!(
                PassageConfig::new(app.clone(), key.clone())
                    .with_endpoint(bad)
                    .validate()
                    .is_err(),
                "{bad}"
            );
        }
        assert!(PassageConfig::new(app, ApiKey::new("")).validate().is_err());
    }

    #[test]
    fn urls_and_ids() {
        let client = PassageClient::new(
            PassageConfig::new(TenancyId::new("app1").unwrap(), ApiKey::new("k"))
                .with_endpoint("https://example.com/base/"),
        )
        .unwrap();
        let url = client.url(&["users", "a-B_9"]).unwrap();
        assert_eq!(
            url.as_str(),
            "https://example.com/base/v1/apps/app1/users/a-B_9"
        );
        for bad in ["a/b", ".", "..", "%2e%2e", "", " ", "a b"] {
            assert!(client.url(&["users", bad]).is_err(), "{bad:?}");
        }
        let dotted = PassageConfig::new(TenancyId::new(".").unwrap(), ApiKey::new("k"));
        assert_eq!(dotted.validate().unwrap_err().field, "app_id");
        let ext = UserHandle::new("ext-1").unwrap();
        let aid = authenticator_id_of(&ext).unwrap();
        assert_eq!(aid.as_str(), "passage:ext-1");
        assert_eq!(external_id_of(&aid), Some(ext));
        assert_eq!(
            external_id_of(&AuthenticatorId::new("other").unwrap()),
            None
        );
    }
}

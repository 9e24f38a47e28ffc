//! The hosted Passlock provider and REST API v2 client.
//!
//! [`PasslockClient`] speaks the Passlock REST API v2 (DESIGN section 6):
//! paths under `{endpoint}/v2/{tenancyId}`, `Authorization: Bearer {apiKey}`,
//! camelCase JSON tagged with `_tag`, errors `{"_tag":"@error/<Name>","message"}`
//! turned into [`PasslockApiError`]. [`PasslockHosted`] is the
//! [`PasskeyProvider`] on top of it: ceremonies are authorized through the
//! client, codes are exchanged (never retried), id_tokens are verified locally
//! against the service's JWKS.
//!
//! Each ceremony yields two proofs, a code and an id_token; either one is
//! redeemed at most once, and redeeming one consumes the other: the
//! principal id of an exchanged code is the `jti` of its id_token, and both
//! are recorded in one replay cache. That cache is in memory by default;
//! several app instances need a shared one
//! ([`PasslockHosted::with_replay_cache`]).
//!
//! Every call goes through the one [`HttpClient`]: timeouts, no redirects, a
//! body cap. Nothing here logs or returns the API key, a code or a token.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::SharedClock;
use crate::error::{ConfigError, MAX_RETRY_AFTER_SECS, ProviderError, Rejection, UpstreamError};
use crate::http::{HttpClient, HttpConfig, HttpResponse, Method, Retry};
use crate::id::{AuthenticatorId, ChallengeId, PasskeyId, TenancyId, UserHandle};
use crate::principal::Principal;
use crate::proof::Proof;
use crate::provider::jwt::{HttpJwks, IdTokenVerifier, VerifierConfig};
use crate::provider::rest::{self, RestClient, Service};
use crate::provider::v2::{
    AuthorizeAuthentication, AuthorizeRegistration, AuthorizedPasskeyAuthentication,
    AuthorizedPasskeyRegistration, Challenge, ChallengeCreated, ChallengeDeleted,
    ChallengeVerified, CreateChallenge, DeleteTarget, ErrorBody, ErrorTag, ExtendedPrincipal,
    FindAllPasskeys, Passkey, PasskeySummary, PrepareUpdate, PreparedPasskeyOperation,
    PrunePasskeys, Tagged, VerifyChallenge,
};
use crate::provider::{
    AuthenticationRequest, Authorization, Endpoint, PasskeyProvider, RegistrationRequest,
};
use crate::secret::{ApiKey, AuthenticationToken, Code, RegistrationToken};
use crate::store::ReplayCache;

/// The public Passlock endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://api.passlock.dev";

/// How to reach a Passlock tenancy.
#[derive(Clone)]
#[non_exhaustive]
pub struct PasslockConfig {
    /// The service base URL (default [`DEFAULT_ENDPOINT`]). `https` is
    /// required, except for `localhost` and loopback addresses.
    pub endpoint: String,
    /// The tenancy.
    pub tenancy_id: TenancyId,
    /// The tenancy's API key.
    pub api_key: ApiKey,
    /// Timeouts and limits.
    pub http: HttpConfig,
}

impl std::fmt::Debug for PasslockConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasslockConfig")
            .field("endpoint", &self.endpoint)
            .field("tenancy_id", &self.tenancy_id)
            .field("api_key", &self.api_key) // redacted by ApiKey's Debug
            .field("http", &self.http)
            .finish()
    }
}

impl PasslockConfig {
    /// The public service, with default timeouts.
    pub fn new(tenancy_id: TenancyId, api_key: ApiKey) -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            tenancy_id,
            api_key,
            http: HttpConfig::default(),
        }
    }

    /// Another endpoint (a staging service, a fake).
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

    /// Checks the endpoint: an absolute `https` URL (or `http` on a loopback
    /// host), without query, fragment or credentials; and the tenancy id
    /// (`[A-Za-z0-9_-]`, it goes in every URL).
    pub fn validate(&self) -> Result<url::Url, ConfigError> {
        if !crate::http::is_url_safe_id(self.tenancy_id.as_str()) {
            return Err(ConfigError::new(
                "tenancy_id",
                "may only hold letters, digits, '-' and '_'",
            ));
        }
        crate::http::validate_endpoint(&self.endpoint, &self.api_key)
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A typed error answered by the service (`{"_tag":"@error/<Name>"}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasslockApiError {
    /// Missing or bad API key (401).
    #[error("Unauthorized")]
    Unauthorized,
    /// The key is not allowed on this tenancy (403).
    #[error("Forbidden")]
    Forbidden,
    /// The code is unknown, expired or already used (404).
    #[error("InvalidCode")]
    InvalidCode,
    /// The principal is not valid.
    #[error("InvalidPrincipal")]
    InvalidPrincipal,
    /// The challenge is unknown or its secret is wrong.
    #[error("InvalidChallenge")]
    InvalidChallenge,
    /// The one-time code of a challenge is wrong.
    #[error("InvalidChallengeCode")]
    InvalidChallengeCode,
    /// The challenge expired.
    #[error("ChallengeExpired")]
    ChallengeExpired,
    /// Too many wrong codes for this challenge.
    #[error("ChallengeAttemptsExceeded")]
    ChallengeAttemptsExceeded,
    /// Too many challenges (429).
    #[error("ChallengeRateLimited")]
    ChallengeRateLimited {
        /// Seconds until a new challenge may be created.
        retry_after_seconds: u64,
    },
    /// The tenancy is unknown or disabled.
    #[error("InvalidTenancy")]
    InvalidTenancy,
    /// The passkey is not (or no longer) in the vault.
    #[error("PasskeyNotFound")]
    PasskeyNotFound {
        /// The WebAuthn credential id.
        credential_id: String,
        /// The relying party id.
        rp_id: String,
    },
    /// The resource does not exist.
    #[error("NotFound")]
    NotFound,
    /// The email address is not valid.
    #[error("InvalidEmail")]
    InvalidEmail,
    /// The email address is already used.
    #[error("DuplicateEmail")]
    DuplicateEmail,
    /// The request was refused as malformed.
    #[error("BadRequest")]
    BadRequest,
    /// A tag this client does not know (the name after `@error/`).
    #[error("{0}")]
    Other(String),
}

impl PasslockApiError {
    /// The tag name (after `@error/`).
    pub fn name(&self) -> &str {
        match self {
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::InvalidCode => "InvalidCode",
            Self::InvalidPrincipal => "InvalidPrincipal",
            Self::InvalidChallenge => "InvalidChallenge",
            Self::InvalidChallengeCode => "InvalidChallengeCode",
            Self::ChallengeExpired => "ChallengeExpired",
            Self::ChallengeAttemptsExceeded => "ChallengeAttemptsExceeded",
            Self::ChallengeRateLimited { .. } => "ChallengeRateLimited",
            Self::InvalidTenancy => "InvalidTenancy",
            Self::PasskeyNotFound { .. } => "PasskeyNotFound",
            Self::NotFound => "NotFound",
            Self::InvalidEmail => "InvalidEmail",
            Self::DuplicateEmail => "DuplicateEmail",
            Self::BadRequest => "BadRequest",
            Self::Other(tag) => tag,
        }
    }
}

impl From<ErrorBody> for PasslockApiError {
    fn from(body: ErrorBody) -> Self {
        match body.tag {
            ErrorTag::Unauthorized => Self::Unauthorized,
            ErrorTag::Forbidden => Self::Forbidden,
            ErrorTag::InvalidCode => Self::InvalidCode,
            ErrorTag::InvalidPrincipal => Self::InvalidPrincipal,
            ErrorTag::InvalidChallenge => Self::InvalidChallenge,
            ErrorTag::InvalidChallengeCode => Self::InvalidChallengeCode,
            ErrorTag::ChallengeExpired => Self::ChallengeExpired,
            ErrorTag::ChallengeAttemptsExceeded => Self::ChallengeAttemptsExceeded,
            ErrorTag::ChallengeRateLimited => Self::ChallengeRateLimited {
                retry_after_seconds: body.retry_after_seconds.unwrap_or(0),
            },
            ErrorTag::InvalidTenancy => Self::InvalidTenancy,
            ErrorTag::PasskeyNotFound => Self::PasskeyNotFound {
                credential_id: body.credential_id.unwrap_or_default(),
                rp_id: body.rp_id.unwrap_or_default(),
            },
            ErrorTag::NotFound => Self::NotFound,
            ErrorTag::InvalidEmail => Self::InvalidEmail,
            ErrorTag::DuplicateEmail => Self::DuplicateEmail,
            ErrorTag::BadRequest => Self::BadRequest,
            other => Self::Other(other.name().to_owned()),
        }
    }
}

/// The former name of [`HostedError`] (it clashed with
/// `passlock_actix::PasslockError`, the actix HTTP error).
#[deprecated(since = "0.2.0", note = "renamed to HostedError")]
pub type PasslockError = HostedError;

/// A failed call to the hosted Passlock service (the actix adapter's HTTP
/// error is `passlock_actix::PasslockError`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostedError {
    /// The service answered a typed error.
    #[error("the passkey service answered {error} (HTTP {status})")]
    Api {
        /// The error.
        error: PasslockApiError,
        /// The HTTP status.
        status: u16,
    },
    /// The service could not be reached, timed out, or answered something
    /// that is not its wire format (non-JSON, wrong content type, wrong shape).
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl HostedError {
    /// The typed service error, if this is one.
    pub fn api(&self) -> Option<&PasslockApiError> {
        match self {
            Self::Api { error, .. } => Some(error),
            Self::Upstream(_) => None,
        }
    }
}

impl From<HostedError> for ProviderError {
    fn from(e: HostedError) -> Self {
        match e {
            HostedError::Upstream(u) => Self::Upstream(u),
            HostedError::Api { error, status } => match error {
                PasslockApiError::InvalidCode
                | PasslockApiError::InvalidPrincipal
                | PasslockApiError::InvalidChallenge
                | PasslockApiError::InvalidChallengeCode => Rejection::InvalidToken.into(),
                PasslockApiError::ChallengeExpired => Rejection::Expired.into(),
                PasslockApiError::PasskeyNotFound { .. } => Rejection::UnknownCredential.into(),
                PasslockApiError::ChallengeRateLimited {
                    retry_after_seconds,
                } => Self::Upstream(UpstreamError::Busy {
                    retry_after: Some(retry_after_seconds.min(MAX_RETRY_AFTER_SECS)),
                }),
                other => Self::Refused {
                    code: other.name().to_owned(),
                    status,
                },
            },
        }
    }
}

fn bad(reason: &'static str, status: u16) -> HostedError {
    HostedError::Upstream(rest::bad(reason, status))
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// The Passlock REST API v2 client. Cheap to clone.
#[derive(Clone)]
pub struct PasslockClient {
    rest: RestClient,
    tenancy_id: TenancyId,
}

impl std::fmt::Debug for PasslockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasslockClient")
            .field("endpoint", &self.rest.endpoint())
            .field("tenancy_id", &self.tenancy_id)
            .field("api_key", self.rest.api_key()) // redacted
            .finish_non_exhaustive()
    }
}

/// What the Passlock service differs in from the shared REST skeleton.
struct Passlock;

impl Service for Passlock {
    type Error = HostedError;

    /// A value that cannot be an id of the service is `NotFound`.
    fn unsafe_segment() -> HostedError {
        HostedError::Api {
            error: PasslockApiError::NotFound,
            status: 404,
        }
    }

    fn error_of(resp: &HttpResponse) -> HostedError {
        error_of(resp)
    }
}

/// A call without a body.
const NO_BODY: Option<&()> = None;

impl PasslockClient {
    /// A client for the configured tenancy.
    pub fn new(config: PasslockConfig) -> Result<Self, ConfigError> {
        let base = config.validate()?;
        let rest = RestClient::new(
            base,
            &["v2", config.tenancy_id.as_str()],
            config.api_key,
            config.http,
        )?;
        Ok(Self {
            rest,
            tenancy_id: config.tenancy_id,
        })
    }

    /// The endpoint, without a trailing slash.
    pub fn endpoint(&self) -> String {
        self.rest.endpoint()
    }

    /// The tenancy.
    pub fn tenancy_id(&self) -> &TenancyId {
        &self.tenancy_id
    }

    /// The HTTP client (shared with the JWKS fetcher).
    pub fn http(&self) -> &HttpClient {
        self.rest.http()
    }

    /// `{endpoint}/v2/{tenancyId}/{segments...}`. Every segment must pass
    /// [`is_url_safe_id`](crate::http::is_url_safe_id) (a value that cannot
    /// be an id of the service is `NotFound`, before any call); an empty
    /// last segment makes a trailing slash.
    fn url(&self, segments: &[&str]) -> Result<url::Url, HostedError> {
        self.rest.url::<Passlock>(segments, true)
    }

    async fn call<T: DeserializeOwned + Tagged, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&B>,
        retry: Retry,
    ) -> Result<T, HostedError> {
        let resp = self
            .rest
            .send::<Passlock, B>(method, url, body, retry)
            .await?;
        decode(&resp)
    }

    /// Exchanges a code for its principal (`GET /principal/{code}`). Sent at
    /// most once: never retried, whatever fails.
    pub async fn exchange_code(&self, code: &Code) -> Result<ExtendedPrincipal, HostedError> {
        // An empty code, or one that could leave its path segment (`..`,
        // `a/b`, whitespace), is refused before any call.
        if !crate::http::is_url_safe_id(code.expose_secret()) {
            return Err(HostedError::Api {
                error: PasslockApiError::InvalidCode,
                status: 404,
            });
        }
        let url = self.url(&["principal", code.expose_secret()])?;
        self.call(Method::Get, url, NO_BODY, Retry::Never).await
    }

    /// Approves one registration ceremony.
    pub async fn authorize_registration(
        &self,
        request: &AuthorizeRegistration,
    ) -> Result<AuthorizedPasskeyRegistration, HostedError> {
        let url = self.url(&["passkey", "registration", "authorize"])?;
        self.call(Method::Post, url, Some(request), Retry::Never)
            .await
    }

    /// Approves one authentication ceremony.
    pub async fn authorize_authentication(
        &self,
        request: &AuthorizeAuthentication,
    ) -> Result<AuthorizedPasskeyAuthentication, HostedError> {
        let url = self.url(&["passkey", "authentication", "authorize"])?;
        self.call(Method::Post, url, Some(request), Retry::Never)
            .await
    }

    /// One page of the vault (`GET /passkeys/?cursor=`).
    pub async fn list_passkeys_page(
        &self,
        cursor: Option<&str>,
    ) -> Result<FindAllPasskeys, HostedError> {
        let mut url = self.url(&["passkeys", ""])?;
        if let Some(cursor) = cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        self.call(Method::Get, url, NO_BODY, Retry::OnConnectFailure)
            .await
    }

    /// Every passkey of the vault, page by page.
    pub fn list_passkeys(&self) -> PasskeyPages {
        PasskeyPages {
            client: self.clone(),
            cursor: None,
            done: false,
        }
    }

    /// One passkey (`GET /passkeys/{id}`).
    pub async fn get_passkey(&self, id: &PasskeyId) -> Result<Passkey, HostedError> {
        let url = self.url(&["passkeys", id.as_str()])?;
        self.call(Method::Get, url, NO_BODY, Retry::OnConnectFailure)
            .await
    }

    async fn prepare<B: Serialize>(
        &self,
        op: &str,
        body: &B,
    ) -> Result<PreparedPasskeyOperation, HostedError> {
        let url = self.url(&["passkeys", op])?;
        let resp = self
            .rest
            .send::<Passlock, B>(Method::Post, url, Some(body), Retry::Never)
            .await?;
        let prepared: PreparedPasskeyOperation = decode_untagged(&resp)?;
        if !prepared.is_prepared() {
            return Err(bad("unexpected tag", resp.status));
        }
        Ok(prepared)
    }

    /// Prepares renaming a user's passkeys (202, a token for the browser).
    pub async fn prepare_update(
        &self,
        request: &PrepareUpdate,
    ) -> Result<PreparedPasskeyOperation, HostedError> {
        self.prepare("update", request).await
    }

    /// Prepares deleting passkeys from the vault (202, a token for the
    /// browser to remove them from the device too).
    pub async fn prepare_delete(
        &self,
        target: &DeleteTarget,
    ) -> Result<PreparedPasskeyOperation, HostedError> {
        self.prepare("delete", target).await
    }

    /// Prepares pruning a user's passkeys (202).
    pub async fn prepare_prune(
        &self,
        user_id: &UserHandle,
    ) -> Result<PreparedPasskeyOperation, HostedError> {
        let body = PrunePasskeys::new(user_id.clone());
        self.prepare("prune", &body).await
    }

    /// Creates a mailbox challenge (201).
    pub async fn create_challenge(
        &self,
        request: &CreateChallenge,
    ) -> Result<ChallengeCreated, HostedError> {
        let url = self.url(&["challenges"])?;
        self.call(Method::Post, url, Some(request), Retry::Never)
            .await
    }

    /// Reads a pending challenge.
    pub async fn get_challenge(&self, id: &ChallengeId) -> Result<Challenge, HostedError> {
        let url = self.url(&["challenges", id.as_str()])?;
        self.call(Method::Get, url, NO_BODY, Retry::OnConnectFailure)
            .await
    }

    /// Verifies a challenge's code (consumes it).
    pub async fn verify_challenge(
        &self,
        request: &VerifyChallenge,
    ) -> Result<ChallengeVerified, HostedError> {
        let url = self.url(&["challenges", "verify"])?;
        self.call(Method::Post, url, Some(request), Retry::Never)
            .await
    }

    /// Deletes a challenge.
    pub async fn delete_challenge(
        &self,
        id: &ChallengeId,
    ) -> Result<ChallengeDeleted, HostedError> {
        let url = self.url(&["challenges", id.as_str()])?;
        self.call(Method::Delete, url, NO_BODY, Retry::Never).await
    }
}

/// Turns a response into `T` (2xx with its tag) or a typed error.
fn decode<T: DeserializeOwned + Tagged>(resp: &HttpResponse) -> Result<T, HostedError> {
    let value: T = decode_untagged(resp)?;
    if *value.tag() != T::TAG {
        return Err(bad("unexpected tag", resp.status));
    }
    Ok(value)
}

fn decode_untagged<T: DeserializeOwned>(resp: &HttpResponse) -> Result<T, HostedError> {
    rest::decode::<Passlock, T>(resp)
}

/// The typed error of a non-2xx answer. A `429` without a known error tag
/// (the service's rate limit rather than a challenge's) is
/// [`UpstreamError::Busy`] with its `Retry-After`; a body that is not a
/// tagged error is an [`UpstreamError::BadResponse`].
fn error_of(resp: &HttpResponse) -> HostedError {
    let status = resp.status;
    let typed = if resp.is_json()
        && let Ok(body) = serde_json::from_slice::<ErrorBody>(&resp.body)
    {
        Some(PasslockApiError::from(body))
    } else {
        None
    };
    match typed {
        None | Some(PasslockApiError::Other(_)) if status == 429 => {
            return HostedError::Upstream(UpstreamError::Busy {
                retry_after: resp.retry_after,
            });
        }
        Some(error) => return HostedError::Api { error, status },
        None => {}
    }
    if status >= 500 {
        bad("server error", status)
    } else {
        bad("unexpected error body", status)
    }
}

/// The vault, page by page (cursor pagination).
///
/// ```no_run
/// # async fn f(client: passlock_core::provider::passlock::PasslockClient) -> Result<(), passlock_core::provider::passlock::HostedError> {
/// let mut pages = client.list_passkeys();
/// while let Some(page) = pages.next_page().await {
///     for passkey in page? {
///         println!("{}", passkey.id);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PasskeyPages {
    client: PasslockClient,
    cursor: Option<String>,
    done: bool,
}

impl PasskeyPages {
    /// The next page; `None` after the last one (or after an error).
    pub async fn next_page(&mut self) -> Option<Result<Vec<PasskeySummary>, HostedError>> {
        if self.done {
            return None;
        }
        match self.client.list_passkeys_page(self.cursor.as_deref()).await {
            Ok(page) => {
                match page.cursor {
                    Some(next) if !next.is_empty() => {
                        if self.cursor.as_deref() == Some(next.as_str()) {
                            // A cursor that does not move would loop forever.
                            self.done = true;
                            return Some(Err(bad("cursor did not advance", 200)));
                        }
                        self.cursor = Some(next);
                    }
                    _ => self.done = true,
                }
                Some(Ok(page.records))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// Reads every remaining page.
    pub async fn collect_all(mut self) -> Result<Vec<PasskeySummary>, HostedError> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await {
            all.extend(page?);
        }
        Ok(all)
    }
}

// ---------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------

/// The hosted Passlock [`PasskeyProvider`]: ceremonies run in the browser
/// against the service; the app exchanges the code (or verifies the
/// id_token locally against the service's JWKS).
#[derive(Debug, Clone)]
pub struct PasslockHosted {
    client: PasslockClient,
    verifier: IdTokenVerifier,
    clock: SharedClock,
    rp_id: String,
    rp_name: String,
    user_verification: Option<String>,
}

impl PasslockHosted {
    /// The provider for `config`, approving ceremonies for the relying party
    /// `rp_id` (the app's domain) named `rp_name`.
    pub fn new(
        config: PasslockConfig,
        rp_id: impl Into<String>,
        rp_name: impl Into<String>,
        clock: SharedClock,
    ) -> Result<Self, ConfigError> {
        let rp_id = rp_id.into();
        let rp_name = rp_name.into();
        crate::origin::parse_rp_id(&rp_id)?;
        if rp_name.is_empty() {
            return Err(ConfigError::new("rp_name", "is empty"));
        }
        let tenancy = config.tenancy_id.clone();
        let mut config = config;
        config.http.clock = clock.clone();
        let client = PasslockClient::new(config)?;
        let jwks = HttpJwks::new(client.http().clone(), &client.endpoint());
        let verifier = IdTokenVerifier::new(
            VerifierConfig::passlock(tenancy),
            Arc::new(jwks),
            clock.clone(),
        );
        Ok(Self {
            client,
            verifier,
            clock,
            rp_id,
            rp_name,
            user_verification: None,
        })
    }

    /// Uses another id_token verifier (e.g. one with a shared replay cache).
    #[must_use]
    pub fn with_verifier(mut self, verifier: IdTokenVerifier) -> Self {
        self.verifier = verifier;
        self
    }

    /// Uses `cache` as the replay cache of both proofs of a ceremony: the
    /// `jti` of every verified id_token and the principal id of every
    /// exchanged code (the same value: the principal id is the `jti` of the
    /// ceremony's id_token) are recorded in it, so each ceremony is redeemed
    /// once, by its code or by its id_token.
    ///
    /// The default cache is in memory and per process. **A deployment of
    /// several app instances must give every instance one shared cache**
    /// (`SqliteReplayCache`, `PgReplayCache`, or `RedisReplayCache` with
    /// the `redis` feature): with per-process caches an id_token redeemed on
    /// one instance is accepted again by another until it expires.
    #[must_use]
    pub fn with_replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Self {
        self.verifier = self.verifier.with_replay_cache(cache);
        self
    }

    /// Asks for user verification (`required`, `preferred`, `discouraged`).
    #[must_use]
    pub fn with_user_verification(mut self, uv: impl Into<String>) -> Self {
        self.user_verification = Some(uv.into());
        self
    }

    /// The REST client (vault, challenges).
    pub fn client(&self) -> &PasslockClient {
        &self.client
    }

    /// The id_token verifier.
    pub fn verifier(&self) -> &IdTokenVerifier {
        &self.verifier
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::Remote(self.client.endpoint())
    }
}

#[async_trait::async_trait]
impl PasskeyProvider for PasslockHosted {
    /// Derived from the API key, which every instance of the app holds.
    fn sealing_key(&self) -> Option<crate::ticket::SealingKey> {
        Some(crate::ticket::SealingKey::derive(
            self.client.rest.api_key().expose_secret().as_bytes(),
            "passlock sign-up ticket v1",
        ))
    }

    fn name(&self) -> &'static str {
        "passlock"
    }

    async fn authorize_registration(
        &self,
        request: RegistrationRequest,
    ) -> Result<Authorization<RegistrationToken>, ProviderError> {
        let mut body = AuthorizeRegistration::new(
            self.rp_id.clone(),
            self.rp_name.clone(),
            request.user,
            request.username,
        );
        body.display_name = request.display_name;
        if !request.exclude.is_empty() {
            body.exclude_credentials = Some(
                request
                    .exclude
                    .into_iter()
                    .map(|a| a.into_string())
                    .collect(),
            );
        }
        body.user_verification = self.user_verification.clone();
        let ok = self.client.authorize_registration(&body).await?;
        Ok(Authorization::new(
            ok.registration_token,
            ok.expires_at,
            self.client.tenancy_id().clone(),
            self.endpoint(),
        ))
    }

    async fn authorize_authentication(
        &self,
        request: AuthenticationRequest,
    ) -> Result<Authorization<AuthenticationToken>, ProviderError> {
        let mut body = AuthorizeAuthentication::new(self.rp_id.clone());
        match request.allow {
            Some(allow) => {
                body.allow_credentials = Some(allow.into_iter().map(|a| a.into_string()).collect());
            }
            None => body.discoverable = Some(true),
        }
        body.user_verification = self.user_verification.clone();
        // The v2 wire's own `mediation`: the service hands it back with the
        // options (`{sessionToken, optionsJSON, mediation}`).
        if request.mediation == crate::provider::Mediation::Conditional {
            body.mediation = Some(crate::provider::Mediation::Conditional.as_str().to_owned());
        }
        let ok = self.client.authorize_authentication(&body).await?;
        Ok(Authorization::new(
            ok.authentication_token,
            ok.expires_at,
            self.client.tenancy_id().clone(),
            self.endpoint(),
        ))
    }

    async fn verify(&self, proof: &Proof) -> Result<Principal, ProviderError> {
        match proof {
            Proof::Code(code) => {
                let principal = self.client.exchange_code(code).await?;
                if principal.expires_at <= self.clock.now_millis() {
                    return Err(Rejection::Expired.into());
                }
                // The principal id is the `jti` of the ceremony's id_token:
                // recording it makes the twin id_token a replay, and finding
                // it means the twin id_token was redeemed first.
                let until =
                    twin_id_token_expiry(&principal).saturating_add(self.verifier.leeway_secs());
                if !self.verifier.consume_jti(&principal.id, until).await? {
                    return Err(Rejection::Replayed.into());
                }
                Ok(principal.to_principal())
            }
            Proof::IdToken(token) => self.verifier.verify(token).await,
            _ => Err(Rejection::Malformed.into()),
        }
    }

    /// Prepares the deletion in the vault. A passkey already gone is not an
    /// error (deleting is idempotent).
    async fn delete_passkey(&self, authenticator: &AuthenticatorId) -> Result<(), ProviderError> {
        let target = DeleteTarget::Passkeys {
            passkey_ids: vec![PasskeyId::from(authenticator.clone())],
        };
        match self.client.prepare_delete(&target).await {
            Ok(_) => Ok(()),
            Err(HostedError::Api {
                error: PasslockApiError::PasskeyNotFound { .. } | PasslockApiError::NotFound,
                ..
            }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// How long after its ceremony the twin id_token of an exchanged code is
/// assumed to stay valid, at least (the service issues them for five
/// minutes; the margin covers a longer lifetime announced later).
const TWIN_ID_TOKEN_LIFETIME_SECS: i64 = 3600;

/// Until when (epoch seconds) the principal id of an exchanged code is kept
/// in the replay cache: its twin id_token's `exp` is not known here, so the
/// later of the principal's own expiry and its ceremony time plus
/// [`TWIN_ID_TOKEN_LIFETIME_SECS`].
fn twin_id_token_expiry(principal: &ExtendedPrincipal) -> i64 {
    let ceremony = principal.created_at.div_euclid(1000);
    principal
        .expires_at
        .div_euclid(1000)
        .max(ceremony.saturating_add(TWIN_ID_TOKEN_LIFETIME_SECS))
}

/// Decodes one response of the hosted service as every answer type the
/// client reads (and as an error body), as [`PasslockClient`] does; the
/// fuzz entry point for the wire structs and `_tag` error parsing. Returns
/// how many of the types accepted it. Not part of the API.
#[doc(hidden)]
pub fn fuzz_decode_response(status: u16, content_type: Option<&str>, body: &[u8]) -> usize {
    let resp = rest::fuzz_response(status, content_type, body);
    let results = [
        decode::<ExtendedPrincipal>(&resp).is_ok(),
        decode::<AuthorizedPasskeyRegistration>(&resp).is_ok(),
        decode::<AuthorizedPasskeyAuthentication>(&resp).is_ok(),
        decode::<FindAllPasskeys>(&resp).is_ok(),
        decode::<Passkey>(&resp).is_ok(),
        decode::<ChallengeCreated>(&resp).is_ok(),
        decode::<Challenge>(&resp).is_ok(),
        decode::<ChallengeVerified>(&resp).is_ok(),
        decode::<ChallengeDeleted>(&resp).is_ok(),
        decode_untagged::<PreparedPasskeyOperation>(&resp).is_ok(),
    ];
    // The error path renders its message and HTTP mapping too.
    let error = error_of(&resp);
    let _ = (error.to_string(), ProviderError::from(error).status());
    results.iter().filter(|ok| **ok).count()
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
        let e = error_of(&resp(
            429,
            "application/json",
            r#"{"_tag":"@error/ChallengeRateLimited","message":"x","retryAfterSeconds":42}"#,
        ));
        assert_eq!(
            e.api(),
            Some(&PasslockApiError::ChallengeRateLimited {
                retry_after_seconds: 42
            })
        );
        let e = error_of(&resp(
            404,
            "application/json",
            r#"{"_tag":"@error/PasskeyNotFound","message":"x","credentialId":"c","rpId":"r"}"#,
        ));
        assert_eq!(
            e.api(),
            Some(&PasslockApiError::PasskeyNotFound {
                credential_id: "c".into(),
                rp_id: "r".into()
            })
        );
        let e = error_of(&resp(
            400,
            "application/json",
            r#"{"_tag":"@error/Weird Tag!"}"#,
        ));
        assert_eq!(e.api(), Some(&PasslockApiError::Other("WeirdTag".into())));
        for (status, ct, body) in [
            (500, "text/html", "<html>oops</html>"),
            (400, "application/json", "not json"),
            (401, "application/json", r#"{"_tag":"Unauthorized"}"#),
            (403, "application/json", "[]"),
        ] {
            let e = error_of(&resp(status, ct, body));
            assert!(
                matches!(e, HostedError::Upstream(UpstreamError::BadResponse { .. })),
                "{e:?}"
            );
        }
    }

    #[test]
    fn provider_error_mapping() {
        let api = |error| HostedError::Api { error, status: 404 };
        assert!(matches!(
            ProviderError::from(api(PasslockApiError::InvalidCode)),
            ProviderError::Rejected(Rejection::InvalidToken)
        ));
        assert!(matches!(
            ProviderError::from(api(PasslockApiError::PasskeyNotFound {
                credential_id: String::new(),
                rp_id: String::new()
            })),
            ProviderError::Rejected(Rejection::UnknownCredential)
        ));
        for e in [
            PasslockApiError::Unauthorized,
            PasslockApiError::Forbidden,
            PasslockApiError::InvalidTenancy,
        ] {
            let name = e.name().to_owned();
            match ProviderError::from(api(e)) {
                ProviderError::Refused { code, .. } => assert_eq!(code, name),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            ProviderError::from(HostedError::Upstream(UpstreamError::Timeout)),
            ProviderError::Upstream(UpstreamError::Timeout)
        ));
    }

    #[test]
    fn config_validation_and_redaction() {
        let t = TenancyId::new("t1").unwrap();
        let c = PasslockConfig::new(t.clone(), ApiKey::new("sk_live_secret"));
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("sk_live_secret"));
        let client = PasslockClient::new(c.clone()).unwrap();
        assert!(!format!("{client:?}").contains("sk_live_secret"));
        assert!(
            c.clone()
                .with_endpoint("http://example.com")
                .validate()
                .is_err()
        );
        assert!(
            c.clone()
                .with_endpoint("http://127.0.0.1:9")
                .validate()
                .is_ok()
        );
        assert!(
            c.clone()
                .with_endpoint("https://a.b/?x=1")
                .validate()
                .is_err()
        );
        assert!(c.clone().with_endpoint("nope").validate().is_err());
    }

    #[test]
    fn url_segments_are_allow_listed() {
        let t = TenancyId::new("t1").unwrap();
        let client = PasslockClient::new(
            PasslockConfig::new(t, ApiKey::new("k")).with_endpoint("https://api.example.com/"),
        )
        .unwrap();
        let u = client.url(&["principal", "a-B_9"]).unwrap();
        assert_eq!(u.as_str(), "https://api.example.com/v2/t1/principal/a-B_9");
        for bad in ["a/b?c", ".", "..", "%2e%2e", "", " ", "a b"] {
            assert!(
                matches!(
                    client.url(&["principal", bad, "x"]),
                    Err(HostedError::Api {
                        error: PasslockApiError::NotFound,
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        let dotted = PasslockConfig::new(TenancyId::new("..").unwrap(), ApiKey::new("k"))
            .with_endpoint("https://api.example.com/");
        assert_eq!(dotted.validate().unwrap_err().field, "tenancy_id");
        let u = client.url(&["passkeys", ""]).unwrap();
        assert_eq!(u.as_str(), "https://api.example.com/v2/t1/passkeys/");
    }

    #[test]
    fn delete_target_wire_form() {
        let p = DeleteTarget::Passkeys {
            passkey_ids: vec![PasskeyId::new("p1").unwrap()],
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"passkeyIds":["p1"]}"#
        );
        let u = DeleteTarget::User {
            user_id: UserHandle::new("u1").unwrap(),
        };
        assert_eq!(serde_json::to_string(&u).unwrap(), r#"{"userId":"u1"}"#);
    }
}

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

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::{SharedClock, UnixMillis};
use crate::error::{ConfigError, MAX_RETRY_AFTER_SECS, ProviderError, Rejection, UpstreamError};
use crate::http::{HttpClient, HttpConfig, HttpResponse, Method, Retry};
use crate::id::{AuthenticatorId, ChallengeId, PasskeyId, TenancyId, UserHandle};
use crate::principal::{ExtendedPrincipal, Principal};
use crate::proof::Proof;
use crate::provider::jwt::{HttpJwks, IdTokenVerifier, ReplayCache, VerifierConfig};
use crate::provider::{
    AuthenticationRequest, Authorization, Endpoint, PasskeyProvider, RegistrationRequest,
};
use crate::secret::{
    ApiKey, AuthenticationToken, ChallengeSecret, Code, RegistrationToken, VaultToken,
};

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

    /// Parses an error body's `_tag` (with its `@error/` prefix) and fields.
    /// `None` when the tag is not an error tag.
    pub fn from_body(body: &Map<String, Value>) -> Option<Self> {
        let tag = body.get("_tag")?.as_str()?;
        let name = tag.strip_prefix("@error/")?;
        let string = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Some(match name {
            "Unauthorized" => Self::Unauthorized,
            "Forbidden" => Self::Forbidden,
            "InvalidCode" => Self::InvalidCode,
            "InvalidPrincipal" => Self::InvalidPrincipal,
            "InvalidChallenge" => Self::InvalidChallenge,
            "InvalidChallengeCode" => Self::InvalidChallengeCode,
            "ChallengeExpired" => Self::ChallengeExpired,
            "ChallengeAttemptsExceeded" => Self::ChallengeAttemptsExceeded,
            "ChallengeRateLimited" => Self::ChallengeRateLimited {
                retry_after_seconds: body
                    .get("retryAfterSeconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            },
            "InvalidTenancy" => Self::InvalidTenancy,
            "PasskeyNotFound" => Self::PasskeyNotFound {
                credential_id: string("credentialId"),
                rp_id: string("rpId"),
            },
            "NotFound" => Self::NotFound,
            "InvalidEmail" => Self::InvalidEmail,
            "DuplicateEmail" => Self::DuplicateEmail,
            "BadRequest" => Self::BadRequest,
            other => {
                // Keep only a short, printable tag: it may reach logs.
                let clean: String = other
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(64)
                    .collect();
                Self::Other(clean)
            }
        })
    }
}

/// A failed call to the Passlock service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasslockError {
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

impl PasslockError {
    /// The typed service error, if this is one.
    pub fn api(&self) -> Option<&PasslockApiError> {
        match self {
            Self::Api { error, .. } => Some(error),
            Self::Upstream(_) => None,
        }
    }
}

impl From<PasslockError> for ProviderError {
    fn from(e: PasslockError) -> Self {
        match e {
            PasslockError::Upstream(u) => Self::Upstream(u),
            PasslockError::Api { error, status } => match error {
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

fn bad(reason: &'static str, status: u16) -> PasslockError {
    PasslockError::Upstream(UpstreamError::BadResponse {
        reason,
        status: Some(status),
        source: None,
    })
}

// ---------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------

/// `POST /passkey/registration/authorize` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthorizeRegistration {
    /// The relying party id (the app's domain).
    pub rp_id: String,
    /// The relying party name shown by authenticators.
    pub rp_name: String,
    /// The user id the passkey is created for.
    pub user_id: UserHandle,
    /// The username.
    pub username: String,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Passkeys not to create again on the same authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_credentials: Option<Vec<String>>,
    /// `required`, `preferred` or `discouraged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<String>,
    /// Ceremony timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

impl AuthorizeRegistration {
    /// A registration for `user_id` named `username`.
    pub fn new(
        rp_id: impl Into<String>,
        rp_name: impl Into<String>,
        user_id: UserHandle,
        username: impl Into<String>,
    ) -> Self {
        Self {
            rp_id: rp_id.into(),
            rp_name: rp_name.into(),
            user_id,
            username: username.into(),
            display_name: None,
            exclude_credentials: None,
            user_verification: None,
            timeout: None,
        }
    }
}

/// `AuthorizedPasskeyRegistration`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthorizedPasskeyRegistration {
    /// `"AuthorizedPasskeyRegistration"`.
    #[serde(rename = "_tag")]
    pub tag: String,
    /// The one-time token for the browser.
    pub registration_token: RegistrationToken,
    /// When it expires (epoch ms).
    pub expires_at: UnixMillis,
}

/// `POST /passkey/authentication/authorize` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthorizeAuthentication {
    /// The relying party id.
    pub rp_id: String,
    /// Restrict to this user's passkeys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// Restrict to these passkeys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<Vec<String>>,
    /// `required`, `preferred` or `discouraged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<String>,
    /// Ceremony timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Whether a discoverable (usernameless) passkey is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discoverable: Option<bool>,
    /// WebAuthn mediation (`conditional`, `optional`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mediation: Option<String>,
}

impl AuthorizeAuthentication {
    /// An authentication for `rp_id`.
    pub fn new(rp_id: impl Into<String>) -> Self {
        Self {
            rp_id: rp_id.into(),
            ..Self::default()
        }
    }
}

/// `AuthorizedPasskeyAuthentication`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthorizedPasskeyAuthentication {
    /// `"AuthorizedPasskeyAuthentication"`.
    #[serde(rename = "_tag")]
    pub tag: String,
    /// The one-time token for the browser.
    pub authentication_token: AuthenticationToken,
    /// When it expires (epoch ms).
    pub expires_at: UnixMillis,
}

/// One passkey in a vault listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PasskeySummary {
    /// `"PasskeySummary"`.
    #[serde(rename = "_tag")]
    pub tag: String,
    /// The passkey id (the `authenticatorId` of principals).
    pub id: PasskeyId,
    /// The user it was registered for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// When it was created (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<UnixMillis>,
    /// Fields this client does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PasskeySummary {
    /// A summary (for fakes and tests).
    pub fn new(id: PasskeyId, user_id: Option<UserHandle>, created_at: Option<UnixMillis>) -> Self {
        Self {
            tag: "PasskeySummary".to_owned(),
            id,
            user_id,
            created_at,
            extra: Map::new(),
        }
    }
}

/// One page of `GET /passkeys/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FindAllPasskeys {
    /// `"FindAllPasskeys"`.
    #[serde(rename = "_tag")]
    pub tag: String,
    /// The cursor of the next page; `null` on the last page.
    pub cursor: Option<String>,
    /// The passkeys of this page.
    pub records: Vec<PasskeySummary>,
}

/// A passkey in the vault (`GET /passkeys/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Passkey {
    /// `"Passkey"`.
    #[serde(rename = "_tag")]
    pub tag: String,
    /// The passkey id.
    pub id: PasskeyId,
    /// The user it was registered for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// The username shown by authenticators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// When it was created (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<UnixMillis>,
    /// When it was last used (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<UnixMillis>,
    /// Fields this client does not model (credential, platform, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Passkey {
    /// A passkey (for fakes and tests).
    pub fn new(id: PasskeyId, user_id: Option<UserHandle>, username: Option<String>) -> Self {
        Self {
            tag: "Passkey".to_owned(),
            id,
            user_id,
            username,
            created_at: None,
            last_used: None,
            extra: Map::new(),
        }
    }
}

/// `POST /passkeys/update` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PrepareUpdate {
    /// The user whose passkeys are renamed.
    pub user_id: UserHandle,
    /// The new username.
    pub username: String,
    /// The new display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl PrepareUpdate {
    /// Renames `user_id`'s passkeys.
    pub fn new(user_id: UserHandle, username: impl Into<String>) -> Self {
        Self {
            user_id,
            username: username.into(),
            display_name: None,
        }
    }
}

/// `POST /passkeys/delete` body: exactly one of the two forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum DeleteTarget {
    /// These passkeys.
    Passkeys {
        /// The passkeys.
        #[serde(rename = "passkeyIds")]
        passkey_ids: Vec<PasskeyId>,
    },
    /// Every passkey of this user.
    User {
        /// The user.
        #[serde(rename = "userId")]
        user_id: UserHandle,
    },
}

/// A warning of a prepared vault operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VaultWarning {
    /// A machine code.
    pub code: String,
    /// A human sentence.
    pub message: String,
    /// The passkey concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey_id: Option<PasskeyId>,
}

/// The `202` answer of `POST /passkeys/{update,delete,prune}`: a token the
/// browser exchanges to finish the operation on the device.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PreparedPasskeyOperation {
    /// `"PreparedPasskeyUpdate"`, `"PreparedPasskeyDelete"` or `"PreparedPasskeyPrune"`.
    #[serde(rename = "_tag")]
    pub tag: String,
    /// The `updateToken`, `deleteToken` or `pruneToken`.
    #[serde(alias = "updateToken", alias = "deleteToken", alias = "pruneToken")]
    pub token: VaultToken,
    /// When the token expires (epoch ms).
    pub expires_at: UnixMillis,
    /// Warnings (e.g. a passkey that was already gone).
    #[serde(default)]
    pub warnings: Vec<VaultWarning>,
}

/// `POST /challenges` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreateChallenge {
    /// Where the code is mailed.
    pub email: String,
    /// What the challenge is for (e.g. `login`).
    pub purpose: String,
    /// The recipient's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The user concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// Free metadata kept with the challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Invalidate the other pending challenges of this email and purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidate_others: Option<bool>,
    /// Skip the service's rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_rate_limit: Option<bool>,
    /// Whether the service mails the code itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_email: Option<bool>,
}

impl CreateChallenge {
    /// A challenge for `email` and `purpose`.
    pub fn new(email: impl Into<String>, purpose: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            purpose: purpose.into(),
            ..Self::default()
        }
    }
}

/// The mail of a created challenge (holds the code: `Debug` hides it).
#[derive(Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChallengeMessage {
    /// HTML body.
    pub html: String,
    /// Text body.
    pub text: String,
}

impl std::fmt::Debug for ChallengeMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeMessage([redacted])")
    }
}

/// A created challenge, with its secret and code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreatedChallenge {
    /// The challenge id.
    pub challenge_id: ChallengeId,
    /// The purpose.
    pub purpose: String,
    /// The email.
    pub email: String,
    /// The user concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// When it was created (epoch ms).
    pub created_at: UnixMillis,
    /// When it expires (epoch ms).
    pub expires_at: UnixMillis,
    /// The metadata.
    #[serde(default)]
    pub metadata: Value,
    /// The secret the app keeps (e.g. in its session) to verify later.
    pub secret: ChallengeSecret,
    /// The one-time code mailed to the user.
    pub code: ChallengeSecret,
    /// The mail.
    pub message: ChallengeMessage,
}

/// `ChallengeCreated` (201).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChallengeCreated {
    /// `"ChallengeCreated"`.
    #[serde(rename = "_tag")]
    pub tag: String,
    /// The challenge.
    pub challenge: CreatedChallenge,
}

/// A pending challenge (no secret, no code).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Challenge {
    /// `"Challenge"`.
    #[serde(rename = "_tag")]
    pub tag: String,
    /// The challenge id.
    pub challenge_id: ChallengeId,
    /// The purpose.
    pub purpose: String,
    /// The email.
    pub email: String,
    /// The user concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// When it was created (epoch ms).
    pub created_at: UnixMillis,
    /// When it expires (epoch ms).
    pub expires_at: UnixMillis,
    /// The metadata.
    #[serde(default)]
    pub metadata: Value,
}

/// `POST /challenges/verify` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VerifyChallenge {
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// The secret from [`CreatedChallenge::secret`].
    pub secret: ChallengeSecret,
    /// The code the user typed.
    pub code: ChallengeSecret,
}

impl VerifyChallenge {
    /// A verification.
    pub fn new(challenge_id: ChallengeId, secret: ChallengeSecret, code: ChallengeSecret) -> Self {
        Self {
            challenge_id,
            secret,
            code,
        }
    }
}

/// `ChallengeVerified`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChallengeVerified {
    /// `"ChallengeVerified"`.
    #[serde(rename = "_tag")]
    pub tag: String,
    /// The verified challenge (now consumed).
    pub challenge: Challenge,
}

/// `ChallengeDeleted`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChallengeDeleted {
    /// `"ChallengeDeleted"`.
    #[serde(rename = "_tag")]
    pub tag: String,
    /// The deleted challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<ChallengeId>,
}

/// A wire object with a `_tag`.
trait Tagged {
    const TAG: &'static str;
    fn tag(&self) -> &str;
}

macro_rules! tagged {
    ($($t:ty => $tag:literal),* $(,)?) => {$(
        impl Tagged for $t {
            const TAG: &'static str = $tag;
            fn tag(&self) -> &str { &self.tag }
        }
    )*};
}

tagged!(
    ExtendedPrincipal => "ExtendedPrincipal",
    AuthorizedPasskeyRegistration => "AuthorizedPasskeyRegistration",
    AuthorizedPasskeyAuthentication => "AuthorizedPasskeyAuthentication",
    FindAllPasskeys => "FindAllPasskeys",
    Passkey => "Passkey",
    ChallengeCreated => "ChallengeCreated",
    Challenge => "Challenge",
    ChallengeVerified => "ChallengeVerified",
    ChallengeDeleted => "ChallengeDeleted",
);

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// The Passlock REST API v2 client. Cheap to clone.
#[derive(Clone)]
pub struct PasslockClient {
    http: HttpClient,
    base: url::Url,
    tenancy_id: TenancyId,
    api_key: ApiKey,
}

impl std::fmt::Debug for PasslockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasslockClient")
            .field("endpoint", &self.base.as_str())
            .field("tenancy_id", &self.tenancy_id)
            .field("api_key", &self.api_key) // redacted
            .finish_non_exhaustive()
    }
}

impl PasslockClient {
    /// A client for the configured tenancy.
    pub fn new(config: PasslockConfig) -> Result<Self, ConfigError> {
        let base = config.validate()?;
        let http = HttpClient::new(config.http)?;
        Ok(Self {
            http,
            base,
            tenancy_id: config.tenancy_id,
            api_key: config.api_key,
        })
    }

    /// The endpoint, without a trailing slash.
    pub fn endpoint(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// The tenancy.
    pub fn tenancy_id(&self) -> &TenancyId {
        &self.tenancy_id
    }

    /// The HTTP client (shared with the JWKS fetcher).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// `{endpoint}/v2/{tenancyId}/{segments...}`. Every segment must pass
    /// [`is_url_safe_id`](crate::http::is_url_safe_id) (a value that cannot
    /// be an id of the service is `NotFound`, before any call); an empty
    /// last segment makes a trailing slash.
    fn url(&self, segments: &[&str]) -> Result<url::Url, PasslockError> {
        let (last, ids) = segments.split_last().unwrap_or((&"", &[]));
        let safe = |s: &&str| crate::http::is_url_safe_id(s);
        if !crate::http::is_url_safe_id(self.tenancy_id.as_str())
            || !ids.iter().all(safe)
            || !(last.is_empty() || safe(last))
        {
            return Err(PasslockError::Api {
                error: PasslockApiError::NotFound,
                status: 404,
            });
        }
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| bad("endpoint cannot be a base", 0))?;
            path.pop_if_empty()
                .push("v2")
                .push(self.tenancy_id.as_str())
                .extend(segments);
        }
        Ok(url)
    }

    async fn call<T: DeserializeOwned + Tagged>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<Vec<u8>>,
        retry: Retry,
    ) -> Result<T, PasslockError> {
        let resp = self
            .http
            .send(method, url.as_str(), Some(&self.api_key), body, retry)
            .await?;
        decode(&resp)
    }

    fn body<B: Serialize>(body: &B) -> Result<Option<Vec<u8>>, PasslockError> {
        serde_json::to_vec(body).map(Some).map_err(|e| {
            PasslockError::Upstream(UpstreamError::BadResponse {
                reason: "cannot encode the request",
                status: None,
                source: Some(Box::new(e)),
            })
        })
    }

    /// Exchanges a code for its principal (`GET /principal/{code}`). Sent at
    /// most once: never retried, whatever fails.
    pub async fn exchange_code(&self, code: &Code) -> Result<ExtendedPrincipal, PasslockError> {
        // An empty code, or one that could leave its path segment (`..`,
        // `a/b`, whitespace), is refused before any call.
        if !crate::http::is_url_safe_id(code.expose_secret()) {
            return Err(PasslockError::Api {
                error: PasslockApiError::InvalidCode,
                status: 404,
            });
        }
        let url = self.url(&["principal", code.expose_secret()])?;
        self.call(Method::Get, url, None, Retry::Never).await
    }

    /// Approves one registration ceremony.
    pub async fn authorize_registration(
        &self,
        request: &AuthorizeRegistration,
    ) -> Result<AuthorizedPasskeyRegistration, PasslockError> {
        let url = self.url(&["passkey", "registration", "authorize"])?;
        self.call(Method::Post, url, Self::body(request)?, Retry::Never)
            .await
    }

    /// Approves one authentication ceremony.
    pub async fn authorize_authentication(
        &self,
        request: &AuthorizeAuthentication,
    ) -> Result<AuthorizedPasskeyAuthentication, PasslockError> {
        let url = self.url(&["passkey", "authentication", "authorize"])?;
        self.call(Method::Post, url, Self::body(request)?, Retry::Never)
            .await
    }

    /// One page of the vault (`GET /passkeys/?cursor=`).
    pub async fn list_passkeys_page(
        &self,
        cursor: Option<&str>,
    ) -> Result<FindAllPasskeys, PasslockError> {
        let mut url = self.url(&["passkeys", ""])?;
        if let Some(cursor) = cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        self.call(Method::Get, url, None, Retry::OnConnectFailure)
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
    pub async fn get_passkey(&self, id: &PasskeyId) -> Result<Passkey, PasslockError> {
        let url = self.url(&["passkeys", id.as_str()])?;
        self.call(Method::Get, url, None, Retry::OnConnectFailure)
            .await
    }

    async fn prepare(
        &self,
        op: &str,
        body: Option<Vec<u8>>,
    ) -> Result<PreparedPasskeyOperation, PasslockError> {
        let url = self.url(&["passkeys", op])?;
        let resp = self
            .http
            .send(
                Method::Post,
                url.as_str(),
                Some(&self.api_key),
                body,
                Retry::Never,
            )
            .await?;
        let prepared: PreparedPasskeyOperation = decode_untagged(&resp)?;
        if !prepared.tag.starts_with("PreparedPasskey") {
            return Err(bad("unexpected tag", resp.status));
        }
        Ok(prepared)
    }

    /// Prepares renaming a user's passkeys (202, a token for the browser).
    pub async fn prepare_update(
        &self,
        request: &PrepareUpdate,
    ) -> Result<PreparedPasskeyOperation, PasslockError> {
        self.prepare("update", Self::body(request)?).await
    }

    /// Prepares deleting passkeys from the vault (202, a token for the
    /// browser to remove them from the device too).
    pub async fn prepare_delete(
        &self,
        target: &DeleteTarget,
    ) -> Result<PreparedPasskeyOperation, PasslockError> {
        self.prepare("delete", Self::body(target)?).await
    }

    /// Prepares pruning a user's passkeys (202).
    pub async fn prepare_prune(
        &self,
        user_id: &UserHandle,
    ) -> Result<PreparedPasskeyOperation, PasslockError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Prune<'a> {
            user_id: &'a UserHandle,
        }
        self.prepare("prune", Self::body(&Prune { user_id })?).await
    }

    /// Creates a mailbox challenge (201).
    pub async fn create_challenge(
        &self,
        request: &CreateChallenge,
    ) -> Result<ChallengeCreated, PasslockError> {
        let url = self.url(&["challenges"])?;
        self.call(Method::Post, url, Self::body(request)?, Retry::Never)
            .await
    }

    /// Reads a pending challenge.
    pub async fn get_challenge(&self, id: &ChallengeId) -> Result<Challenge, PasslockError> {
        let url = self.url(&["challenges", id.as_str()])?;
        self.call(Method::Get, url, None, Retry::OnConnectFailure)
            .await
    }

    /// Verifies a challenge's code (consumes it).
    pub async fn verify_challenge(
        &self,
        request: &VerifyChallenge,
    ) -> Result<ChallengeVerified, PasslockError> {
        let url = self.url(&["challenges", "verify"])?;
        self.call(Method::Post, url, Self::body(request)?, Retry::Never)
            .await
    }

    /// Deletes a challenge.
    pub async fn delete_challenge(
        &self,
        id: &ChallengeId,
    ) -> Result<ChallengeDeleted, PasslockError> {
        let url = self.url(&["challenges", id.as_str()])?;
        self.call(Method::Delete, url, None, Retry::Never).await
    }
}

/// Turns a response into `T` (2xx with its tag) or a typed error.
fn decode<T: DeserializeOwned + Tagged>(resp: &HttpResponse) -> Result<T, PasslockError> {
    let value: T = decode_untagged(resp)?;
    if value.tag() != T::TAG {
        return Err(bad("unexpected tag", resp.status));
    }
    Ok(value)
}

fn decode_untagged<T: DeserializeOwned>(resp: &HttpResponse) -> Result<T, PasslockError> {
    if resp.is_success() {
        return Ok(resp.json::<T>()?);
    }
    Err(error_of(resp))
}

/// The typed error of a non-2xx answer. A `429` without a known error tag
/// (the service's rate limit rather than a challenge's) is
/// [`UpstreamError::Busy`] with its `Retry-After`; a body that is not a
/// tagged error is an [`UpstreamError::BadResponse`].
fn error_of(resp: &HttpResponse) -> PasslockError {
    let status = resp.status;
    let typed = if resp.is_json()
        && let Ok(body) = serde_json::from_slice::<Map<String, Value>>(&resp.body)
    {
        PasslockApiError::from_body(&body)
    } else {
        None
    };
    match typed {
        None | Some(PasslockApiError::Other(_)) if status == 429 => {
            return PasslockError::Upstream(UpstreamError::Busy {
                retry_after: resp.retry_after,
            });
        }
        Some(error) => return PasslockError::Api { error, status },
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
/// # async fn f(client: passlock_core::provider::passlock::PasslockClient) -> Result<(), passlock_core::provider::passlock::PasslockError> {
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
    pub async fn next_page(&mut self) -> Option<Result<Vec<PasskeySummary>, PasslockError>> {
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
    pub async fn collect_all(mut self) -> Result<Vec<PasskeySummary>, PasslockError> {
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
        if rp_id.is_empty() || rp_id.contains(['/', ':', ' ']) {
            return Err(ConfigError::new("rp_id", "must be a bare domain"));
        }
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
            self.client.api_key.expose_secret().as_bytes(),
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
            Err(PasslockError::Api {
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
    let resp = HttpResponse {
        status,
        content_type: content_type.map(str::to_owned),
        body: body.to_vec(),
        retry_after: None,
    };
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
                matches!(
                    e,
                    PasslockError::Upstream(UpstreamError::BadResponse { .. })
                ),
                "{e:?}"
            );
        }
    }

    #[test]
    fn provider_error_mapping() {
        let api = |error| PasslockError::Api { error, status: 404 };
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
            ProviderError::from(PasslockError::Upstream(UpstreamError::Timeout)),
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
                    Err(PasslockError::Api {
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

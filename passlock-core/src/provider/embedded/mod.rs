//! The embedded provider: a Passlock-compatible passkey server inside the
//! app, on webauthn-rs.
//!
//! The provider answers the four browser-facing operations of the hosted
//! Passlock v2 service ([`EmbeddedProvider::handle`]) with the same bodies,
//! and proves ceremonies with the same single-use `code` and ES256
//! `id_token`. Every token, session token, ceremony state and code lives in
//! the [`CeremonyStore`] and is *taken* out of it before it is checked, so
//! each is used at most once even across instances.
//!
//! `optionsJSON` is the standard WebAuthn JSON form of the options (the
//! inner `PublicKeyCredentialCreationOptions` / `...RequestOptions`, binary
//! fields as base64url strings). A browser client runs
//! `navigator.credentials.create({publicKey: decode(optionsJSON.publicKey ?? optionsJSON)})`.
//! Registration asks for a discoverable credential (`residentKey:
//! "required"`, `requireResidentKey: true`) so usernameless sign-in works;
//! `userVerification` is `"required"` unless the config relaxes it.
//!
//! Failures answer `{"_tag":"@error/<Name>","message","code"}` (`code` is
//! the [`Rejection`] code, an addition to the hosted form):
//!
//! | case | status | tag |
//! | --- | --- | --- |
//! | body not a JSON object, field missing or of the wrong type | 400 | `BadRequest` |
//! | body over [`MAX_BODY_LEN`] | 413 | `BadRequest` |
//! | tenancy in the path is not this provider's | 404 | `InvalidTenancy` |
//! | token or session token unknown, used or expired | 403 | `InvalidChallenge` |
//! | WebAuthn response does not parse | 400 | `BadRequest` |
//! | ceremony refused (origin, RP id, UV, challenge, signature, counter) | 403 | `Forbidden` |
//! | credential id already registered | 409 | `Forbidden` |
//! | credential unknown (deleted) | 404 | `PasskeyNotFound` (`credentialId`, `rpId`) |
//! | a store failed | 503 | `Unavailable` |

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use webauthn_rs::WebauthnBuilder;
use webauthn_rs::prelude::{
    Credential, Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Url,
};
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AuthenticationState, COSEAlgorithm, CreationChallengeResponse,
    CredProtect, CredentialProtectionPolicy, RegistrationState, RequestAuthenticationExtensions,
    RequestChallengeResponse, RequestRegistrationExtensions, UserVerificationPolicy,
};

use crate::clock::{SharedClock, UnixMillis};
use crate::error::{ConfigError, ProviderError, Rejection, StoreError};
use crate::id::{AuthenticatorId, TenancyId, UserHandle};
use crate::principal::Principal;
use crate::proof::{MAX_CODE_LEN, Proof};
use crate::provider::jwt::{IdTokenVerifier, VerifierConfig};
use crate::provider::v2::{
    CeremonySuccess, ErrorBody, ErrorTag, ExtendedPrincipal, OptionsAnswer, PasskeyFlags,
    PrincipalMetadata, SuccessTag,
};
use crate::provider::{
    AuthenticationRequest, Authorization, Endpoint, Mediation, PasskeyDetails, PasskeyProvider,
    RegistrationRequest,
};
use crate::secret::{AuthenticationToken, Code, IdToken, RegistrationToken, SessionToken};

mod ceremony;
mod issuer;
#[deprecated(note = "the stores moved to `passlock_core::store`")]
pub mod store;

use ceremony::{
    AUTHENTICATION_TOKEN, AuthenticationGrant, AuthenticationRecord, CODE, CeremonyState, ID_TOKEN,
    REGISTRATION_TOKEN, RegistrationGrant, RegistrationRecord, SESSION, rejection_of, store_key,
    user_uuid,
};
use issuer::{Issuer, LocalJwks, jti_of_verified};

pub use issuer::SigningKey;
// The provider's stores live in `crate::store`; these names stay here too.
#[doc(no_inline)]
pub use crate::store::{
    CeremonyStore, CredentialStore, CredentialUse, MemoryCeremonyStore, MemoryCredentialStore,
    StoredCredential,
};

/// The prefix of a stored code record whose ceremony issued no id_token
/// (a record with a twin is the principal's JSON alone, `{...}`).
const LONE_CODE: &str = "lone:";

/// Largest accepted body of a browser-facing operation, in bytes.
pub const MAX_BODY_LEN: usize = 64 * 1024;

/// Longest accepted token or session token, in bytes.
const MAX_TOKEN_LEN: usize = 512;

/// When a verified ceremony's answer carries an ES256 `id_token` beside its
/// single-use `code` (see [`EmbeddedConfig::id_tokens`]).
///
/// Signing an id_token is the largest cost of an embedded ceremony after
/// the WebAuthn verification itself, and a deployment whose browser code
/// redeems the code (as `client.js` does) never reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IdTokens {
    /// Every verification answer carries an id_token, as the hosted
    /// service's do (`{_tag, principal, id_token, code}`). For browser code
    /// that redeems id_tokens without asking for them.
    Always,
    /// The default: a verification answer carries an id_token only when the
    /// request asks for one with `"idToken": true` beside `response` and
    /// `sessionToken` (an addition to the hosted wire); otherwise the answer
    /// is `{_tag, principal, code}`, no id_token is signed and the code
    /// needs no redemption record of its own.
    #[default]
    OnRequest,
}

/// Configuration of the embedded provider.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmbeddedConfig {
    /// The relying party id (a registrable domain, `localhost` in development).
    pub rp_id: String,
    /// The relying party name shown by authenticators.
    pub rp_name: String,
    /// The origins ceremonies may run on (`https://example.com`): the RP
    /// id's host or its subdomains.
    pub origins: Vec<String>,
    /// Origins on other domains that use this RP id too (WebAuthn Level 3
    /// related origin requests, e.g. `https://example.co.uk` for the RP id
    /// `example.com`). Ceremonies are accepted from them as from
    /// [`origins`](Self::origins), and
    /// [`EmbeddedProvider::well_known_webauthn`] lists them for browsers,
    /// which fetch `https://{rp_id}/.well-known/webauthn` before running a
    /// ceremony on such an origin. Default: none.
    pub related_origins: Vec<String>,
    /// The tenancy id (the `aud` of id_tokens). Default `"embedded"`.
    pub tenancy_id: TenancyId,
    /// The `iss` of id_tokens. Default `"passlock-embedded"`.
    pub issuer: String,
    /// Require user verification in the ceremony itself (default true): the
    /// browser is asked for it (`required`, else `preferred`) and a response
    /// without the UV flag is refused here. Principals carry the flag as the
    /// authenticator reported it either way, so with this off
    /// [`Policy::require_user_verification`](crate::config::Policy::require_user_verification)
    /// (on by default) still refuses unverified ceremonies at login,
    /// registration and step-up; turn both off to accept them.
    pub user_verification_required: bool,
    /// Lifetime of tokens, ceremonies and codes (default 5 minutes).
    pub ceremony_timeout: Duration,
    /// The clock every expiry reads (default the system clock).
    pub clock: SharedClock,
    /// The id_token signing key; `None` (the default) loads the key shared
    /// through the ceremony store, generating it on first use.
    pub signing_key: Option<SigningKey>,
    /// Accept sign-ins run in a cross-origin iframe: client data with
    /// `crossOrigin: true` or a `topOrigin` (default false: refused as
    /// `origin_mismatch`, another site cannot frame the ceremony). Turn it on
    /// only when the app is meant to be embedded by other sites. Registration
    /// in a cross-origin iframe stays refused either way (webauthn-rs 0.6
    /// refuses `crossOrigin: true` at registration).
    pub allow_cross_origin_iframes: bool,
    /// When verification answers carry an id_token (default
    /// [`IdTokens::OnRequest`]: when the request asks for one). The code is
    /// in every answer either way.
    pub id_tokens: IdTokens,
}

impl EmbeddedConfig {
    /// A configuration with defaults for the rest.
    pub fn new<I, S>(rp_id: impl Into<String>, rp_name: impl Into<String>, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            rp_id: rp_id.into(),
            rp_name: rp_name.into(),
            origins: origins.into_iter().map(Into::into).collect(),
            related_origins: Vec::new(),
            #[allow(clippy::expect_used)]
            tenancy_id: TenancyId::new("embedded").expect("static id is valid"),
            issuer: "passlock-embedded".to_owned(),
            user_verification_required: true,
            ceremony_timeout: Duration::from_secs(300),
            clock: crate::clock::system(),
            signing_key: None,
            allow_cross_origin_iframes: false,
            id_tokens: IdTokens::default(),
        }
    }

    /// Sets when verification answers carry an id_token (see [`IdTokens`]).
    #[must_use]
    pub fn with_id_tokens(mut self, id_tokens: IdTokens) -> Self {
        self.id_tokens = id_tokens;
        self
    }

    /// Accepts ceremonies from these origins on other domains too (see
    /// [`related_origins`](Self::related_origins)); each must be an origin
    /// with a domain name, `https` unless it is on `localhost`.
    #[must_use]
    pub fn with_related_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.related_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Uses `clock` for every expiry.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Signs id_tokens with `key` instead of the key shared through the
    /// ceremony store.
    #[must_use]
    pub fn with_signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// Sets the tenancy id (the `aud` of id_tokens).
    #[must_use]
    pub fn with_tenancy_id(mut self, tenancy_id: TenancyId) -> Self {
        self.tenancy_id = tenancy_id;
        self
    }

    /// Sets whether user verification is required.
    #[must_use]
    pub fn with_user_verification_required(mut self, required: bool) -> Self {
        self.user_verification_required = required;
        self
    }

    /// Accepts (`true`) or refuses (`false`, the default) ceremonies run in
    /// a cross-origin iframe (see
    /// [`allow_cross_origin_iframes`](Self::allow_cross_origin_iframes)).
    #[must_use]
    pub fn with_cross_origin_iframes(mut self, allow: bool) -> Self {
        self.allow_cross_origin_iframes = allow;
        self
    }

    /// Sets the lifetime of tokens, ceremonies and codes.
    #[must_use]
    pub fn with_ceremony_timeout(mut self, timeout: Duration) -> Self {
        self.ceremony_timeout = timeout;
        self
    }

    /// Checks the configuration; returns the parsed, normalised origins.
    fn validate(&self) -> Result<Vec<Url>, ConfigError> {
        let rp_id = crate::origin::parse_rp_id(&self.rp_id)?;
        if self.rp_name.trim().is_empty() {
            return Err(ConfigError::new("rp_name", "must not be empty"));
        }
        if self.issuer.trim().is_empty() {
            return Err(ConfigError::new("issuer", "must not be empty"));
        }
        if self.ceremony_timeout < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "ceremony_timeout",
                "must be at least one second",
            ));
        }
        if self.origins.is_empty() {
            return Err(ConfigError::new("origins", "at least one origin is needed"));
        }
        let mut urls = Vec::with_capacity(self.origins.len());
        for origin in &self.origins {
            let url = crate::origin::parse_origin(origin)?;
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            if url.domain().is_none() {
                return Err(ConfigError::new(
                    "origins",
                    format!("{origin:?} must have a domain name as host"),
                ));
            }
            if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
                return Err(ConfigError::new(
                    "origins",
                    format!("the host of {origin:?} is not {rp_id:?} or a subdomain of it"),
                ));
            }
            urls.push(url);
        }
        for origin in &self.related_origins {
            let url = crate::origin::parse_origin(origin)?;
            let Some(domain) = url.domain() else {
                return Err(ConfigError::new(
                    "related_origins",
                    format!("{origin:?} must have a domain name as host"),
                ));
            };
            if url.scheme() != "https" && domain != "localhost" {
                return Err(ConfigError::new(
                    "related_origins",
                    format!("{origin:?} must be https"),
                ));
            }
            urls.push(url);
        }
        Ok(urls)
    }
}

/// The path of the related origins document (WebAuthn Level 3), served at
/// the root of the RP id's host, not under the passlock prefix.
pub const WELL_KNOWN_WEBAUTHN: &str = "/.well-known/webauthn";

/// One of the Passlock v2 browser-facing operations the adapters mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrowserOp {
    /// `POST /v2/{tenancyId}/passkey/registration/options`
    RegistrationOptions,
    /// `POST /v2/{tenancyId}/passkey/registration/verification`
    RegistrationVerification,
    /// `POST /v2/{tenancyId}/passkey/authentication/options`
    AuthenticationOptions,
    /// `POST /v2/{tenancyId}/passkey/authentication/verification`
    AuthenticationVerification,
}

impl BrowserOp {
    /// Every operation, as the adapters mount them.
    pub const ALL: [Self; 4] = [
        Self::RegistrationOptions,
        Self::RegistrationVerification,
        Self::AuthenticationOptions,
        Self::AuthenticationVerification,
    ];

    /// The route under the passlock prefix, with a `{tenancy_id}` path
    /// parameter (the syntax of both axum and actix-web).
    pub fn route(self) -> &'static str {
        match self {
            Self::RegistrationOptions => "/v2/{tenancy_id}/passkey/registration/options",
            Self::RegistrationVerification => "/v2/{tenancy_id}/passkey/registration/verification",
            Self::AuthenticationOptions => "/v2/{tenancy_id}/passkey/authentication/options",
            Self::AuthenticationVerification => {
                "/v2/{tenancy_id}/passkey/authentication/verification"
            }
        }
    }
}

/// A framework-free HTTP answer of a browser-facing operation: the adapter
/// writes `status` and `body` as JSON, nothing else. `Debug` hides the body
/// (it holds session tokens, codes and id_tokens).
#[derive(Clone)]
#[non_exhaustive]
pub struct BrowserResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body (`@error/...` tagged on failure, as the hosted service).
    pub body: serde_json::Value,
}

impl std::fmt::Debug for BrowserResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserResponse")
            .field("status", &self.status)
            .field("body", &"[redacted]")
            .finish()
    }
}

/// Why a browser-facing operation failed.
#[derive(Debug)]
enum Failure {
    Tenancy,
    TooLarge,
    BadRequest(&'static str),
    PasskeyNotFound(String),
    Provider(ProviderError),
}

impl From<ProviderError> for Failure {
    fn from(e: ProviderError) -> Self {
        Self::Provider(e)
    }
}

impl From<Rejection> for Failure {
    fn from(r: Rejection) -> Self {
        Self::Provider(r.into())
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Provider(e.into())
    }
}

impl Failure {
    fn render(&self, rp_id: &str) -> BrowserResponse {
        let error = |status: u16, tag: ErrorTag, code: &str, message: String| {
            let mut body = ErrorBody::new(tag, message);
            body.code = Some(code.to_owned());
            (status, body)
        };
        let (status, body) = match self {
            Self::Tenancy => error(
                404,
                ErrorTag::InvalidTenancy,
                "invalid_tenancy",
                "unknown tenancy".to_owned(),
            ),
            Self::TooLarge => error(
                413,
                ErrorTag::BadRequest,
                "payload_too_large",
                "the request body is too large".to_owned(),
            ),
            Self::BadRequest(what) => error(
                400,
                ErrorTag::BadRequest,
                "bad_request",
                format!("malformed request: {what}"),
            ),
            Self::PasskeyNotFound(id) => {
                let (status, mut body) = error(
                    404,
                    ErrorTag::PasskeyNotFound,
                    Rejection::UnknownCredential.code(),
                    Rejection::UnknownCredential.to_string(),
                );
                body.credential_id = Some(id.clone());
                body.rp_id = Some(rp_id.to_owned());
                (status, body)
            }
            Self::Provider(e) => {
                let tag = match e {
                    ProviderError::Rejected(
                        Rejection::InvalidToken | Rejection::Expired | Rejection::Replayed,
                    ) => ErrorTag::InvalidChallenge,
                    ProviderError::Rejected(Rejection::Malformed)
                    | ProviderError::BadRequest(_) => ErrorTag::BadRequest,
                    ProviderError::Rejected(Rejection::UnknownCredential) => {
                        ErrorTag::PasskeyNotFound
                    }
                    ProviderError::Rejected(_) => ErrorTag::Forbidden,
                    ProviderError::Store(StoreError::Conflict) => ErrorTag::Forbidden,
                    _ => ErrorTag::Unavailable,
                };
                let status = match e {
                    ProviderError::Rejected(Rejection::UnknownCredential) => 404,
                    ProviderError::Rejected(Rejection::CredentialExists) => 409,
                    ProviderError::Rejected(Rejection::Malformed) => 400,
                    ProviderError::Rejected(_) => 403,
                    other => other.status().as_u16(),
                };
                if status >= 500 {
                    tracing::warn!(code = e.code(), "embedded passkey server failed: {e}");
                }
                error(status, tag, e.code(), e.to_string())
            }
        };
        // An `ErrorBody` always serialises.
        let body = serde_json::to_value(body).unwrap_or(Value::Null);
        BrowserResponse { status, body }
    }
}

/// The embedded passkey provider.
#[derive(Debug, Clone)]
pub struct EmbeddedProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: EmbeddedConfig,
    /// The ceremonies, built with webauthn-rs-core's public builders so the
    /// user verification policy is a parameter (see [`Inner::policy`]).
    webauthn: WebauthnCore,
    credentials: Arc<dyn CredentialStore>,
    ceremonies: Arc<dyn CeremonyStore>,
    issuer: Issuer,
    verifier: IdTokenVerifier,
    /// The sign-up ticket key, derived from the signing key.
    sealing: crate::ticket::SealingKey,
}

impl Inner {
    /// The user verification policy of every ceremony: `required` (as
    /// webauthn-rs's passkey ceremonies fix it) unless the config relaxes it
    /// to `preferred`. webauthn-rs-core enforces it when it verifies the
    /// response; the `user_verification_*` scenarios of the embedded suite
    /// fail if it stops doing so.
    fn policy(&self) -> UserVerificationPolicy {
        if self.config.user_verification_required {
            UserVerificationPolicy::Required
        } else {
            UserVerificationPolicy::Preferred
        }
    }

    /// Starts a passkey registration: webauthn-rs 0.6's
    /// `start_passkey_registration` with [`Self::policy`] as the policy.
    fn start_registration(
        &self,
        user: &UserHandle,
        username: &str,
        display_name: &str,
        exclude: Option<Vec<Vec<u8>>>,
    ) -> Result<(CreationChallengeResponse, RegistrationState), WebauthnError> {
        let extensions = RequestRegistrationExtensions {
            // As webauthn-rs asks: the authenticator should keep the
            // credential behind user verification, without failing when it
            // cannot (enforcing makes many authenticators fail).
            cred_protect: Some(CredProtect {
                credential_protection_policy: CredentialProtectionPolicy::UserVerificationRequired,
                enforce_credential_protection_policy: Some(false),
            }),
            uvm: Some(true),
            cred_props: Some(true),
            min_pin_length: None,
            hmac_create_secret: None,
        };
        let builder = self
            .webauthn
            .new_challenge_register_builder(user_uuid(user).as_bytes(), username, display_name)?
            .attestation(AttestationConveyancePreference::None)
            .credential_algorithms(COSEAlgorithm::secure_algs())
            .require_resident_key(false)
            .authenticator_attachment(None)
            .user_verification_policy(self.policy())
            .reject_synchronised_authenticators(false)
            .exclude_credentials(exclude)
            .hints(None)
            .extensions(Some(extensions));
        self.webauthn.generate_challenge_register(builder)
    }

    /// Starts an authentication: webauthn-rs 0.6's
    /// `start_passkey_authentication` (`credentials` given) or
    /// `start_discoverable_authentication` (`discoverable`, no credentials)
    /// with [`Self::policy`] as the policy.
    fn start_authentication(
        &self,
        credentials: Vec<Credential>,
        discoverable: bool,
    ) -> Result<(RequestChallengeResponse, AuthenticationState), WebauthnError> {
        let extensions = discoverable.then_some(RequestAuthenticationExtensions {
            appid: None,
            uvm: Some(true),
            hmac_get_secret: None,
        });
        let builder = self
            .webauthn
            .new_challenge_authenticate_builder(credentials, Some(self.policy()))?
            .extensions(extensions)
            // webauthn-rs allows a backup-eligible upgrade for known passkeys only.
            .allow_backup_eligible_upgrade(!discoverable)
            .hints(None);
        self.webauthn.generate_challenge_authenticate(builder)
    }
}

/// A string field of a JSON object body, bounded.
fn token_field<'a>(body: &'a Value, name: &'static str) -> Result<&'a str, Failure> {
    match body.get(name) {
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= MAX_TOKEN_LEN && !s.chars().any(|c| c.is_control()) =>
        {
            Ok(s)
        }
        Some(Value::String(_)) => Err(Rejection::InvalidToken.into()),
        _ => Err(Failure::BadRequest(name)),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, Failure> {
    if body.len() > MAX_BODY_LEN {
        return Err(Failure::TooLarge);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(Failure::BadRequest("expected a JSON object")),
    }
}

fn internal(what: &'static str) -> impl FnOnce(serde_json::Error) -> Failure {
    move |e| Failure::Provider(StoreError::backend(format!("{what}: {e}")).into())
}

fn encode_id(raw: &[u8]) -> Result<AuthenticatorId, Rejection> {
    AuthenticatorId::new(URL_SAFE_NO_PAD.encode(raw)).map_err(|_| Rejection::Malformed)
}

/// The AAGUID in the attested credential data of an attestation object
/// (CBOR `{fmt, attStmt, authData}`; `authData` is the RP id hash (32
/// bytes), flags (1), counter (4), then the AAGUID (16)), read after
/// webauthn-rs verified the registration. `None` when absent or all zeros.
fn aaguid_of(attestation_object: &[u8]) -> Option<String> {
    use serde_cbor_2::Value as Cbor;
    let Ok(Cbor::Map(map)) = serde_cbor_2::from_slice::<Cbor>(attestation_object) else {
        return None;
    };
    let Some(Cbor::Bytes(auth_data)) = map.get(&Cbor::Text("authData".to_owned())) else {
        return None;
    };
    let bytes: &[u8; 16] = auth_data.get(37..53)?.try_into().ok()?;
    crate::aaguid::format_aaguid(bytes)
}

/// One answer body of the v2 wire, as the JSON the adapter writes.
fn answer<T: serde::Serialize>(body: &T) -> Result<Value, Failure> {
    serde_json::to_value(body).map_err(internal("answer"))
}

/// The purpose the sign-up ticket key is derived for.
const TICKET_KEY_LABEL: &str = "passlock sign-up ticket v1";

impl EmbeddedProvider {
    /// Builds a provider over the given stores; validates the config.
    pub async fn new(
        config: EmbeddedConfig,
        credentials: Arc<dyn CredentialStore>,
        ceremonies: Arc<dyn CeremonyStore>,
    ) -> Result<Self, ConfigError> {
        let mut config = config;
        let urls = config.validate()?;
        let own = config.origins.len().min(urls.len());
        let mut all: Vec<String> = Vec::with_capacity(urls.len());
        let mut related = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let origin = url.origin().ascii_serialization();
            if !all.contains(&origin) {
                if i >= own {
                    related.push(origin.clone());
                }
                all.push(origin);
            }
        }
        config.related_origins = related;
        config.origins = all;
        let Some(first) = urls.first() else {
            return Err(ConfigError::new("origins", "at least one origin is needed"));
        };
        // webauthn-rs's own check of the RP id against the first origin
        // (`validate` checked every origin already).
        WebauthnBuilder::new(&config.rp_id, first)
            .map_err(|_| ConfigError::new("origins", "not valid for the rp_id"))?;
        // What `WebauthnBuilder::build` makes: exact origins, exact ports.
        let webauthn = WebauthnCore::new_unsafe_experts_only(
            &config.rp_name,
            &config.rp_id,
            urls,
            config.ceremony_timeout,
            Some(false),
            Some(false),
        );
        let key = match &config.signing_key {
            Some(key) => key.clone(),
            None => SigningKey::load_or_create(ceremonies.as_ref()).await?,
        };
        let issuer = Issuer::new(&key, config.issuer.clone(), config.tenancy_id.clone())?;
        let sealing = crate::ticket::SealingKey::derive(key.expose_pkcs8_der(), TICKET_KEY_LABEL);
        let verifier = IdTokenVerifier::new(
            VerifierConfig::embedded(config.issuer.clone(), config.tenancy_id.clone()),
            Arc::new(LocalJwks(issuer.jwks().clone())),
            config.clock.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                webauthn,
                credentials,
                ceremonies,
                issuer,
                verifier,
                sealing,
            }),
        })
    }

    /// A provider over in-memory stores.
    pub async fn in_memory(config: EmbeddedConfig) -> Result<Self, ConfigError> {
        let ceremonies = MemoryCeremonyStore::new().with_clock(config.clock.clone());
        Self::new(
            config,
            Arc::new(MemoryCredentialStore::new()),
            Arc::new(ceremonies),
        )
        .await
    }

    /// Every allowed origin (normalised: `scheme://host[:port]`), the
    /// related ones included.
    pub fn origins(&self) -> &[String] {
        &self.inner.config.origins
    }

    /// The related origins (on other domains), normalised.
    pub fn related_origins(&self) -> &[String] {
        &self.inner.config.related_origins
    }

    /// The related origins document served at [`WELL_KNOWN_WEBAUTHN`]:
    /// `{"origins": [...]}` with every allowed origin (the RP id's own
    /// first, then the related ones), as WebAuthn Level 3 related origin
    /// requests expect it.
    pub fn well_known_webauthn(&self) -> serde_json::Value {
        json!({ "origins": self.inner.config.origins })
    }

    /// The tenancy id.
    pub fn tenancy_id(&self) -> &TenancyId {
        &self.inner.config.tenancy_id
    }

    /// The relying party id.
    pub fn rp_id(&self) -> &str {
        &self.inner.config.rp_id
    }

    /// The credential store.
    pub fn credential_store(&self) -> &Arc<dyn CredentialStore> {
        &self.inner.credentials
    }

    /// Runs one browser-facing operation on a JSON body. Never panics; a
    /// failure is a 4xx/5xx `@error/<Name>` body as the hosted service's,
    /// with an extra `code` (the [`Rejection`] code) for logs and tests.
    pub async fn handle(&self, tenancy_id: &str, op: BrowserOp, body: &[u8]) -> BrowserResponse {
        match self.run(tenancy_id, op, body).await {
            Ok(body) => BrowserResponse { status: 200, body },
            Err(failure) => {
                tracing::info!(?op, "embedded passkey operation refused");
                failure.render(&self.inner.config.rp_id)
            }
        }
    }

    /// The JWKS document of the id_token signing key.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::to_value(self.inner.issuer.jwks()).unwrap_or_else(|_| json!({ "keys": [] }))
    }

    /// Exchanges a code for its principal, exactly in the hosted wire form.
    /// Single use: the code is taken out of the store first, then, when the
    /// ceremony issued an id_token too, the ceremony's redemption record
    /// (its id_token's `jti`, the principal id): a code whose twin id_token
    /// was redeemed is `replayed`.
    pub async fn exchange_code(&self, code: &Code) -> Result<ExtendedPrincipal, ProviderError> {
        let raw = code.expose_secret();
        if raw.is_empty() || raw.len() > MAX_CODE_LEN {
            return Err(Rejection::InvalidToken.into());
        }
        let stored = self
            .inner
            .ceremonies
            .take(&store_key(CODE, raw), self.now())
            .await?
            .ok_or(Rejection::InvalidToken)?;
        let (lone, json) = match stored.strip_prefix(LONE_CODE) {
            Some(json) => (true, json),
            None => (false, stored.as_str()),
        };
        let principal: ExtendedPrincipal = serde_json::from_str(json)
            .map_err(|e| StoreError::backend(format!("stored principal: {e}")))?;
        if !lone {
            // The twin id_token's record: gone when the id_token was redeemed.
            self.inner
                .ceremonies
                .take(&store_key(ID_TOKEN, &principal.id), self.now())
                .await?
                .ok_or(Rejection::Replayed)?;
        }
        Ok(principal)
    }

    fn now(&self) -> UnixMillis {
        self.inner.config.clock.now_millis()
    }

    fn expiry(&self) -> UnixMillis {
        let ms = i64::try_from(self.inner.config.ceremony_timeout.as_millis()).unwrap_or(i64::MAX);
        self.now().saturating_add(ms)
    }

    fn fresh_token() -> Result<String, StoreError> {
        let token = crate::secret::random_token(32);
        if token.is_empty() {
            Err(StoreError::backend("no randomness available"))
        } else {
            Ok(token)
        }
    }

    /// A fresh principal id (the form of a `jti`).
    fn fresh_id() -> Result<String, StoreError> {
        let id = crate::secret::random_token(16);
        if id.is_empty() {
            Err(StoreError::backend("no randomness available"))
        } else {
            Ok(id)
        }
    }

    async fn take_json<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        secret: &str,
    ) -> Result<T, Failure> {
        let raw = self
            .inner
            .ceremonies
            .take(&store_key(kind, secret), self.now())
            .await?
            .ok_or(Rejection::InvalidToken)?;
        serde_json::from_str(&raw).map_err(internal("stored ceremony record"))
    }

    async fn run(&self, tenancy_id: &str, op: BrowserOp, body: &[u8]) -> Result<Value, Failure> {
        if tenancy_id != self.inner.config.tenancy_id.as_str() {
            return Err(Failure::Tenancy);
        }
        let body = parse_body(body)?;
        match op {
            BrowserOp::RegistrationOptions => self.registration_options(&body).await,
            BrowserOp::RegistrationVerification => self.registration_verification(body).await,
            BrowserOp::AuthenticationOptions => self.authentication_options(&body).await,
            BrowserOp::AuthenticationVerification => self.authentication_verification(body).await,
        }
    }

    /// Stores a ceremony under a fresh session token; returns the token.
    async fn open_session(&self, state: &CeremonyState) -> Result<SessionToken, Failure> {
        let session = Self::fresh_token()?;
        let json = serde_json::to_string(state).map_err(internal("ceremony state"))?;
        self.inner
            .ceremonies
            .put(&store_key(SESSION, &session), &json, self.expiry())
            .await?;
        Ok(SessionToken::new(session))
    }

    /// Adjusts webauthn-rs options JSON to what this provider requires.
    fn finish_options(&self, mut options: Value, registration: bool) -> Value {
        let uv = if self.inner.config.user_verification_required {
            "required"
        } else {
            "preferred"
        };
        if let Some(obj) = options.as_object_mut() {
            if registration {
                let selection = obj
                    .entry("authenticatorSelection")
                    .or_insert_with(|| json!({}));
                if let Some(sel) = selection.as_object_mut() {
                    // Usernameless sign-in needs a discoverable credential.
                    sel.insert("residentKey".to_owned(), json!("required"));
                    sel.insert("requireResidentKey".to_owned(), json!(true));
                    sel.insert("userVerification".to_owned(), json!(uv));
                }
            } else {
                obj.insert("userVerification".to_owned(), json!(uv));
            }
        }
        options
    }

    async fn registration_options(&self, body: &Value) -> Result<Value, Failure> {
        let token = token_field(body, "registrationToken")?;
        let grant: RegistrationGrant = self.take_json(REGISTRATION_TOKEN, token).await?;
        let exclude: Vec<Vec<u8>> = grant
            .exclude
            .iter()
            .filter_map(|id| URL_SAFE_NO_PAD.decode(id).ok())
            .collect();
        let display = grant.display_name.as_deref().unwrap_or(&grant.username);
        let (ccr, rs) = self
            .inner
            .start_registration(
                &grant.user,
                &grant.username,
                display,
                (!exclude.is_empty()).then_some(exclude),
            )
            .map_err(|_| Failure::BadRequest("registration could not start"))?;
        let mut options = serde_json::to_value(&ccr).map_err(internal("options"))?;
        let options = self.finish_options(options["publicKey"].take(), true);
        let state = RegistrationRecord { rs };
        let session = self
            .open_session(&CeremonyState::Registration {
                user: grant.user,
                username: grant.username,
                passkey_name: grant.passkey_name,
                state,
            })
            .await?;
        let mut options = OptionsAnswer::registration(session, options);
        if grant.conditional {
            options.mediation = Some(Mediation::Conditional.as_str().to_owned());
        }
        answer(&options)
    }

    /// Refuses client data of a ceremony run in a cross-origin iframe
    /// (`crossOrigin: true`, or any `topOrigin`) unless the app opted in.
    /// Called after webauthn-rs verified the response, so the client data is
    /// the signed one; webauthn-rs 0.6 checks neither member at
    /// authentication.
    fn check_same_origin(&self, client_data_json: &[u8]) -> Result<(), Failure> {
        if self.inner.config.allow_cross_origin_iframes {
            return Ok(());
        }
        let data: serde_json::Map<String, Value> =
            serde_json::from_slice(client_data_json).map_err(|_| Rejection::Malformed)?;
        let cross_origin = match data.get("crossOrigin") {
            None | Some(Value::Null | Value::Bool(false)) => false,
            Some(_) => true,
        };
        let top_origin = data.get("topOrigin").is_some_and(|v| !v.is_null());
        if cross_origin || top_origin {
            return Err(Rejection::OriginMismatch.into());
        }
        Ok(())
    }

    async fn registration_verification(&self, mut body: Value) -> Result<Value, Failure> {
        // The token is checked first; the response is moved out, not cloned.
        token_field(&body, "sessionToken")?;
        let response = match body.get_mut("response") {
            Some(r @ Value::Object(_)) => r.take(),
            _ => return Err(Failure::BadRequest("response")),
        };
        let session = token_field(&body, "sessionToken")?;
        let with_id_token = self.wants_id_token(&body)?;
        let state: CeremonyState = self.take_json(SESSION, session).await?;
        let CeremonyState::Registration {
            user,
            username,
            passkey_name,
            state,
        } = state
        else {
            return Err(Rejection::InvalidToken.into());
        };
        let credential: RegisterPublicKeyCredential =
            serde_json::from_value(response).map_err(|_| Rejection::Malformed)?;
        if credential.id != URL_SAFE_NO_PAD.encode(&credential.raw_id)
            || credential.type_ != "public-key"
        {
            return Err(Rejection::Malformed.into());
        }
        let passkey = Passkey::from(
            self.inner
                .webauthn
                .register_credential(&credential, &state.rs, None)
                .map_err(|e| rejection_of(&e))?,
        );
        self.check_same_origin(&credential.response.client_data_json)?;
        let passkey_json = serde_json::to_string(&passkey).map_err(internal("passkey"))?;
        // The registered credential's own fields (webauthn-rs feature
        // `danger-credential-internals`), not its serialised form.
        let credential_data = Credential::from(passkey.clone());
        let user_verified = credential_data.user_verified;
        if self.inner.config.user_verification_required && !user_verified {
            return Err(Rejection::UserNotVerified.into());
        }
        let sign_count = credential_data.counter;
        let id = encode_id(passkey.cred_id())?;
        // The attested credential id must be the one the response names:
        // the passkey is stored and later looked up under it.
        if id.as_str() != credential.id {
            return Err(Rejection::Malformed.into());
        }
        let now = self.now();
        let record = StoredCredential::new(
            id.clone(),
            user.clone(),
            username,
            passkey_json,
            now,
            sign_count,
            credential_data.backup_eligible,
            credential_data.backup_state,
        )
        .with_name(passkey_name)
        .with_aaguid(aaguid_of(&credential.response.attestation_object));
        match self.inner.credentials.insert(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(Rejection::CredentialExists.into()),
            Err(e) => return Err(e.into()),
        }
        let (id_token, code) = self.issue(&user, &id, user_verified, with_id_token).await?;
        answer(&CeremonySuccess::new(true, id, user, id_token, code))
    }

    async fn authentication_options(&self, body: &Value) -> Result<Value, Failure> {
        let token = token_field(body, "authenticationToken")?;
        let grant: AuthenticationGrant = self.take_json(AUTHENTICATION_TOKEN, token).await?;
        let conditional = grant.conditional;
        let (rcr, ceremony) = match grant.allow {
            None => {
                let (rcr, ast) = self
                    .inner
                    .start_authentication(Vec::new(), true)
                    .map_err(|_| Failure::BadRequest("authentication could not start"))?;
                let state = AuthenticationRecord { ast };
                (rcr, CeremonyState::Discoverable { state })
            }
            Some(allow) => {
                let mut passkeys = Vec::with_capacity(allow.len());
                for id in &allow {
                    let Ok(id) = AuthenticatorId::new(id.as_str()) else {
                        continue;
                    };
                    if let Some(stored) = self.inner.credentials.get(&id).await? {
                        let passkey: Passkey = serde_json::from_str(&stored.passkey_json)
                            .map_err(internal("stored passkey"))?;
                        passkeys.push(Credential::from(passkey));
                    }
                }
                if passkeys.is_empty() {
                    return Err(Rejection::UnknownCredential.into());
                }
                let (rcr, ast) = self
                    .inner
                    .start_authentication(passkeys, false)
                    .map_err(|_| Failure::BadRequest("authentication could not start"))?;
                let state = AuthenticationRecord { ast };
                (rcr, CeremonyState::Restricted { allow, state })
            }
        };
        let mut options = serde_json::to_value(&rcr).map_err(internal("options"))?;
        let options = self.finish_options(options["publicKey"].take(), false);
        let session = self.open_session(&ceremony).await?;
        let mut options = OptionsAnswer::authentication(session, options);
        if conditional {
            options.mediation = Some(Mediation::Conditional.as_str().to_owned());
        }
        answer(&options)
    }

    async fn authentication_verification(&self, mut body: Value) -> Result<Value, Failure> {
        // The token is checked first; the response is moved out, not cloned.
        token_field(&body, "sessionToken")?;
        let response = match body.get_mut("response") {
            Some(r @ Value::Object(_)) => r.take(),
            _ => return Err(Failure::BadRequest("response")),
        };
        let session = token_field(&body, "sessionToken")?;
        let with_id_token = self.wants_id_token(&body)?;
        let ceremony: CeremonyState = self.take_json(SESSION, session).await?;
        let credential: PublicKeyCredential =
            serde_json::from_value(response).map_err(|_| Rejection::Malformed)?;
        let id = encode_id(credential.get_credential_id())?;
        if credential.id != id.as_str() || credential.type_ != "public-key" {
            return Err(Rejection::Malformed.into());
        }
        let Some(stored) = self.inner.credentials.get(&id).await? else {
            return Err(Failure::PasskeyNotFound(id.into_string()));
        };
        let mut passkey: Passkey =
            serde_json::from_str(&stored.passkey_json).map_err(internal("stored passkey"))?;
        let expected_handle = user_uuid(&stored.user_handle);
        let handle_matches = |required: bool| match credential.get_user_unique_id() {
            Some(h) => h == expected_handle.as_bytes().as_slice(),
            None => !required,
        };
        let result = match ceremony {
            CeremonyState::Discoverable { state } => {
                if !handle_matches(true) {
                    return Err(Rejection::CeremonyFailed.into());
                }
                self.inner.webauthn.authenticate_single_credential(
                    &credential,
                    &state.ast,
                    &Credential::from(passkey.clone()),
                )
            }
            CeremonyState::Restricted { allow, state } => {
                if !allow.iter().any(|a| a == id.as_str()) || !handle_matches(false) {
                    return Err(Rejection::CeremonyFailed.into());
                }
                self.inner
                    .webauthn
                    .authenticate_credential(&credential, &state.ast)
            }
            CeremonyState::Registration { .. } => return Err(Rejection::InvalidToken.into()),
        }
        .map_err(|e| rejection_of(&e))?;
        self.check_same_origin(&credential.response.client_data_json)?;
        if self.inner.config.user_verification_required && !result.user_verified() {
            return Err(Rejection::UserNotVerified.into());
        }
        let counter = result.counter();
        if (counter > 0 || stored.sign_count > 0) && counter <= stored.sign_count {
            return Err(Rejection::CounterRegressed.into());
        }
        passkey.update_credential(&result);
        let passkey_json = serde_json::to_string(&passkey).map_err(internal("passkey"))?;
        let usage = CredentialUse {
            passkey_json,
            previous_sign_count: stored.sign_count,
            sign_count: counter,
            backup_state: result.backup_state(),
            used_at: self.now(),
        };
        match self.inner.credentials.record_use(&id, &usage).await {
            Ok(()) => {}
            // A concurrent use of the same credential won: this assertion's
            // counter is no longer ahead of the stored one.
            Err(StoreError::Conflict) => return Err(Rejection::CounterRegressed.into()),
            Err(e) => return Err(e.into()),
        }
        let user = stored.user_handle;
        let (id_token, code) = self
            .issue(&user, &id, result.user_verified(), with_id_token)
            .await?;
        answer(&CeremonySuccess::new(false, id, user, id_token, code))
    }

    /// Whether this verification's answer carries an id_token: always, or
    /// when the body asks with `"idToken": true` (see [`IdTokens`]). Any
    /// other value of `idToken` is a bad request.
    fn wants_id_token(&self, body: &Value) -> Result<bool, Failure> {
        let asked = match body.get("idToken") {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => true,
            Some(_) => return Err(Failure::BadRequest("idToken")),
        };
        Ok(asked || self.inner.config.id_tokens == IdTokens::Always)
    }

    /// Issues the single-use code of a verified ceremony and, when
    /// `with_id_token`, its id_token.
    async fn issue(
        &self,
        user: &UserHandle,
        authenticator: &AuthenticatorId,
        user_verified: bool,
        with_id_token: bool,
    ) -> Result<(Option<IdToken>, Code), Failure> {
        let now = self.now();
        let expires_at = self.expiry();
        let code = Self::fresh_token()?;
        let issued = if with_id_token {
            Some(self.inner.issuer.issue(
                user,
                authenticator,
                user_verified,
                now.div_euclid(1000),
            )?)
        } else {
            None
        };
        let principal = ExtendedPrincipal {
            tag: SuccessTag::ExtendedPrincipal,
            // As on the hosted service: the principal id is the jti (a
            // fresh random id when no id_token is issued).
            id: match &issued {
                Some(issued) => issued.jti.clone(),
                None => Self::fresh_id()?,
            },
            user_id: user.clone(),
            authenticator_id: authenticator.clone(),
            authenticator_type: "passkey".to_owned(),
            passkey: Some(PasskeyFlags {
                user_verified,
                verified: true,
                platform_name: None,
            }),
            created_at: now,
            expires_at,
            metadata: PrincipalMetadata::default(),
        };
        let json = serde_json::to_string(&principal).map_err(internal("principal"))?;
        let Some(issued) = issued else {
            // No twin: the code alone proves the ceremony, and taking it out
            // of the store is its single use.
            self.inner
                .ceremonies
                .put(
                    &store_key(CODE, &code),
                    &format!("{LONE_CODE}{json}"),
                    expires_at,
                )
                .await?;
            return Ok((None, Code::new(code)));
        };
        // The ceremony's one redemption record, under the jti: whichever
        // proof takes it first wins, the other is then refused. It names
        // the code, so an id_token redeemed first also removes its code.
        self.inner
            .ceremonies
            .put(
                &store_key(ID_TOKEN, &issued.jti),
                &code,
                // Outlives `exp` by the verifier's leeway and then some, so
                // an id_token late within the leeway reads as expired, not
                // replayed; and outlives the code, which needs it.
                issued
                    .exp_secs
                    .saturating_add(60)
                    .saturating_mul(1000)
                    .max(expires_at),
            )
            .await?;
        self.inner
            .ceremonies
            .put(&store_key(CODE, &code), &json, expires_at)
            .await?;
        Ok((Some(issued.token), Code::new(code)))
    }
}

#[async_trait::async_trait]
impl PasskeyProvider for EmbeddedProvider {
    /// Derived from the id_token signing key, which instances sharing the
    /// ceremony store share.
    fn sealing_key(&self) -> Option<crate::ticket::SealingKey> {
        Some(self.inner.sealing.clone())
    }

    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn authorize_registration(
        &self,
        request: RegistrationRequest,
    ) -> Result<Authorization<RegistrationToken>, ProviderError> {
        if request.username.trim().is_empty() {
            return Err(ProviderError::BadRequest("the username must not be empty"));
        }
        let grant = RegistrationGrant {
            user: request.user,
            username: request.username,
            display_name: request.display_name,
            exclude: request
                .exclude
                .into_iter()
                .map(AuthenticatorId::into_string)
                .collect(),
            passkey_name: request.passkey_name,
            conditional: request.mediation == Mediation::Conditional,
        };
        let json = serde_json::to_string(&grant)
            .map_err(|e| StoreError::backend(format!("registration grant: {e}")))?;
        let token = Self::fresh_token()?;
        let expires_at = self.expiry();
        self.inner
            .ceremonies
            .put(&store_key(REGISTRATION_TOKEN, &token), &json, expires_at)
            .await?;
        Ok(Authorization::new(
            RegistrationToken::new(token),
            expires_at,
            self.inner.config.tenancy_id.clone(),
            Endpoint::Local,
        ))
    }

    async fn authorize_authentication(
        &self,
        request: AuthenticationRequest,
    ) -> Result<Authorization<AuthenticationToken>, ProviderError> {
        if request.allow.as_ref().is_some_and(Vec::is_empty) {
            return Err(ProviderError::BadRequest("the user has no passkeys"));
        }
        let grant = AuthenticationGrant {
            allow: request
                .allow
                .map(|ids| ids.into_iter().map(AuthenticatorId::into_string).collect()),
            conditional: request.mediation == Mediation::Conditional,
        };
        let json = serde_json::to_string(&grant)
            .map_err(|e| StoreError::backend(format!("authentication grant: {e}")))?;
        let token = Self::fresh_token()?;
        let expires_at = self.expiry();
        self.inner
            .ceremonies
            .put(&store_key(AUTHENTICATION_TOKEN, &token), &json, expires_at)
            .await?;
        Ok(Authorization::new(
            AuthenticationToken::new(token),
            expires_at,
            self.inner.config.tenancy_id.clone(),
            Endpoint::Local,
        ))
    }

    async fn verify(&self, proof: &Proof) -> Result<Principal, ProviderError> {
        match proof {
            Proof::Code(code) => Ok(self.exchange_code(code).await?.to_principal()),
            Proof::IdToken(token) => {
                let principal = self.inner.verifier.verify(token).await?;
                let jti = jti_of_verified(token).ok_or(Rejection::MissingClaim)?;
                // Single use across instances: the jti record is taken (it
                // is gone when the twin code was exchanged first)...
                let code = self
                    .inner
                    .ceremonies
                    .take(&store_key(ID_TOKEN, &jti), self.now())
                    .await?
                    .ok_or(Rejection::Replayed)?;
                // ...and the twin code goes with it.
                self.inner
                    .ceremonies
                    .take(&store_key(CODE, &code), self.now())
                    .await?;
                Ok(principal)
            }
            Proof::Nonce(_) => Err(Rejection::Malformed.into()),
        }
    }

    async fn delete_passkey(&self, authenticator: &AuthenticatorId) -> Result<(), ProviderError> {
        self.inner.credentials.delete(authenticator).await?;
        Ok(())
    }

    /// From the credential store: the name, AAGUID, backup flags (backup
    /// state as of the last use), last use and username of each passkey.
    async fn passkey_details(
        &self,
        authenticators: &[AuthenticatorId],
    ) -> Result<Vec<PasskeyDetails>, ProviderError> {
        let mut out = Vec::with_capacity(authenticators.len());
        for id in authenticators {
            if let Some(c) = self.inner.credentials.get(id).await? {
                let mut d = PasskeyDetails::new(c.credential_id);
                d.name = c.name;
                d.aaguid = c.aaguid;
                d.backup_eligible = c.backup_eligible;
                d.backed_up = c.backup_state;
                d.last_used_at = c.last_used_at;
                d.username = Some(c.username);
                out.push(d);
            }
        }
        Ok(out)
    }

    async fn rename_passkey(
        &self,
        authenticator: &AuthenticatorId,
        name: &str,
    ) -> Result<bool, ProviderError> {
        Ok(self.inner.credentials.rename(authenticator, name).await?)
    }

    fn embedded(&self) -> Option<&EmbeddedProvider> {
        Some(self)
    }
}

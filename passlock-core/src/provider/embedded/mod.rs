//! The embedded provider: a Passlock-compatible passkey server inside the
//! app, on webauthn-rs. SKELETON — the embedded-provider work replaces the
//! bodies marked SKELETON with the real implementation.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{ConfigError, ProviderError};
use crate::id::{AuthenticatorId, TenancyId};
use crate::principal::Principal;
use crate::proof::Proof;
use crate::provider::{AuthenticationRequest, Authorization, PasskeyProvider, RegistrationRequest};
use crate::secret::{AuthenticationToken, RegistrationToken};

pub mod store;

pub use store::{
    CeremonyStore, CredentialStore, CredentialUse, MemoryCeremonyStore, MemoryCredentialStore,
    StoredCredential,
};

/// Configuration of the embedded provider.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmbeddedConfig {
    /// The relying party id (a registrable domain, `localhost` in development).
    pub rp_id: String,
    /// The relying party name shown by authenticators.
    pub rp_name: String,
    /// The origins ceremonies may run on (`https://example.com`).
    pub origins: Vec<String>,
    /// The tenancy id (the `aud` of id_tokens). Default `"embedded"`.
    pub tenancy_id: TenancyId,
    /// The `iss` of id_tokens. Default `"passlock.dev"`-compatible `"passlock-embedded"`.
    pub issuer: String,
    /// Require user verification (default true).
    pub user_verification_required: bool,
    /// Lifetime of tokens, ceremonies and codes (default 5 minutes).
    pub ceremony_timeout: Duration,
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
            #[allow(clippy::expect_used)]
            tenancy_id: TenancyId::new("embedded").expect("static id is valid"),
            issuer: "passlock-embedded".to_owned(),
            user_verification_required: true,
            ceremony_timeout: Duration::from_secs(300),
        }
    }
}

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

/// A framework-free HTTP answer of a browser-facing operation: the adapter
/// writes `status` and `body` as JSON, nothing else.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BrowserResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body (`@error/...` tagged on failure, as the hosted service).
    pub body: serde_json::Value,
}

/// The embedded passkey provider.
#[derive(Debug, Clone)]
pub struct EmbeddedProvider {
    config: Arc<EmbeddedConfig>,
    credentials: Arc<dyn CredentialStore>,
    ceremonies: Arc<dyn CeremonyStore>,
}

impl EmbeddedProvider {
    /// Builds a provider over the given stores; validates the config.
    pub async fn new(
        config: EmbeddedConfig,
        credentials: Arc<dyn CredentialStore>,
        ceremonies: Arc<dyn CeremonyStore>,
    ) -> Result<Self, ConfigError> {
        // SKELETON
        Ok(Self {
            config: Arc::new(config),
            credentials,
            ceremonies,
        })
    }

    /// A provider over in-memory stores.
    pub async fn in_memory(config: EmbeddedConfig) -> Result<Self, ConfigError> {
        Self::new(
            config,
            Arc::new(MemoryCredentialStore::new()),
            Arc::new(MemoryCeremonyStore::new()),
        )
        .await
    }

    /// The allowed origins.
    pub fn origins(&self) -> &[String] {
        &self.config.origins
    }

    /// The tenancy id.
    pub fn tenancy_id(&self) -> &TenancyId {
        &self.config.tenancy_id
    }

    /// Runs one browser-facing operation on a JSON body.
    pub async fn handle(&self, tenancy_id: &str, op: BrowserOp, body: &[u8]) -> BrowserResponse {
        // SKELETON
        let _ = (tenancy_id, op, body, &self.credentials, &self.ceremonies);
        BrowserResponse {
            status: 501,
            body: serde_json::json!({}),
        }
    }

    /// The JWKS document of the id_token signing key.
    pub fn jwks(&self) -> serde_json::Value {
        // SKELETON
        serde_json::json!({ "keys": [] })
    }
}

#[async_trait::async_trait]
impl PasskeyProvider for EmbeddedProvider {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn authorize_registration(
        &self,
        _request: RegistrationRequest,
    ) -> Result<Authorization<RegistrationToken>, ProviderError> {
        Err(ProviderError::Unsupported("SKELETON"))
    }

    async fn authorize_authentication(
        &self,
        _request: AuthenticationRequest,
    ) -> Result<Authorization<AuthenticationToken>, ProviderError> {
        Err(ProviderError::Unsupported("SKELETON"))
    }

    async fn verify(&self, _proof: &Proof) -> Result<Principal, ProviderError> {
        Err(ProviderError::Unsupported("SKELETON"))
    }

    async fn delete_passkey(&self, _authenticator: &AuthenticatorId) -> Result<(), ProviderError> {
        Err(ProviderError::Unsupported("SKELETON"))
    }

    fn embedded(&self) -> Option<&EmbeddedProvider> {
        Some(self)
    }
}

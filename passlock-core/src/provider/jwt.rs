//! Local `id_token` verification: JWKS cache and refresh, algorithm
//! allow-list, claims, replay cache. SKELETON — the hosted work replaces the
//! bodies marked SKELETON with the real implementation; the public API below
//! is the contract other parts code against.

use std::sync::Arc;
use std::time::Duration;

pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::JwkSet;

use crate::clock::SharedClock;
use crate::error::{ProviderError, Rejection, StoreError};
use crate::id::TenancyId;
use crate::principal::Principal;
use crate::secret::IdToken;

/// Where the verifier gets its keys (the hosted JWKS over HTTP, or the
/// embedded provider's own key set).
#[async_trait::async_trait]
pub trait JwksSource: Send + Sync + std::fmt::Debug + 'static {
    /// Fetches the current key set.
    async fn fetch(&self) -> Result<JwkSet, ProviderError>;
}

/// Remembers the `jti` of verified id_tokens until they expire, making each
/// id_token single use.
#[async_trait::async_trait]
pub trait ReplayCache: Send + Sync + std::fmt::Debug + 'static {
    /// Records `jti` until `expires_at_secs`; `Ok(false)` when it was already
    /// recorded (a replay). Atomic across concurrent calls.
    async fn first_use(
        &self,
        jti: &str,
        expires_at_secs: i64,
        now_secs: i64,
    ) -> Result<bool, StoreError>;
}

/// An in-memory [`ReplayCache`].
#[derive(Debug, Default)]
pub struct MemoryReplayCache {
    seen: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl MemoryReplayCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl ReplayCache for MemoryReplayCache {
    async fn first_use(
        &self,
        jti: &str,
        expires_at_secs: i64,
        now_secs: i64,
    ) -> Result<bool, StoreError> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| StoreError::backend("replay cache lock poisoned"))?;
        seen.retain(|_, exp| *exp >= now_secs);
        Ok(seen.insert(jti.to_owned(), expires_at_secs).is_none())
    }
}

/// What an id_token must satisfy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// Required `iss` (exactly).
    pub issuer: String,
    /// Required `aud`: the tenancy id.
    pub audience: TenancyId,
    /// Allowed algorithms. `none` and HMAC are refused whatever this says.
    pub algorithms: Vec<Algorithm>,
    /// Clock leeway for `exp` and `iat` (default 5 s).
    pub leeway: Duration,
    /// Least time between two key-set refetches for unknown `kid`s (default 30 s).
    pub refetch_cooldown: Duration,
}

impl VerifierConfig {
    /// Hosted Passlock: `iss` = `passlock.dev`, RS256 and PS256/384/512.
    pub fn passlock(tenancy: TenancyId) -> Self {
        Self {
            issuer: "passlock.dev".to_owned(),
            audience: tenancy,
            algorithms: vec![
                Algorithm::RS256,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            leeway: Duration::from_secs(5),
            refetch_cooldown: Duration::from_secs(30),
        }
    }

    /// The embedded provider: the given issuer, ES256.
    pub fn embedded(issuer: impl Into<String>, tenancy: TenancyId) -> Self {
        Self {
            issuer: issuer.into(),
            audience: tenancy,
            algorithms: vec![Algorithm::ES256],
            leeway: Duration::from_secs(5),
            refetch_cooldown: Duration::from_secs(30),
        }
    }
}

/// Verifies id_tokens locally against a cached key set.
#[derive(Debug, Clone)]
pub struct IdTokenVerifier {
    config: Arc<VerifierConfig>,
    source: Arc<dyn JwksSource>,
    clock: SharedClock,
    replay: Option<Arc<dyn ReplayCache>>,
}

impl IdTokenVerifier {
    /// A verifier with an in-memory replay cache.
    pub fn new(config: VerifierConfig, source: Arc<dyn JwksSource>, clock: SharedClock) -> Self {
        Self {
            config: Arc::new(config),
            source,
            clock,
            replay: Some(Arc::new(MemoryReplayCache::new())),
        }
    }

    /// Uses a shared replay cache (several instances).
    #[must_use]
    pub fn with_replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Self {
        self.replay = Some(cache);
        self
    }

    /// Turns replay protection off: an id_token then verifies until it expires.
    #[must_use]
    pub fn danger_without_replay_cache(mut self) -> Self {
        self.replay = None;
        self
    }

    /// Verifies `token` and returns its principal.
    pub async fn verify(&self, token: &IdToken) -> Result<Principal, ProviderError> {
        // SKELETON
        let _ = (token, &self.config, &self.source, &self.clock, &self.replay);
        Err(Rejection::BadSignature.into())
    }
}

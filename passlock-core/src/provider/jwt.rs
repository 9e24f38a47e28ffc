//! Local `id_token` verification: JWKS cache and refresh, algorithm
//! allow-list, claims, replay cache.
//!
//! The order of checks matters and is fixed:
//!
//! 1. the token is three base64url parts and at most
//!    [`MAX_ID_TOKEN_LEN`](crate::proof::MAX_ID_TOKEN_LEN) bytes;
//! 2. the header's `alg` is checked *before any key is chosen*: `none` and
//!    every HMAC algorithm are refused whatever the configuration says, and
//!    the algorithm must be in the configured allow-list;
//! 3. the key is found by `kid` in the cached key set; an unknown `kid`
//!    triggers at most one shared refetch per cooldown (single flight); a
//!    JWK that names its own `alg` must name the header's;
//! 4. the signature is verified (jsonwebtoken, with its own time checks off);
//! 5. the claims are checked against the injected [`Clock`](crate::clock::Clock):
//!    `iss` exactly, `aud` exactly the tenancy (the string, or an array of
//!    that one value), `sub`, `exp`, `iat`, `a:id`, `jti`; a header or
//!    payload naming any key twice is refused as malformed;
//! 6. last, the `jti` is recorded in the replay cache: a second use fails.
//!
//! The replay cache is per process by default ([`MemoryReplayCache`]).
//! Several app instances must share one ([`IdTokenVerifier::with_replay_cache`]):
//! `SqliteReplayCache`, `PgReplayCache` (features `sqlite`, `postgres`) or
//! `RedisReplayCache` (feature `redis`); otherwise an id_token used on one
//! instance is accepted again by the others until it expires.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use serde_json::{Map, Value};

pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::JwkSet;

use crate::clock::SharedClock;
use crate::error::{ProviderError, Rejection, StoreError, UpstreamError};
use crate::id::{AuthenticatorId, TenancyId, UserHandle};
use crate::principal::Principal;
use crate::secret::IdToken;

/// Where the verifier gets its keys (the hosted JWKS over HTTP, or the
/// embedded provider's own key set).
#[async_trait::async_trait]
pub trait JwksSource: Send + Sync + std::fmt::Debug + 'static {
    /// Fetches the current key set.
    async fn fetch(&self) -> Result<JwkSet, ProviderError>;
}

// The replay cache moved to `crate::store`; the old paths keep working.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[doc(no_inline)]
pub use crate::store::RedisReplayCache;
#[doc(no_inline)]
pub use crate::store::{MemoryReplayCache, ReplayCache};

/// What an id_token must satisfy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// Required `iss` (exactly).
    pub issuer: String,
    /// Required `aud`: the tenancy id, exactly (the string, or an array of
    /// only that value; an array naming other audiences too is refused).
    pub audience: TenancyId,
    /// Allowed algorithms. `none` and HMAC are refused whatever this says.
    pub algorithms: Vec<Algorithm>,
    /// Clock leeway for `exp` and `iat` (default 5 s).
    pub leeway: Duration,
    /// Least time between two key-set refetches for unknown `kid`s (default 30 s).
    pub refetch_cooldown: Duration,
    /// How long a fetched key set is used before it is fetched again on the
    /// next verification (default 300 s). Keys removed from the JWKS stop
    /// verifying at most this long (plus the cooldown) after their removal.
    /// A failed refresh keeps the last good key set.
    pub key_max_age: Duration,
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
            key_max_age: Duration::from_secs(300),
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
            key_max_age: Duration::from_secs(300),
        }
    }

    /// Sets the leeway.
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets the refetch cooldown.
    #[must_use]
    pub fn with_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.refetch_cooldown = cooldown;
        self
    }

    /// Sets the key set's maximum age.
    #[must_use]
    pub fn with_key_max_age(mut self, max_age: Duration) -> Self {
        self.key_max_age = max_age;
        self
    }
}

struct CachedKey {
    key: DecodingKey,
    /// The JWK's own `alg`, when it names one.
    alg: Option<String>,
}

#[derive(Default)]
struct KeyState {
    keys: HashMap<String, Arc<CachedKey>>,
    /// When the current key set was fetched (ms).
    loaded_at: Option<i64>,
    /// When a fetch was last attempted (ms), successful or not.
    last_attempt: Option<i64>,
}

#[derive(Default)]
struct KeyCache {
    state: RwLock<KeyState>,
    /// Single flight: one refetch at a time; the others wait and re-read.
    refresh: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("KeyCache");
        if let Ok(s) = self.state.read() {
            let mut kids: Vec<&String> = s.keys.keys().collect();
            kids.sort();
            d.field("kids", &kids).field("loaded_at", &s.loaded_at);
        }
        d.finish_non_exhaustive()
    }
}

/// Verifies id_tokens locally against a cached key set.
#[derive(Debug, Clone)]
pub struct IdTokenVerifier {
    config: Arc<VerifierConfig>,
    source: Arc<dyn JwksSource>,
    clock: SharedClock,
    replay: Option<Arc<dyn ReplayCache>>,
    cache: Arc<KeyCache>,
}

enum Lookup {
    Found(Arc<CachedKey>),
    Missing,
}

impl IdTokenVerifier {
    /// A verifier with an in-memory replay cache.
    pub fn new(config: VerifierConfig, source: Arc<dyn JwksSource>, clock: SharedClock) -> Self {
        Self {
            config: Arc::new(config),
            source,
            clock,
            replay: Some(Arc::new(MemoryReplayCache::new())),
            cache: Arc::new(KeyCache::default()),
        }
    }

    /// Uses a shared replay cache. **Needed when several app instances
    /// verify id_tokens**: the default in-memory cache is per process, so an
    /// id_token used on one instance would verify again on another.
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

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// How many times the key set was fetched (for diagnostics and tests).
    pub fn key_fetches(&self) -> u64 {
        self.cache.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Verifies `token` and returns its principal.
    pub async fn verify(&self, token: &IdToken) -> Result<Principal, ProviderError> {
        let raw = token.expose_secret();
        if raw.is_empty() || raw.len() > crate::proof::MAX_ID_TOKEN_LEN {
            return Err(Rejection::Malformed.into());
        }
        let mut parts = raw.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed.into());
        };

        // 1. The header, read by us (once): jsonwebtoken cannot even parse
        // `none`, and keeps the last of duplicate keys.
        let header = parse_object(header_b64)?;
        let header = Header::of(&header)?;
        let algorithm = self.check_algorithm(header.alg)?;
        let kid = header.kid.ok_or(Rejection::UnknownKey)?;

        // 2. The key, by kid.
        let key = self.key_for(kid).await?;
        if key.alg.as_deref().is_some_and(|a| a != header.alg) {
            return Err(Rejection::DisallowedAlgorithm.into());
        }
        if key.key.family() != algorithm.family() {
            return Err(Rejection::DisallowedAlgorithm.into());
        }

        // 3. The signature over `header.payload`, by jsonwebtoken's crypto
        // (its `decode` would parse the header twice and the claims twice
        // more); time and claims are checked below with our clock.
        let signed = raw
            .get(..header_b64.len() + 1 + payload_b64.len())
            .ok_or(Rejection::Malformed)?;
        let valid =
            jsonwebtoken::crypto::verify(signature_b64, signed.as_bytes(), &key.key, algorithm)
                .map_err(|e| map_jwt_error(e.kind()))?;
        if !valid {
            return Err(Rejection::BadSignature.into());
        }

        // 4. The claims, parsed once from the signed payload; a payload in
        // which any object names a key twice is refused.
        let payload = parse_object(payload_b64)?;
        let claims = self.check_claims(&payload)?;

        // 5. Single use, once everything else has passed.
        if let Some(replay) = &self.replay {
            let jti = claims.jti.ok_or(Rejection::MissingClaim)?;
            let until = claims.exp.saturating_add(leeway_secs(&self.config));
            if !replay.first_use(jti, until, self.clock.now_secs()).await? {
                return Err(Rejection::Replayed.into());
            }
        }
        Ok(claims.principal)
    }

    /// Records that the ceremony whose id_token carries `jti` was redeemed
    /// another way (its code was exchanged), until `expires_at_secs`: the
    /// twin id_token is then refused as `replayed`. `Ok(false)` when `jti`
    /// was already recorded (the twin id_token, or the code, came first).
    /// Without a replay cache (see
    /// [`danger_without_replay_cache`](Self::danger_without_replay_cache))
    /// nothing is recorded and the answer is `Ok(true)`.
    pub async fn consume_jti(&self, jti: &str, expires_at_secs: i64) -> Result<bool, StoreError> {
        match &self.replay {
            Some(replay) => {
                replay
                    .first_use(jti, expires_at_secs, self.clock.now_secs())
                    .await
            }
            None => Ok(true),
        }
    }

    /// The leeway applied to `exp`, in seconds.
    pub fn leeway_secs(&self) -> i64 {
        leeway_secs(&self.config)
    }

    fn check_algorithm(&self, alg: &str) -> Result<Algorithm, Rejection> {
        if alg.eq_ignore_ascii_case("none") || alg.to_ascii_uppercase().starts_with("HS") {
            return Err(Rejection::DisallowedAlgorithm);
        }
        let algorithm: Algorithm = alg.parse().map_err(|_| Rejection::DisallowedAlgorithm)?;
        if algorithm.family() == jsonwebtoken::AlgorithmFamily::Hmac
            || !self.config.algorithms.contains(&algorithm)
        {
            return Err(Rejection::DisallowedAlgorithm);
        }
        Ok(algorithm)
    }

    fn check_claims<'c>(&self, c: &'c Map<String, Value>) -> Result<Claims<'c>, Rejection> {
        let now = self.clock.now_secs();
        let leeway = leeway_secs(&self.config);

        match c.get("iss") {
            None => return Err(Rejection::MissingClaim),
            Some(Value::String(iss)) if *iss == self.config.issuer => {}
            Some(Value::String(_)) => return Err(Rejection::WrongIssuer),
            Some(_) => return Err(Rejection::MissingClaim),
        }
        // Exactly this audience: the string, or an array holding only it. A
        // token that also names other audiences is valid for each of them,
        // so any of those relying parties could replay it here.
        let audience = self.config.audience.as_str();
        match c.get("aud") {
            None => return Err(Rejection::MissingClaim),
            Some(Value::String(aud)) if aud == audience => {}
            Some(Value::Array(auds)) if matches!(auds.as_slice(), [Value::String(aud)] if aud == audience) =>
                {}
            Some(Value::String(_) | Value::Array(_)) => return Err(Rejection::WrongAudience),
            Some(_) => return Err(Rejection::MissingClaim),
        }
        let exp = numeric_date(c, "exp")?;
        let iat = numeric_date(c, "iat")?;
        if exp.saturating_add(leeway) <= now {
            return Err(Rejection::Expired);
        }
        if iat > now.saturating_add(leeway) {
            return Err(Rejection::IssuedInFuture);
        }
        if c.contains_key("nbf") && numeric_date(c, "nbf")? > now.saturating_add(leeway) {
            return Err(Rejection::IssuedInFuture);
        }
        let sub = string_claim(c, "sub")?;
        let user_handle = UserHandle::new(sub).map_err(|_| Rejection::Malformed)?;
        let a_id = string_claim(c, "a:id")?;
        let authenticator_id = AuthenticatorId::new(a_id).map_err(|_| Rejection::Malformed)?;
        let user_verified = match c.get("pk:uv") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Rejection::Malformed),
        };
        let jti = match c.get("jti") {
            None => None,
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 512 => Some(s.as_str()),
            Some(_) => return Err(Rejection::Malformed),
        };
        Ok(Claims {
            principal: Principal::new(
                authenticator_id,
                user_handle,
                user_verified,
                iat.saturating_mul(1000),
            ),
            exp,
            jti,
        })
    }

    /// The key for `kid`: from the cache, or after at most one shared
    /// refetch per cooldown.
    async fn key_for(&self, kid: &str) -> Result<Arc<CachedKey>, ProviderError> {
        let now = self.clock.now_millis();
        let _flight = match self.lookup(kid, now) {
            (Lookup::Found(k), false) => return Ok(k),
            // A known key in a stale set: while another task refreshes, keep
            // serving it rather than queueing behind a slow JWKS.
            (Lookup::Found(k), true) => match self.cache.refresh.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(k),
            },
            (Lookup::Missing, _) => self.cache.refresh.lock().await,
        };
        // Someone else may have refreshed while we waited.
        let (found, stale) = self.lookup(kid, now);
        if let (Lookup::Found(k), false) = (&found, stale) {
            return Ok(k.clone());
        }
        let (may_fetch, ever_loaded) = {
            let s = self.read_state()?;
            let cooldown = millis(self.config.refetch_cooldown);
            (
                s.last_attempt
                    .is_none_or(|t| now.saturating_sub(t) >= cooldown),
                s.loaded_at.is_some(),
            )
        };
        let mut fetch_error = None;
        if may_fetch {
            self.write_state()?.last_attempt = Some(now);
            self.cache
                .fetches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match self.source.fetch().await {
                Ok(set) => {
                    let keys = usable_keys(&set);
                    if keys.is_empty() {
                        tracing::warn!("the JWKS has no usable key; keeping the last good key set");
                    } else {
                        let mut s = self.write_state()?;
                        s.keys = keys;
                        s.loaded_at = Some(now);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "JWKS fetch failed; keeping the last good key set");
                    fetch_error = Some(e);
                }
            }
        }
        match self.lookup(kid, now).0 {
            Lookup::Found(k) => Ok(k),
            Lookup::Missing => match fetch_error {
                Some(e) => Err(e),
                None if !ever_loaded && !may_fetch => Err(UpstreamError::Unavailable(None).into()),
                None => Err(Rejection::UnknownKey.into()),
            },
        }
    }

    /// The cached key for `kid`, and whether the key set is stale.
    fn lookup(&self, kid: &str, now: i64) -> (Lookup, bool) {
        let Ok(s) = self.cache.state.read() else {
            return (Lookup::Missing, true);
        };
        let stale = s
            .loaded_at
            .is_none_or(|t| now.saturating_sub(t) >= millis(self.config.key_max_age));
        match s.keys.get(kid) {
            Some(k) => (Lookup::Found(k.clone()), stale),
            None => (Lookup::Missing, stale),
        }
    }

    fn read_state(&self) -> Result<std::sync::RwLockReadGuard<'_, KeyState>, ProviderError> {
        self.cache
            .state
            .read()
            .map_err(|_| StoreError::backend("key cache lock poisoned").into())
    }

    fn write_state(&self) -> Result<std::sync::RwLockWriteGuard<'_, KeyState>, ProviderError> {
        self.cache
            .state
            .write()
            .map_err(|_| StoreError::backend("key cache lock poisoned").into())
    }
}

struct Claims<'c> {
    principal: Principal,
    exp: i64,
    jti: Option<&'c str>,
}

/// The JOSE header members the verifier reads.
struct Header<'h> {
    alg: &'h str,
    kid: Option<&'h str>,
}

impl<'h> Header<'h> {
    /// `alg` (a string) and `kid` (a string, absent or null); any `crit`
    /// is refused, since no critical extension is understood (RFC 7515
    /// 4.1.11).
    fn of(header: &'h Map<String, Value>) -> Result<Self, Rejection> {
        if header.contains_key("crit") {
            return Err(Rejection::Malformed);
        }
        let Some(Value::String(alg)) = header.get("alg") else {
            return Err(Rejection::Malformed);
        };
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(Rejection::Malformed),
        };
        Ok(Self { alg, kid })
    }
}

/// Parses a base64url JSON object part of a JWS in one pass, refusing it
/// when any object in it, at any depth, names a key twice (`serde_json`
/// and jsonwebtoken keep the last value, another parser may keep the
/// first: two readers of one token must not see two claims sets).
fn parse_object(b64: &str) -> Result<Map<String, Value>, Rejection> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| Rejection::Malformed)?;
    match serde_json::from_slice::<UniqueValue>(&bytes) {
        Ok(UniqueValue(Value::Object(map))) => Ok(map),
        _ => Err(Rejection::Malformed),
    }
}

/// A JSON value whose objects all have distinct keys; deserialising one
/// fails on the first duplicate.
struct UniqueValue(Value);

impl<'de> serde::Deserialize<'de> for UniqueValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueValueVisitor)
    }
}

struct UniqueValueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueValueVisitor {
    type Value = UniqueValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON without duplicate object keys")
    }

    fn visit_bool<E>(self, b: bool) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Number(n.into())))
    }

    fn visit_u64<E>(self, n: u64) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Number(n.into())))
    }

    fn visit_f64<E>(self, n: f64) -> Result<UniqueValue, E> {
        Ok(UniqueValue(
            serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E>(self, s: &str) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::String(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::String(s)))
    }

    fn visit_unit<E>(self) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Null))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueValue, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(UniqueValue(Value::Array(items)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueValue, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom("duplicate key"));
            }
            let UniqueValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(UniqueValue(Value::Object(out)))
    }
}

fn map_jwt_error(kind: &ErrorKind) -> Rejection {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => Rejection::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => Rejection::DisallowedAlgorithm,
        _ => Rejection::Malformed,
    }
}

fn string_claim<'a>(c: &'a Map<String, Value>, name: &str) -> Result<&'a str, Rejection> {
    match c.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(Rejection::MissingClaim),
    }
}

/// A NumericDate (seconds); fractional seconds are truncated. A missing
/// claim or one of another type is `MissingClaim`.
fn numeric_date(c: &Map<String, Value>, name: &str) -> Result<i64, Rejection> {
    match c.get(name) {
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else {
                match n.as_f64() {
                    // The range check keeps the cast exact enough and in range.
                    Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(f.trunc() as i64),
                    _ => Err(Rejection::Malformed),
                }
            }
        }
        _ => Err(Rejection::MissingClaim),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn leeway_secs(config: &VerifierConfig) -> i64 {
    i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX)
}

/// The verification keys of a key set: public keys with a `kid`, not marked
/// for encryption, that jsonwebtoken can load. Symmetric keys are dropped.
fn usable_keys(set: &JwkSet) -> HashMap<String, Arc<CachedKey>> {
    let mut out = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        if !matches!(
            jwk.algorithm,
            AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_)
        ) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let alg = jwk.common.key_algorithm.map(|a| a.to_string());
        out.insert(kid, Arc::new(CachedKey { key, alg }));
    }
    out
}

/// Parses a JWKS document leniently: a key that does not parse is skipped
/// (and logged) instead of failing the whole set.
pub fn parse_jwks(bytes: &[u8]) -> Result<JwkSet, UpstreamError> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<Value>,
    }
    let raw: RawSet = serde_json::from_slice(bytes).map_err(|e| UpstreamError::BadResponse {
        reason: "unexpected JWKS body",
        status: None,
        source: Some(Box::new(e)),
    })?;
    let mut keys = Vec::with_capacity(raw.keys.len());
    for k in raw.keys {
        match serde_json::from_value::<Jwk>(k) {
            Ok(jwk) => keys.push(jwk),
            Err(e) => tracing::warn!(error = %e, "skipping a JWK that does not parse"),
        }
    }
    Ok(JwkSet { keys })
}

/// A [`JwksSource`] fetching `{endpoint}/.well-known/jwks.json` through the
/// [`HttpClient`](crate::http::HttpClient) (retried once on a connect failure).
#[cfg(feature = "hosted")]
#[cfg_attr(docsrs, doc(cfg(feature = "hosted")))]
#[derive(Debug, Clone)]
pub struct HttpJwks {
    http: crate::http::HttpClient,
    url: String,
}

#[cfg(feature = "hosted")]
impl HttpJwks {
    /// The JWKS of the service at `endpoint` (e.g. `https://api.passlock.dev`).
    pub fn new(http: crate::http::HttpClient, endpoint: &str) -> Self {
        Self {
            http,
            url: format!("{}/.well-known/jwks.json", endpoint.trim_end_matches('/')),
        }
    }

    /// The URL fetched.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(feature = "hosted")]
#[async_trait::async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet, ProviderError> {
        let resp = self
            .http
            .get(&self.url, None, crate::http::Retry::OnConnectFailure)
            .await?;
        if !resp.is_success() {
            return Err(UpstreamError::BadResponse {
                reason: "JWKS answered an error",
                status: Some(resp.status),
                source: None,
            }
            .into());
        }
        if !resp.is_json() {
            return Err(UpstreamError::BadResponse {
                reason: "wrong content type",
                status: Some(resp.status),
                source: None,
            }
            .into());
        }
        Ok(parse_jwks(&resp.body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_jwks_skips_broken_keys() {
        let doc = br#"{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"},{"kty":"nope"},42]}"#;
        let set = parse_jwks(doc).unwrap();
        // `42` is not a JWK at all and is skipped; the RSA key stays.
        assert_eq!(set.keys.len(), 2);
        assert!(set.find("a").is_some());
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"<html>").is_err());
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let parsed = parse_object(&b64(r#"{"a":1,"b":[{"c":1}],"d":{"e":null}}"#)).unwrap();
        assert_eq!(
            Value::Object(parsed),
            serde_json::json!({"a":1,"b":[{"c":1}],"d":{"e":null}})
        );
        for dup in [
            r#"{"sub":"a","sub":"b"}"#,
            r#"{"x":[{"k":1,"k":2}]}"#,
            r#"{"x":{"y":{"k":1,"k":2}}}"#,
            // An escaped spelling of the same key is the same key.
            r#"{"sub":"a","s\u0075b":"b"}"#,
        ] {
            assert_eq!(parse_object(&b64(dup)), Err(Rejection::Malformed), "{dup}");
        }
        assert_eq!(parse_object(&b64("{")), Err(Rejection::Malformed));
        // A part that is JSON but not an object is refused too.
        assert_eq!(parse_object(&b64("[1]")), Err(Rejection::Malformed));
    }

    #[test]
    fn header_parse_refuses_garbage_and_crit() {
        let header =
            |s: &str| parse_object(s).and_then(|m| Header::of(&m).map(|h| h.alg.to_owned()));
        assert!(header("!!!").is_err());
        assert!(header(&b64("[]")).is_err());
        assert!(header(&b64(r#"{"alg":"RS256","crit":["x"]}"#)).is_err());
        assert!(header(&b64(r#"{"kid":"k"}"#)).is_err());
        assert!(header(&b64(r#"{"alg":"RS256","kid":7}"#)).is_err());
        assert_eq!(header(&b64(r#"{"alg":"none"}"#)), Ok("none".to_owned()));
        assert!(header(&b64(r#"{"alg":"RS256","typ":"JWT","typ":"x"}"#)).is_err());
    }

    #[test]
    fn numeric_dates() {
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"a":1,"b":"1","c":1.9,"d":1e300}"#).unwrap();
        assert_eq!(numeric_date(&m, "a"), Ok(1));
        assert_eq!(numeric_date(&m, "b"), Err(Rejection::MissingClaim));
        assert_eq!(numeric_date(&m, "c"), Ok(1));
        assert_eq!(numeric_date(&m, "d"), Err(Rejection::Malformed));
        assert_eq!(numeric_date(&m, "z"), Err(Rejection::MissingClaim));
    }
}

//! [`Passlock`], the one configured value both adapters are built from, its
//! builder, [`Policy`] and the app's [`SignUpHook`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::audit::{AuditEvent, AuditHook, AuditKind, Metrics, NoAudit, NoMetrics};
use crate::clock::{self, SharedClock};
use crate::error::{BoxError, ConfigError, FlowError};
use crate::provider::PasskeyProvider;
use crate::store::{AuthenticatorStore, UserId};
use crate::store::{MemoryRevocationStore, RevocationStore};
use crate::throttle::{ClientInfo, MemoryThrottle, Throttle, ThrottlePolicy};
use crate::ticket::SealingKey;

/// Largest request body the adapters accept, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Time windows and limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Policy {
    /// Adding or deleting a passkey needs a passkey verification within this
    /// many seconds (default 300).
    pub manage_step_up_secs: u64,
    /// How long a registration authorized in a session stays valid (default 300 s).
    pub pending_registration_secs: u64,
    /// Longest accepted username, in characters (default 64).
    pub max_username_chars: usize,
    /// Users who have a passkey must use it as a second factor (default
    /// `true`). It only changes what
    /// [`flow::first_factor`](crate::flow::first_factor) (the app recording
    /// its own sign-in, e.g. a password) records:
    ///
    /// | switch | user has a passkey | recorded state |
    /// |---|---|---|
    /// | on  | yes | partial ([`AuthState::first_factor`](crate::AuthState::first_factor)): only `FirstFactorUser` accepts it until a passkey step-up by the same user completes it |
    /// | on  | no  | complete by the app's factor ([`AuthState::app_factor`](crate::AuthState::app_factor)): `SignedInUser` accepts it |
    /// | off | either | complete by the app's factor: "password *or* passkey" |
    ///
    /// Unchanged either way: a passkey login (`POST {prefix}/login`) is a
    /// full sign-in; `PasskeyUser` and `StepUp` need a passkey verified in
    /// this session (an app-factor-only session is never a `PasskeyUser`);
    /// a step-up by the session's user adds the passkey to any state. The
    /// decision is taken when the first factor is recorded: changing the
    /// switch does not alter existing sessions.
    pub passkey_required_as_second_factor: bool,
    /// Limits on failed proofs (see [`crate::throttle`]).
    pub throttle: ThrottlePolicy,
    /// Refuse a proof whose ceremony did not verify the user (biometrics or
    /// a PIN; the principal's
    /// [`user_verified`](crate::Principal::user_verified)), with `401
    /// user_not_verified`, at login, registration and step-up, whatever the
    /// provider (default `true`). A passkey used with presence alone is then
    /// never a sign-in, nothing is linked, and at registration the new
    /// passkey is deleted from the provider. Passage Passkey Flex does not
    /// report the flag: see
    /// [`PassageConfig::with_service_enforced_user_verification`](crate::provider::passage::PassageConfig::with_service_enforced_user_verification).
    pub require_user_verification: bool,
    /// Absolute session lifetime (default 30 days, 2 592 000 s): a session
    /// signed in longer ago than this is signed out when it is next loaded,
    /// whatever the session store's own expiry (which renews on activity).
    /// A logout's revocation marker is kept as long (see
    /// [`crate::revocation`]). Must be at least 1.
    pub session_lifetime_secs: u64,
    /// Idle session lifetime (default `None`: off): a signed-in session
    /// not used for this many seconds is signed out when it is next
    /// loaded, whatever the session store's own expiry. Each load by an
    /// extractor or route counts as use; the session records its last use
    /// and writes it back only once it is older than a quarter of this
    /// window, so most guarded requests write nothing. Must be at least 4
    /// when set.
    pub idle_lifetime_secs: Option<u64>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            manage_step_up_secs: 300,
            pending_registration_secs: 300,
            max_username_chars: 64,
            passkey_required_as_second_factor: true,
            throttle: ThrottlePolicy::default(),
            require_user_verification: true,
            session_lifetime_secs: 30 * 24 * 3600,
            idle_lifetime_secs: None,
        }
    }
}

/// Why the app's sign-up hook did not create a user.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignUpError {
    /// Refused for a reason the user may read (e.g. "this username is taken").
    #[error("{0}")]
    Refused(String),
    /// The app's storage failed.
    #[error("the user store is unavailable")]
    Backend(#[source] BoxError),
}

/// Creates users at sign-up. Without one, sign-up is refused.
///
/// `username_available` runs first, when the sign-up is authorized
/// (`POST {prefix}/registration/authorize`): a taken name is refused with
/// `409 username_taken` before any ceremony starts, so the user's device
/// never saves a passkey for an account that will not exist. Apps should
/// implement it (the default says every name is free, and a taken name is
/// then refused only by `create_user`, after the device saved a passkey).
///
/// `create_user` runs after the passkey was verified and before it is linked
/// (a name taken in between is refused there, so it stays the final check);
/// if linking then fails, `abandon_user` is called so that nothing is left
/// half made.
///
/// `username_of` names a signed-in user to their authenticator when they
/// add a passkey, so that the password manager shows their username and
/// not the app's numeric id.
#[async_trait::async_trait]
pub trait SignUpHook<U: UserId>: Send + Sync + fmt::Debug + 'static {
    /// Creates a user named `username` and returns its id.
    async fn create_user(&self, username: &str) -> Result<U, SignUpError>;

    /// Removes a user `create_user` made, when the sign-up could not finish.
    async fn abandon_user(&self, user: &U) -> Result<(), SignUpError>;

    /// Whether `username` (trimmed, checked for length and control
    /// characters) is free for a new account. `Ok(false)` refuses the
    /// sign-up with `409 username_taken` and nothing is stored. Default:
    /// `Ok(true)`.
    async fn username_available(&self, username: &str) -> Result<bool, SignUpError> {
        let _ = username;
        Ok(true)
    }

    /// The username of an existing user, shown by the authenticator as the
    /// passkey's `user.name` (and `user.displayName`) when the user adds a
    /// passkey. Default `Ok(None)`: the username stored with the user's
    /// other passkeys (embedded provider), else the user id as text.
    async fn username_of(&self, user: &U) -> Result<Option<String>, SignUpError> {
        let _ = user;
        Ok(None)
    }
}

struct Inner<U: UserId> {
    provider: Arc<dyn PasskeyProvider>,
    store: Arc<dyn AuthenticatorStore<U>>,
    sign_up: Option<Arc<dyn SignUpHook<U>>>,
    policy: Policy,
    clock: SharedClock,
    prefix: String,
    origins: Vec<String>,
    throttle: Option<Arc<dyn Throttle>>,
    proxy_header: Option<String>,
    sealing_key: SealingKey,
    proxy_hops: usize,
    /// Set once the shared-bucket warning was logged.
    warned_unknown_client: AtomicBool,
    revocations: Arc<dyn RevocationStore>,
    audit: Arc<dyn AuditHook<U>>,
    metrics: Arc<dyn Metrics>,
    recovery: Option<crate::recovery::RecoverySetup<U>>,
}

/// The configured passkey sign-in of an app: a provider, an
/// [`AuthenticatorStore`], an optional [`SignUpHook`], a [`Policy`] and the
/// allowed origins. Cheap to clone.
pub struct Passlock<U: UserId> {
    inner: Arc<Inner<U>>,
}

impl<U: UserId> Clone for Passlock<U> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<U: UserId> fmt::Debug for Passlock<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passlock")
            .field("provider", &self.inner.provider.name())
            .field("prefix", &self.inner.prefix)
            .field("origins", &self.inner.origins)
            .field("sign_up", &self.inner.sign_up.is_some())
            .finish_non_exhaustive()
    }
}

impl<U: UserId> Passlock<U> {
    /// Starts a builder. The provider and the store are required, so they are
    /// arguments: a `Passlock` without them cannot be built.
    pub fn builder(
        provider: Arc<dyn PasskeyProvider>,
        store: Arc<dyn AuthenticatorStore<U>>,
    ) -> PasslockBuilder<U> {
        PasslockBuilder {
            provider,
            store,
            sign_up: None,
            policy: Policy::default(),
            clock: clock::system(),
            prefix: "/passkey".to_owned(),
            origins: Vec::new(),
            throttle: Some(Throttling::Default),
            proxy_header: None,
            sealing_key: None,
            proxy_hops: 1,
            revocations: None,
            audit: None,
            metrics: None,
            recovery: None,
        }
    }

    /// The provider.
    pub fn provider(&self) -> &dyn PasskeyProvider {
        self.inner.provider.as_ref()
    }

    /// The authenticator store.
    pub fn store(&self) -> &dyn AuthenticatorStore<U> {
        self.inner.store.as_ref()
    }

    /// The sign-up hook.
    pub fn sign_up(&self) -> Option<&dyn SignUpHook<U>> {
        self.inner.sign_up.as_deref()
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Now, epoch milliseconds, from the configured clock.
    pub fn now(&self) -> i64 {
        self.inner.clock.now_millis()
    }

    /// The path prefix the routes are mounted under (default `/passkey`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The allowed origins (`scheme://host[:port]`).
    pub fn origins(&self) -> &[String] {
        &self.inner.origins
    }

    /// Whether session cookies must be `Secure`: true unless every allowed
    /// origin is `http://localhost[:port]`.
    pub fn secure_cookies(&self) -> bool {
        !self.inner.origins.iter().all(|o| is_http_localhost(o))
    }

    /// Where logouts leave their revocation markers (see
    /// [`crate::revocation`]).
    pub fn revocations(&self) -> &dyn RevocationStore {
        self.inner.revocations.as_ref()
    }

    /// The absolute session lifetime in milliseconds
    /// ([`Policy::session_lifetime_secs`]).
    pub fn session_lifetime_millis(&self) -> i64 {
        i64::try_from(self.inner.policy.session_lifetime_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000)
    }

    /// The idle lifetime in milliseconds ([`Policy::idle_lifetime_secs`]).
    pub fn idle_lifetime_millis(&self) -> Option<i64> {
        self.inner.policy.idle_lifetime_secs.map(|s| {
            i64::try_from(s)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000)
        })
    }

    /// The app's audit hook (see [`crate::audit`]).
    pub fn audit_hook(&self) -> &dyn AuditHook<U> {
        self.inner.audit.as_ref()
    }

    /// The app's counters (see [`crate::audit::Metrics`]).
    pub fn metrics(&self) -> &dyn Metrics {
        self.inner.metrics.as_ref()
    }

    /// Logs, counts and hands to the audit hook one event of `kind` for
    /// `user`, now (see [`crate::audit`]); never fails.
    pub(crate) async fn emit(
        &self,
        kind: AuditKind,
        user: U,
        authenticator_id: Option<crate::id::AuthenticatorId>,
        client: Option<IpAddr>,
    ) {
        let event = AuditEvent {
            kind,
            user,
            authenticator_id,
            provider: self.inner.provider.name(),
            client,
            at: self.now(),
        };
        crate::audit::emit(self.audit_hook(), self.metrics(), event).await;
    }

    /// Whether account recovery by email code is on (see
    /// [`PasslockBuilder::recovery`]); the adapters mount the
    /// `{prefix}/recovery/*` routes only then.
    pub fn recovery_enabled(&self) -> bool {
        self.inner.recovery.is_some()
    }

    pub(crate) fn recovery(&self) -> Option<&crate::recovery::RecoverySetup<U>> {
        self.inner.recovery.as_ref()
    }

    /// The throttle of failed proofs, unless disabled with
    /// [`PasslockBuilder::danger_disable_throttling`].
    pub fn throttle(&self) -> Option<&dyn Throttle> {
        self.inner.throttle.as_deref()
    }

    /// The key sealing [sign-up tickets](crate::SealingKey).
    pub fn sealing_key(&self) -> &SealingKey {
        &self.inner.sealing_key
    }

    /// What the adapters know of a request's client: `peer` is the socket's
    /// address; `header` looks a request header up by name.
    ///
    /// With a [trusted proxy header](PasslockBuilder::trusted_proxy_header)
    /// configured, the address [`trusted_proxy_hops`](PasslockBuilder::trusted_proxy_hops)
    /// entries from the right of its comma-separated list wins (each proxy
    /// appends the address it saw); otherwise the header is ignored, as a
    /// client could forge it. When that entry is missing (fewer entries than
    /// hops) or is not an IP address, the peer address is used: never an
    /// entry further left, which the client chose.
    ///
    /// When no address is known at all, the request counts in the shared
    /// [`UNKNOWN_ADDRESS`](crate::throttle::UNKNOWN_ADDRESS) bucket, and the
    /// first such request logs a warning (once per `Passlock`).
    pub fn client_info<'a>(
        &self,
        peer: Option<IpAddr>,
        header: impl FnOnce(&str) -> Option<&'a str>,
    ) -> ClientInfo {
        let forwarded = self
            .inner
            .proxy_header
            .as_deref()
            .and_then(header)
            .and_then(|value| forwarded_address(value, self.inner.proxy_hops));
        let address = forwarded.or(peer);
        if address.is_none()
            && self.inner.throttle.is_some()
            && !self
                .inner
                .warned_unknown_client
                .swap(true, Ordering::Relaxed)
        {
            tracing::error!(
                "passlock: a request came without a client address, so throttling falls back \
                 to ONE bucket shared by every such client (one attacker can then lock out \
                 all of them). Serve axum with \
                 `into_make_service_with_connect_info::<SocketAddr>()`, or configure \
                 `PasslockBuilder::trusted_proxy_header` behind a proxy that always sets it. \
                 This is logged once."
            );
        }
        ClientInfo::new(address)
    }

    /// Refuses a state-changing request whose `Origin` header is missing or
    /// not an allowed origin (login CSRF).
    pub fn check_origin(&self, origin: Option<&str>) -> Result<(), FlowError> {
        match origin {
            Some(o) if self.inner.origins.iter().any(|allowed| allowed == o) => Ok(()),
            _ => Err(FlowError::ForbiddenOrigin),
        }
    }
}

/// Refuses a POST whose `Content-Type` is not `application/json`
/// (parameters such as `charset` are allowed).
pub(crate) fn check_json_content_type(content_type: Option<&str>) -> Result<(), FlowError> {
    let essence = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    match essence {
        Some(e) if e.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(FlowError::UnsupportedMediaType),
    }
}

/// Parses a JSON body, mapping any failure to a `400` with a fixed message.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FlowError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(FlowError::PayloadTooLarge);
    }
    serde_json::from_slice(bytes).map_err(|e| {
        FlowError::BadRequest(match e.classify() {
            serde_json::error::Category::Data => "unexpected JSON fields or types".to_owned(),
            _ => "the body is not valid JSON".to_owned(),
        })
    })
}

/// The body of a passlock route after its `Content-Type` check, the same in
/// both adapters: `None` for an empty body sent without a `Content-Type`
/// when `allow_empty` (bodiless authorize and logout requests); any other
/// body must be declared JSON (`415`).
pub fn check_json_body<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
    allow_empty: bool,
) -> Result<Option<&'a [u8]>, FlowError> {
    if allow_empty && content_type.is_none() && body.is_empty() {
        return Ok(None);
    }
    check_json_content_type(content_type)?;
    Ok(Some(body))
}

/// A JSON body, or `T::default()` for a missing or blank one.
pub fn parse_optional_json<T: serde::de::DeserializeOwned + Default>(
    body: Option<&[u8]>,
) -> Result<T, FlowError> {
    match body {
        Some(bytes) if !bytes.iter().all(u8::is_ascii_whitespace) => parse_json(bytes),
        _ => Ok(T::default()),
    }
}

/// A `{"code"}`, `{"id_token"}` or `{"nonce"}` body; a `400` otherwise.
pub fn parse_proof(body: &[u8]) -> Result<crate::Proof, FlowError> {
    crate::Proof::from_json(body).map_err(|e| FlowError::BadRequest(e.to_string()))
}

/// The entry `hops` from the right of a forwarding header's list (`hops`
/// is at least 1), as an IP address (`203.0.113.7`, `2001:db8::1`, or with
/// a port: `203.0.113.7:443`, `[2001:db8::1]:443`); `None` when the list is
/// shorter or that entry is not an address.
fn forwarded_address(value: &str, hops: usize) -> Option<IpAddr> {
    let entry = value.rsplit(',').nth(hops.checked_sub(1)?)?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

fn is_http_localhost(origin: &str) -> bool {
    origin == "http://localhost"
        || origin
            .strip_prefix("http://localhost:")
            .is_some_and(|p| p.parse::<u16>().is_ok())
}

/// Builds a [`Passlock`]; see [`Passlock::builder`].
#[must_use]
pub struct PasslockBuilder<U: UserId> {
    provider: Arc<dyn PasskeyProvider>,
    store: Arc<dyn AuthenticatorStore<U>>,
    sign_up: Option<Arc<dyn SignUpHook<U>>>,
    policy: Policy,
    clock: SharedClock,
    prefix: String,
    origins: Vec<String>,
    throttle: Option<Throttling>,
    proxy_header: Option<String>,
    sealing_key: Option<SealingKey>,
    proxy_hops: usize,
    revocations: Option<Arc<dyn RevocationStore>>,
    audit: Option<Arc<dyn AuditHook<U>>>,
    metrics: Option<Arc<dyn Metrics>>,
    recovery: Option<crate::recovery::Recovery<U>>,
}

enum Throttling {
    Default,
    Custom(Arc<dyn Throttle>),
}

impl<U: UserId> fmt::Debug for PasslockBuilder<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasslockBuilder")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl<U: UserId> PasslockBuilder<U> {
    /// Enables sign-up through `hook`.
    pub fn sign_up(mut self, hook: Arc<dyn SignUpHook<U>>) -> Self {
        self.sign_up = Some(hook);
        self
    }

    /// Sets the policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the clock (tests move a `ManualClock`).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the path prefix the adapter routes are mounted under (`/auth`,
    /// `/api/passkey`: ASCII letters, digits and `/ - _ . ~`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the allowed origins (`https://example.com`). With the embedded
    /// provider they default to its origins.
    pub fn origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the default [`MemoryThrottle`] (per process), for example
    /// with a [`RedisThrottle`](crate::throttle::RedisThrottle) shared by
    /// several instances. Limits are in [`Policy::throttle`].
    pub fn throttle(mut self, throttle: Arc<dyn Throttle>) -> Self {
        self.throttle = Some(Throttling::Custom(throttle));
        self
    }

    /// Replaces the default [`MemoryRevocationStore`] (per process) that
    /// holds logout markers. Several app instances serving one site must
    /// share one store, on SQL (`SqliteRevocationStore`,
    /// `PgRevocationStore`) or Redis
    /// ([`RedisRevocationStore`](crate::store::RedisRevocationStore)),
    /// or a logout on one instance does not end the session on the others.
    pub fn revocations(mut self, store: Arc<dyn RevocationStore>) -> Self {
        self.revocations = Some(store);
        self
    }

    /// Sets the hook that receives every audited event (sign-up, login,
    /// step-up, first factor, passkey added or removed, sessions revoked;
    /// see [`crate::audit`]). By default events are only logged.
    pub fn audit(mut self, hook: Arc<dyn AuditHook<U>>) -> Self {
        self.audit = Some(hook);
        self
    }

    /// Sets the counters passlock reports to (see
    /// [`audit::Metrics`](crate::audit::Metrics) for the names). By
    /// default nothing is counted.
    pub fn metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Turns on account recovery by a one-time email code (off by
    /// default): `POST {prefix}/recovery/start` and `/recovery/verify`,
    /// then one passkey enrollment. Read [`crate::recovery`] and the
    /// README's security notes first: whoever controls a user's mailbox can
    /// then enroll a passkey for them.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use passlock_core::{Passlock, StoreError, store::MemoryAuthenticatorStore};
    /// # use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
    /// use passlock_core::recovery::{EmailAddress, LogMailer, Recovery, RecoveryDirectory};
    ///
    /// #[derive(Debug)]
    /// struct Users;
    ///
    /// #[passlock_core::async_trait]
    /// impl RecoveryDirectory<i64> for Users {
    ///     async fn user_by_email(&self, email: &EmailAddress) -> Result<Option<i64>, StoreError> {
    ///         Ok((email.as_str() == "alice@example.com").then_some(1))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let provider = EmbeddedProvider::in_memory(
    /// #     EmbeddedConfig::new("localhost", "Demo", ["http://localhost:3000"])).await?;
    /// let passlock: Passlock<i64> =
    ///     Passlock::builder(Arc::new(provider), Arc::new(MemoryAuthenticatorStore::new()))
    ///         // LogMailer is for development: use your mail service.
    ///         .recovery(Recovery::new(Arc::new(LogMailer), Arc::new(Users)))
    ///         .build()?;
    /// assert!(passlock.recovery_enabled());
    /// # Ok(()) }
    /// ```
    pub fn recovery(mut self, recovery: crate::recovery::Recovery<U>) -> Self {
        self.recovery = Some(recovery);
        self
    }

    /// Turns the throttling of failed proofs off (brute force of codes and
    /// tokens is then limited only by their entropy and lifetime). Only for
    /// load tests or an app that throttles in front of passlock.
    pub fn danger_disable_throttling(mut self) -> Self {
        self.throttle = None;
        self
    }

    /// Takes the client address for throttling from this request header
    /// (e.g. `x-forwarded-for`) instead of the peer address: by default its
    /// last entry, see [`trusted_proxy_hops`](Self::trusted_proxy_hops).
    /// Set it only behind a proxy that always sets the header, or clients
    /// can pick their own address.
    pub fn trusted_proxy_header(mut self, name: impl Into<String>) -> Self {
        self.proxy_header = Some(name.into().to_ascii_lowercase());
        self
    }

    /// Sets the key that seals anonymous [sign-up tickets](crate::SealingKey).
    /// By default it is derived from the provider's secret (the embedded
    /// provider's signing key, the hosted providers' API key), which every
    /// instance of the app shares; set one when the provider has none.
    pub fn sealing_key(mut self, key: SealingKey) -> Self {
        self.sealing_key = Some(key);
        self
    }

    /// How many proxies in front of the app append to the
    /// [trusted proxy header](Self::trusted_proxy_header) (default 1). The
    /// client address is the entry `hops` from the right: 1 behind a single
    /// load balancer (the rightmost entry, appended by it), 2 behind a CDN
    /// plus a load balancer (the CDN appended the client, the load balancer
    /// the CDN). Entries further left were sent by the client and are never
    /// used; when the header has fewer entries than `hops`, or that entry is
    /// not an address, the peer address is used instead. `build` refuses 0,
    /// and any value other than 1 without a trusted proxy header.
    pub fn trusted_proxy_hops(mut self, hops: usize) -> Self {
        self.proxy_hops = hops;
        self
    }

    /// Validates and builds.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use passlock_core::{Passlock, store::MemoryAuthenticatorStore};
    /// # use passlock_core::provider::embedded::{EmbeddedProvider, EmbeddedConfig};
    /// # async fn demo() {
    /// let provider = EmbeddedProvider::in_memory(
    ///     EmbeddedConfig::new("localhost", "Demo", ["http://localhost:3000"]),
    /// ).await.unwrap();
    /// let err = Passlock::<i64>::builder(Arc::new(provider), Arc::new(MemoryAuthenticatorStore::new()))
    ///     .prefix("passkey") // no leading slash
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field, "prefix");
    /// # }
    /// ```
    pub fn build(self) -> Result<Passlock<U>, ConfigError> {
        if !self.prefix.starts_with('/') || self.prefix.ends_with('/') || self.prefix.contains("//")
        {
            return Err(ConfigError::new(
                "prefix",
                "must start with '/' and not end with '/'",
            ));
        }
        // The prefix is also the `Path` of the sign-up ticket cookie: only
        // characters that need no escaping in a URL path or a cookie.
        let path_safe =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~');
        if !self.prefix.chars().all(path_safe) {
            return Err(ConfigError::new(
                "prefix",
                "may hold only ASCII letters, digits and / - _ . ~",
            ));
        }
        #[allow(unused_mut)]
        let mut origins = self.origins;
        #[cfg(feature = "embedded")]
        if origins.is_empty()
            && let Some(e) = self.provider.embedded()
        {
            origins = e.origins().to_vec();
        }
        if origins.is_empty() {
            return Err(ConfigError::new(
                "origins",
                "at least one allowed origin is required",
            ));
        }
        let origins = origins
            .iter()
            .map(|o| crate::origin::normalize_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        if self.policy.max_username_chars == 0 {
            return Err(ConfigError::new(
                "policy.max_username_chars",
                "must be at least 1",
            ));
        }
        if self.proxy_hops == 0 {
            return Err(ConfigError::new("trusted_proxy_hops", "must be at least 1"));
        }
        if self.proxy_hops != 1 && self.proxy_header.is_none() {
            return Err(ConfigError::new(
                "trusted_proxy_hops",
                "needs a trusted_proxy_header to count hops in",
            ));
        }
        if self.policy.session_lifetime_secs == 0 {
            return Err(ConfigError::new(
                "policy.session_lifetime_secs",
                "must be at least 1",
            ));
        }
        if self.policy.idle_lifetime_secs.is_some_and(|s| s < 4) {
            return Err(ConfigError::new(
                "policy.idle_lifetime_secs",
                "must be at least 4 when set",
            ));
        }
        let limits = [
            self.policy.throttle.per_address,
            self.policy.throttle.per_subject,
            self.policy.throttle.ceremonies_per_address,
        ];
        if limits
            .iter()
            .any(|l| l.max_failures == 0 || l.window.is_zero())
        {
            return Err(ConfigError::new(
                "policy.throttle",
                "limits need at least one failure and a non-zero window",
            ));
        }
        let throttle: Option<Arc<dyn Throttle>> = match self.throttle {
            Some(Throttling::Default) => Some(Arc::new(MemoryThrottle::new(self.clock.clone()))),
            Some(Throttling::Custom(t)) => Some(t),
            None => None,
        };
        let sealing_key = match self.sealing_key.or_else(|| self.provider.sealing_key()) {
            Some(key) => key,
            None => SealingKey::random()?,
        };
        let revocations = self
            .revocations
            .unwrap_or_else(|| Arc::new(MemoryRevocationStore::new(self.clock.clone())));
        let recovery = self
            .recovery
            .map(|r| {
                let key = sealing_key.subkey(crate::recovery::RECOVERY_KEY_LABEL);
                crate::recovery::RecoverySetup::new(r, key, self.clock.clone())
            })
            .transpose()?;
        Ok(Passlock {
            inner: Arc::new(Inner {
                provider: self.provider,
                store: self.store,
                sign_up: self.sign_up,
                policy: self.policy,
                clock: self.clock,
                prefix: self.prefix,
                origins,
                throttle,
                proxy_header: self.proxy_header,
                sealing_key,
                proxy_hops: self.proxy_hops,
                warned_unknown_client: AtomicBool::new(false),
                revocations,
                audit: self.audit.unwrap_or_else(|| Arc::new(NoAudit)),
                metrics: self.metrics.unwrap_or_else(|| Arc::new(NoMetrics)),
                recovery,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_check() {
        assert!(check_json_content_type(Some("application/json")).is_ok());
        assert!(check_json_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_json_content_type(Some("text/plain")).is_err());
        assert!(check_json_content_type(None).is_err());
    }

    #[test]
    fn forwarded_address_takes_the_entry_hops_from_the_right() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let cases: &[(&str, usize, Option<IpAddr>)] = &[
            ("203.0.113.7", 1, ip("203.0.113.7")),
            ("198.51.100.1, 203.0.113.7", 1, ip("203.0.113.7")),
            // CDN + load balancer: the client is second from the right.
            ("198.51.100.1, 203.0.113.7", 2, ip("198.51.100.1")),
            // A client-chosen entry left of the trusted ones is ignored.
            ("6.6.6.6, 198.51.100.1, 203.0.113.7", 2, ip("198.51.100.1")),
            // Fewer entries than hops: no address (the peer is used).
            ("203.0.113.7", 2, None),
            ("", 1, None),
            // An entry that is not an address: none (never one to its left).
            ("198.51.100.1, unknown", 1, None),
            ("198.51.100.1, ", 1, None),
            (" 2001:db8::1 ", 1, ip("2001:db8::1")),
            ("203.0.113.7:443", 1, ip("203.0.113.7")),
            ("[2001:db8::1]:443", 1, ip("2001:db8::1")),
            ("203.0.113.7", 0, None),
        ];
        for (value, hops, want) in cases {
            assert_eq!(
                forwarded_address(value, *hops),
                *want,
                "{value:?} at {hops}"
            );
        }
    }

    #[test]
    fn origins_are_normalized_and_checked() {
        use crate::origin::normalize_origin;
        assert_eq!(
            normalize_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        assert_eq!(
            normalize_origin("https://Example.com").unwrap(),
            "https://example.com"
        );
        assert!(normalize_origin("http://example.com").is_err());
        assert!(normalize_origin("https://example.com/path").is_err());
        assert!(is_http_localhost("http://localhost:3000"));
        assert!(!is_http_localhost("http://localhost.evil.com"));
    }

    #[cfg(feature = "embedded")]
    #[tokio::test]
    async fn prefixes_are_paths_safe_for_urls_and_cookies() {
        use crate::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
        use crate::store::MemoryAuthenticatorStore;
        let provider = Arc::new(
            EmbeddedProvider::in_memory(EmbeddedConfig::new(
                "localhost",
                "t",
                ["http://localhost:3000"],
            ))
            .await
            .unwrap(),
        );
        let build = |prefix: &str| {
            Passlock::<i64>::builder(provider.clone(), Arc::new(MemoryAuthenticatorStore::new()))
                .prefix(prefix)
                .build()
        };
        for bad in [
            "passkey",
            "/passkey/",
            "/a//b",
            "/pass key",
            "/p\u{e4}ss",
            "/a;b",
            "/a,b",
        ] {
            assert_eq!(build(bad).unwrap_err().field, "prefix", "{bad:?}");
        }
        assert_eq!(
            build("/api/pass-key_v1.0~x").unwrap().prefix(),
            "/api/pass-key_v1.0~x"
        );
    }
}

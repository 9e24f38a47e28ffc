//! The flows behind every route, as plain async functions over the traits.
//! Adapters parse the request, call one of these with the session's
//! [`SessionRecord`], and apply the returned [`SessionChange`].
//!
//! Every flow fails closed: on any error the session is left as it was,
//! nothing is linked and nothing is issued.

use tracing::Instrument as _;

use crate::audit::{AuditKind, RevocationReason, metric_names};
use crate::config::{Passlock, SignUpError};
use crate::error::{FlowError, ProviderError};
use crate::id::{AuthenticatorId, UserHandle};
use crate::proof::Proof;
use crate::provider::{
    AuthenticationRequest, Authorization, Endpoint, Mediation, PasskeyDetails, RegistrationRequest,
};
use crate::state::{AuthState, Outcome, PendingRegistration, SessionChange, SessionRecord};
use crate::store::UserId;
use crate::throttle::{ClientInfo, Guard, ThrottleKey};
use crate::ticket;
use crate::wire::{AuthorizeAnswer, AuthorizeRegistrationBody, PasskeyView, SessionView, SignedIn};

pub use crate::recovery::flow::{
    RecoveryStartBody, RecoveryStarted, RecoveryVerified, RecoveryVerifyBody, recovery_start,
    recovery_verify,
};

/// What an authentication is authorized for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Purpose {
    /// Sign in (usernameless, any discoverable passkey).
    Login,
    /// Re-verify the signed-in user with one of their passkeys.
    StepUp,
}

/// Body of `POST {prefix}/authentication/authorize` (optional).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeAuthenticationBody {
    /// Defaults to `step_up` when a session exists, else `login`.
    #[serde(default)]
    pub purpose: Option<Purpose>,
    /// `conditional` for a sign-in offered in the username field's
    /// autofill (a login only); default `optional`.
    #[serde(default)]
    pub mediation: Option<Mediation>,
}

fn endpoint_of<U: UserId, T>(pl: &Passlock<U>, a: &Authorization<T>) -> String {
    match &a.endpoint {
        Endpoint::Remote(url) => url.trim_end_matches('/').to_owned(),
        Endpoint::Local => pl.prefix().to_owned(),
        #[allow(unreachable_patterns)]
        _ => pl.prefix().to_owned(),
    }
}

/// The span of one flow (see [`crate::audit`]): `flow`, `provider` and
/// `client` now, `user` and `authenticator` once known. No secret.
fn flow_span<U: UserId>(
    pl: &Passlock<U>,
    flow: &'static str,
    client: Option<&ClientInfo>,
) -> tracing::Span {
    let client = client.and_then(|c| c.address).map(|a| a.to_string());
    tracing::info_span!(
        "passlock",
        flow,
        provider = pl.provider().name(),
        client = client.as_deref(),
        user = tracing::field::Empty,
        authenticator = tracing::field::Empty,
    )
}

/// Records who the flow is about in the current flow span.
pub(crate) fn record_subject(
    user: &impl std::fmt::Display,
    authenticator: Option<&AuthenticatorId>,
) {
    let span = tracing::Span::current();
    span.record("user", tracing::field::display(user));
    if let Some(aid) = authenticator {
        span.record("authenticator", aid.as_str());
    }
}

/// Runs `run` in `flow`'s span and counts its failure
/// ([`metric_names::FAILURES`]), logged at debug with the error's code.
pub(crate) async fn observed<T, U: UserId>(
    pl: &Passlock<U>,
    flow: &'static str,
    client: Option<&ClientInfo>,
    run: impl Future<Output = Result<T, FlowError>>,
) -> Result<T, FlowError> {
    let span = flow_span(pl, flow, client);
    let result = run.instrument(span.clone()).await;
    if let Err(e) = &result {
        let code = e.code();
        span.in_scope(|| tracing::debug!(error = code, "passlock: the {flow} failed"));
        pl.metrics()
            .increment(metric_names::FAILURES, &[("flow", flow), ("error", code)]);
    }
    result
}

fn check_username(raw: &str, max_chars: usize) -> Result<String, FlowError> {
    check_line(raw, max_chars).map_err(FlowError::InvalidUsername)
}

/// `raw` trimmed, when it is 1 to `max_chars` characters without control
/// characters; else why not. The one rule for usernames and passkey names.
fn check_line(raw: &str, max_chars: usize) -> Result<String, &'static str> {
    let line = raw.trim();
    if line.is_empty() {
        return Err("it is empty");
    }
    if line.chars().count() > max_chars {
        return Err("it is too long");
    }
    if line.chars().any(char::is_control) {
        return Err("it contains control characters");
    }
    Ok(line.to_owned())
}

/// A user who verified a passkey in this session, or `NotSignedIn` (a
/// partial or app-factor-only state is not enough).
pub fn require_user<U: UserId>(record: &SessionRecord<U>) -> Result<&AuthState<U>, FlowError> {
    match &record.auth {
        Some(a) if a.has_passkey() => Ok(a),
        _ => Err(FlowError::NotSignedIn),
    }
}

/// Anyone whose first factor is recorded in this session: a partial (MFA
/// pending) state as well as a complete one; `NotSignedIn` otherwise. An MFA
/// page uses it to know who is half signed in.
pub fn require_first_factor<U: UserId>(
    record: &SessionRecord<U>,
) -> Result<&AuthState<U>, FlowError> {
    record.auth.as_ref().ok_or(FlowError::NotSignedIn)
}

/// A complete sign-in, by a passkey or by the app's own factor alone when no
/// passkey is required of the user (see
/// [`Policy::passkey_required_as_second_factor`](crate::config::Policy::passkey_required_as_second_factor));
/// a partial (MFA pending) state is `NotSignedIn`.
pub fn require_signed_in<U: UserId>(record: &SessionRecord<U>) -> Result<&AuthState<U>, FlowError> {
    match &record.auth {
        Some(a) if !a.is_partial() => Ok(a),
        _ => Err(FlowError::NotSignedIn),
    }
}

/// Runs `check` (one of the `require_*` functions) on `record` and returns
/// the state it approved by value, so an extractor keeps it without a clone.
///
/// ```
/// use passlock_core::adapter::flow;
/// use passlock_core::{AuthState, AuthenticatorId, FlowError, SessionRecord};
///
/// let empty = SessionRecord::<i64>::default();
/// assert!(matches!(
///     flow::into_checked(empty, flow::require_user),
///     Err(FlowError::NotSignedIn)
/// ));
///
/// let passkey = AuthenticatorId::new("a").unwrap();
/// let record = SessionRecord {
///     auth: Some(AuthState::passkey(7_i64, passkey, 0)),
///     ..SessionRecord::default()
/// };
/// assert_eq!(flow::into_checked(record, flow::require_user).unwrap().user_id, 7);
/// ```
pub fn into_checked<U: UserId>(
    record: SessionRecord<U>,
    check: impl FnOnce(&SessionRecord<U>) -> Result<&AuthState<U>, FlowError>,
) -> Result<AuthState<U>, FlowError> {
    check(&record)?;
    record.auth.ok_or(FlowError::NotSignedIn)
}

/// What [`first_factor`] recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct FirstFactor {
    /// The app's user id, as text.
    pub user_id: String,
    /// Whether a passkey step-up (`POST {prefix}/step-up`) must follow
    /// before the user is signed in.
    pub second_factor_required: bool,
}

/// The app's own first factor (e.g. a password) succeeded for `user`:
/// replaces the session's state with a fresh one for `user` (dropping any
/// pending registration) and cycles the session id.
///
/// With [`Policy::passkey_required_as_second_factor`](crate::config::Policy::passkey_required_as_second_factor)
/// on and at least one passkey linked to `user`, the state is partial
/// ([`AuthState::first_factor`]): only a passkey step-up by `user`
/// completes it. Otherwise it is a complete sign-in by the app's factor
/// ([`AuthState::app_factor`]). `method` names the factor in the session's
/// `amr` (non-empty, for example `"password"`). Call it only after the app
/// verified the factor; a store failure fails closed (`503`, session
/// unchanged).
///
/// Audited as [`AuditKind::FirstFactor`] from `client`.
pub async fn first_factor<U: UserId>(
    pl: &Passlock<U>,
    _record: &SessionRecord<U>,
    user: U,
    method: &str,
    client: &ClientInfo,
) -> Result<Outcome<FirstFactor, U>, FlowError> {
    observed(
        pl,
        "first_factor",
        Some(client),
        first_factor_observed(pl, user, method, client),
    )
    .await
}

async fn first_factor_observed<U: UserId>(
    pl: &Passlock<U>,
    user: U,
    method: &str,
    client: &ClientInfo,
) -> Result<Outcome<FirstFactor, U>, FlowError> {
    record_subject(&user, None);
    if method.trim().is_empty() {
        return Err(FlowError::Misconfigured(
            "the first factor needs a method name",
        ));
    }
    let required = pl.policy().passkey_required_as_second_factor
        && !pl.store().authenticators_of(&user).await?.is_empty();
    let now = pl.now();
    let user_id = user.to_string();
    let auth = if required {
        AuthState::first_factor(user.clone(), method, now)
    } else {
        AuthState::app_factor(user.clone(), method, now)
    };
    let next = SessionRecord::signed_in(auth);
    let kind = AuditKind::FirstFactor {
        method: method.to_owned(),
        second_factor_required: required,
    };
    pl.emit(kind, user, None, client.address).await;
    Ok(Outcome::new(
        FirstFactor {
            user_id,
            second_factor_required: required,
        },
        SessionChange::Set {
            record: next,
            renew: true,
        },
    ))
}

/// A passkey verified within `max_age_secs` in a complete sign-in. Without
/// one, `StepUpRequired` (a step-up answers it, also upgrading a session
/// signed in by the app's factor alone); a partial (MFA pending) state or no
/// state is `NotSignedIn`.
pub fn require_step_up<'a, U: UserId>(
    pl: &Passlock<U>,
    record: &'a SessionRecord<U>,
    max_age_secs: u64,
) -> Result<&'a AuthState<U>, FlowError> {
    let auth = require_signed_in(record)?;
    auth.require_fresh(pl.now(), max_age_secs)?;
    Ok(auth)
}

/// Counts one call of a route that starts a ceremony without any proof
/// (`POST {prefix}/authentication/authorize`, `POST {prefix}/registration/authorize`
/// and the embedded provider's browser routes) against the client's
/// [`ceremonies_per_address`](crate::throttle::ThrottlePolicy::ceremonies_per_address)
/// limit; at the limit, [`FlowError::Throttled`] (`429` with `Retry-After`).
/// Every call counts, successful or not: each one stores a ceremony or
/// spends the hosted tenancy's API quota. Adapters call it before the
/// route's work; it does nothing when throttling is disabled.
pub async fn throttle_ceremony<U: UserId>(
    pl: &Passlock<U>,
    client: &ClientInfo,
) -> Result<(), FlowError> {
    let Some(throttle) = pl.throttle() else {
        return Ok(());
    };
    let limit = pl.policy().throttle.ceremonies_per_address;
    let key = ThrottleKey::client(client, limit);
    throttle
        .try_acquire(&ThrottleKey::new(format!("ceremony:{}", key.name), limit))
        .await
}

/// Longest passkey name, in characters.
pub const MAX_PASSKEY_NAME_CHARS: usize = 64;

/// A passkey name as the user typed it: trimmed, 1 to
/// [`MAX_PASSKEY_NAME_CHARS`] characters, no control characters; else
/// `400 invalid_name`.
///
/// ```
/// use passlock_core::adapter::flow::check_passkey_name;
/// assert_eq!(check_passkey_name("  Work laptop ").unwrap(), "Work laptop");
/// assert_eq!(check_passkey_name(" ").unwrap_err().code(), "invalid_name");
/// assert_eq!(check_passkey_name("a\u{7}b").unwrap_err().code(), "invalid_name");
/// ```
pub fn check_passkey_name(raw: &str) -> Result<String, FlowError> {
    check_line(raw, MAX_PASSKEY_NAME_CHARS).map_err(FlowError::InvalidName)
}

fn sign_up_error(e: SignUpError) -> FlowError {
    match e {
        SignUpError::Refused(msg) => FlowError::SignUpRefused(msg),
        SignUpError::Backend(b) => FlowError::Store(crate::error::StoreError::Backend(b)),
    }
}

/// The username a signed-in user's authenticator shows for a new passkey:
/// the app's ([`SignUpHook::username_of`](crate::SignUpHook::username_of)),
/// else the one stored with a passkey the user already has (embedded
/// provider), else the user id as text.
async fn username_of<U: UserId>(
    pl: &Passlock<U>,
    user: &U,
    linked: &[AuthenticatorId],
) -> Result<String, FlowError> {
    if let Some(hook) = pl.sign_up()
        && let Some(name) = hook.username_of(user).await.map_err(sign_up_error)?
        && !name.trim().is_empty()
    {
        return Ok(name);
    }
    if !linked.is_empty() {
        let details = pl.provider().passkey_details(linked).await?;
        if let Some(name) = details.into_iter().find_map(|d| d.username) {
            return Ok(name);
        }
    }
    Ok(user.to_string())
}

/// `POST {prefix}/registration/authorize`: approves a sign-up (no session)
/// or a new passkey for the signed-in user (after a recent step-up).
///
/// A sign-up asks the app's [`SignUpHook::username_available`](crate::SignUpHook::username_available)
/// first: a taken name is `409 username_taken` and nothing is stored (no
/// ceremony, no ticket). A passkey added by a signed-in user is created
/// under the user's username (see [`SignUpHook::username_of`](crate::SignUpHook::username_of)),
/// never the app's id. `body.passkey_name` names the new passkey
/// ([`check_passkey_name`]); `body.mediation` `conditional` asks the browser
/// to create it without a prompt (automatic passkey upgrade), with the same
/// rules.
pub async fn authorize_registration<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
    body: &AuthorizeRegistrationBody,
) -> Result<Outcome<AuthorizeAnswer, U>, FlowError> {
    let now = pl.now();
    let username = body.username.as_deref();
    let passkey_name = body
        .passkey_name
        .as_deref()
        .map(check_passkey_name)
        .transpose()?;
    let (handle, username, for_user, exclude) = match (&record.auth, &record.recovery) {
        (None, Some(grant)) => {
            // A recovery session enrolls a passkey for its user: the code
            // it verified is the proof, no step-up applies.
            if grant.expires_at <= now {
                return Err(FlowError::NotSignedIn);
            }
            let user = grant.user_id.clone();
            let linked = pl.store().authenticators_of(&user).await?;
            let exclude: Vec<AuthenticatorId> =
                linked.into_iter().map(|l| l.authenticator_id).collect();
            let name = match username {
                Some(u) => check_username(u, pl.policy().max_username_chars)?,
                None => username_of(pl, &user, &exclude).await?,
            };
            let handle = UserHandle::new(user.to_string()).unwrap_or_else(|_| UserHandle::random());
            (handle, name, Some(user), exclude)
        }
        (Some(auth), _) => {
            let linked = pl.store().authenticators_of(&auth.user_id).await?;
            // A first-factor-only user may enrol a first passkey; anyone who
            // has one must prove it recently.
            if auth.has_passkey() || !linked.is_empty() {
                auth.require_fresh(now, pl.policy().manage_step_up_secs)?;
            }
            let exclude: Vec<AuthenticatorId> =
                linked.into_iter().map(|l| l.authenticator_id).collect();
            let name = match username {
                Some(u) => check_username(u, pl.policy().max_username_chars)?,
                None => username_of(pl, &auth.user_id, &exclude).await?,
            };
            // The same provider user as the passkeys this session proved, so
            // an account stays one Passlock userId / Passage external id.
            let handle = auth.provider_handle();
            (handle, name, Some(auth.user_id.clone()), exclude)
        }
        (None, None) => {
            let Some(hook) = pl.sign_up() else {
                return Err(FlowError::SignUpDisabled);
            };
            let name = check_username(username.unwrap_or(""), pl.policy().max_username_chars)?;
            // Before any ceremony state exists: a taken name leaves nothing.
            if !hook
                .username_available(&name)
                .await
                .map_err(sign_up_error)?
            {
                return Err(FlowError::UsernameTaken);
            }
            (UserHandle::random(), name, None, Vec::new())
        }
    };
    let mut request = RegistrationRequest::new(handle.clone(), username.clone());
    request.exclude = exclude;
    request.passkey_name = passkey_name;
    request.mediation = body.mediation.unwrap_or_default();
    let authz = pl.provider().authorize_registration(request).await?;
    let answer = AuthorizeAnswer {
        registration_token: Some(authz.token.expose_secret().to_owned()),
        authentication_token: None,
        expires_at: authz.expires_at,
        endpoint: endpoint_of(pl, &authz),
        tenancy_id: authz.tenancy_id.clone(),
    };
    let secs = pl.policy().pending_registration_secs;
    let ttl = i64::try_from(secs).unwrap_or(300).saturating_mul(1000);
    let pending = PendingRegistration {
        user_handle: handle,
        username,
        for_user,
        expires_at: now.saturating_add(ttl),
    };
    if pending.for_user.is_none() {
        // An anonymous sign-up persists nothing server-side: the pending
        // registration travels in a sealed cookie (see `crate::ticket`).
        let sealed = ticket::seal(pl.sealing_key(), &pending);
        let cookie = ticket::set_cookie(Some(&sealed), pl.prefix(), secs, pl.secure_cookies());
        return Ok(Outcome::new(answer, SessionChange::Unchanged).with_cookie(cookie));
    }
    let mut next = record.clone();
    next.pending = Some(pending);
    Ok(Outcome::new(
        answer,
        SessionChange::Set {
            record: next,
            renew: false,
        },
    ))
}

/// Runs `run` unless the throttle refuses to reserve `guard`'s attempts,
/// and settles them with its outcome.
pub(crate) async fn guarded<T, U: UserId>(
    pl: &Passlock<U>,
    guard: Guard,
    run: impl Future<Output = Result<T, FlowError>>,
) -> Result<T, FlowError> {
    let Some(throttle) = pl.throttle() else {
        return run.await;
    };
    guard.acquire(throttle).await?;
    let result = run.await;
    guard.settle(throttle, &result).await;
    result
}

/// `POST {prefix}/register`: verifies the proof of the authorized
/// registration, creates the user on sign-up, links the passkey and signs in.
/// Throttled per client address and per pending registration.
///
/// `ticket` is the request's [sign-up ticket](crate::SealingKey) cookie, if
/// any: it holds an anonymous visitor's pending sign-up. A signed-in
/// session's own pending registration (a passkey added to the account)
/// comes from `record`; a ticket is only read when nobody is signed in.
pub async fn register<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
    ticket: Option<&str>,
    proof: &Proof,
    client: &ClientInfo,
) -> Result<Outcome<SignedIn, U>, FlowError> {
    let with_ticket;
    let record = match ticket {
        Some(t) if record.auth.is_none() && record.pending.is_none() => {
            with_ticket = SessionRecord {
                auth: None,
                pending: ticket::open(pl.sealing_key(), t, pl.now()),
                ..SessionRecord::default()
            };
            &with_ticket
        }
        _ => record,
    };
    let signed_up = record
        .pending
        .as_ref()
        .is_some_and(|p| p.for_user.is_none());
    let subject = record
        .pending
        .as_ref()
        .map(|p| format!("pending:{}", p.user_handle));
    let guard = Guard::new(&pl.policy().throttle, client, subject, false);
    let run = guarded(pl, guard, register_unthrottled(pl, record, proof, client));
    let outcome = observed(pl, "register", Some(client), run).await?;
    Ok(match ticket.is_some() && signed_up {
        // The ticket is spent: the browser drops it.
        true => outcome.with_cookie(ticket::set_cookie(
            None,
            pl.prefix(),
            0,
            pl.secure_cookies(),
        )),
        false => outcome,
    })
}

async fn register_unthrottled<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
    proof: &Proof,
    client: &ClientInfo,
) -> Result<Outcome<SignedIn, U>, FlowError> {
    let now = pl.now();
    let pending = match &record.pending {
        Some(p) if p.expires_at > now => p.clone(),
        _ => return Err(FlowError::NoPendingRegistration),
    };
    // Adding a passkey: the step-up `/registration/authorize` required must
    // still be fresh now, checked before the proof is spent.
    if let Some(user) = &pending.for_user {
        match (&record.auth, &record.recovery) {
            (Some(a), _) if &a.user_id == user => {
                if a.has_passkey() || !pl.store().authenticators_of(user).await?.is_empty() {
                    a.require_fresh(now, pl.policy().manage_step_up_secs)?;
                }
            }
            (None, Some(g)) if &g.user_id == user && g.expires_at > now => {}
            _ => return Err(FlowError::NoPendingRegistration),
        }
    }
    let principal = pl.provider().verify(proof).await?;
    if principal.user_handle != pending.user_handle {
        // A passkey registered for another browser's pending sign-up: it
        // is linked to nobody and its own registration can no longer
        // complete (its proof is spent), so it leaves the vault.
        discard_passkey(pl, &principal.authenticator_id).await;
        return Err(FlowError::UserMismatch);
    }
    if let Err(e) = check_user_verified(pl, &principal) {
        discard_passkey(pl, &principal.authenticator_id).await;
        return Err(e);
    }
    let at = ceremony_time(principal.authenticated_at, now);
    let aid = principal.authenticator_id.clone();
    let recovered = record.auth.is_none() && record.recovery.is_some();
    let next = match &pending.for_user {
        Some(user) if recovered => {
            let Some(grant) = &record.recovery else {
                return Err(FlowError::NoPendingRegistration);
            };
            // One enrollment per recovery: the verified challenge is taken
            // out of the store, once, before the passkey is linked.
            let taken = match pl.recovery() {
                Some(setup) => setup.challenges.take_used(&grant.challenge, now).await?,
                None => false,
            };
            if !taken {
                discard_passkey(pl, &aid).await;
                return Err(FlowError::NoPendingRegistration);
            }
            pl.store().link(&aid, user, now).await?;
            // A full sign-in: new family, the id cycles below.
            SessionRecord::signed_in(
                AuthState::passkey(user.clone(), aid.clone(), now)
                    .verified(aid.clone(), at)
                    .with_user_handle(principal.user_handle.clone()),
            )
        }
        Some(user) => {
            let current = match &record.auth {
                Some(a) if &a.user_id == user => a.clone(),
                _ => return Err(FlowError::NoPendingRegistration),
            };
            pl.store().link(&aid, user, now).await?;
            // A new passkey for the signed-in user: the same sign-in.
            SessionRecord {
                auth: Some(
                    current
                        .verified(aid.clone(), at)
                        .with_user_handle(principal.user_handle.clone()),
                ),
                pending: None,
                ..record.clone()
            }
        }
        None => {
            let hook = pl.sign_up().ok_or(FlowError::SignUpDisabled)?;
            let user = match hook.create_user(&pending.username).await {
                Ok(u) => u,
                Err(e) => {
                    discard_passkey(pl, &aid).await;
                    return Err(sign_up_error(e));
                }
            };
            if let Err(e) = pl.store().link(&aid, &user, now).await {
                if let Err(undo) = hook.abandon_user(&user).await {
                    tracing::error!(error = %undo, "sign-up: could not abandon the user after a failed link");
                }
                discard_passkey(pl, &aid).await;
                return Err(e.into());
            }
            SessionRecord::signed_in(
                AuthState::passkey(user, aid.clone(), now)
                    .verified(aid.clone(), at)
                    .with_user_handle(pending.user_handle.clone()),
            )
        }
    };
    let Some(user) = next.auth.as_ref().map(|a| a.user_id.clone()) else {
        return Err(FlowError::NoPendingRegistration);
    };
    record_subject(&user, Some(&aid));
    let kind = match pending.for_user {
        Some(_) if recovered => AuditKind::PasskeyEnrolledByRecovery,
        Some(_) => AuditKind::PasskeyAdded,
        None => AuditKind::SignedUp,
    };
    let user_id = user.to_string();
    pl.emit(kind, user, Some(aid.clone()), client.address).await;
    Ok(Outcome::new(
        SignedIn {
            user_id,
            authenticator_id: aid,
        },
        SessionChange::Set {
            record: next,
            renew: true,
        },
    ))
}

/// `UserNotVerified` when the policy requires user verification and the
/// ceremony did not verify the user.
fn check_user_verified<U: UserId>(
    pl: &Passlock<U>,
    principal: &crate::principal::Principal,
) -> Result<(), FlowError> {
    if pl.policy().require_user_verification && !principal.user_verified {
        return Err(crate::error::Rejection::UserNotVerified.into());
    }
    Ok(())
}

/// When the ceremony ran (`Principal::authenticated_at`, the provider's report: the
/// hosted `createdAt`, the id_token's `iat`, the embedded verification),
/// never later than `now`. A session's freshness (`verified_at`) starts
/// there, not when the proof was redeemed, so a late redemption does not
/// stretch a step-up window. A principal dated in the future (clock skew)
/// is clamped to `now`: a freshness never starts after the request that
/// records it.
fn ceremony_time(authenticated_at: i64, now: i64) -> i64 {
    authenticated_at.min(now)
}

async fn discard_passkey<U: UserId>(pl: &Passlock<U>, aid: &AuthenticatorId) {
    if let Err(e) = pl.provider().delete_passkey(aid).await {
        tracing::warn!(error = %e, "could not delete an unlinked passkey from the provider");
    }
}

/// `POST {prefix}/authentication/authorize`: usernameless for a login,
/// restricted to the session user's passkeys for a step-up.
///
/// `body.mediation` `conditional` (a login only: a step-up is always a
/// modal ceremony, `400 bad_request` otherwise) asks for a discoverable
/// challenge the browser offers in the username field's autofill.
pub async fn authorize_authentication<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
    body: &AuthorizeAuthenticationBody,
) -> Result<Outcome<AuthorizeAnswer, U>, FlowError> {
    let mediation = body.mediation.unwrap_or_default();
    let purpose = body.purpose.unwrap_or(if record.auth.is_some() {
        Purpose::StepUp
    } else {
        Purpose::Login
    });
    let request = match purpose {
        Purpose::Login => AuthenticationRequest::discoverable().with_mediation(mediation),
        Purpose::StepUp if mediation == Mediation::Conditional => {
            return Err(FlowError::BadRequest(
                "conditional mediation is for a login, not a step-up".to_owned(),
            ));
        }
        Purpose::StepUp => {
            let auth = record.auth.as_ref().ok_or(FlowError::NotSignedIn)?;
            let linked = pl.store().authenticators_of(&auth.user_id).await?;
            if linked.is_empty() {
                return Err(FlowError::UnknownAuthenticator);
            }
            let request = AuthenticationRequest::restricted(
                linked.into_iter().map(|l| l.authenticator_id).collect(),
            );
            request.with_user(auth.provider_handle())
        }
    };
    let authz = pl.provider().authorize_authentication(request).await?;
    let answer = AuthorizeAnswer {
        registration_token: None,
        authentication_token: Some(authz.token.expose_secret().to_owned()),
        expires_at: authz.expires_at,
        endpoint: endpoint_of(pl, &authz),
        tenancy_id: authz.tenancy_id.clone(),
    };
    Ok(Outcome::new(answer, SessionChange::Unchanged))
}

/// `POST {prefix}/login`: a fresh session for the passkey's user.
/// Throttled per client address.
pub async fn login<U: UserId>(
    pl: &Passlock<U>,
    _record: &SessionRecord<U>,
    proof: &Proof,
    client: &ClientInfo,
) -> Result<Outcome<SignedIn, U>, FlowError> {
    let guard = Guard::new(&pl.policy().throttle, client, None, false);
    let run = guarded(pl, guard, login_unthrottled(pl, proof, client));
    observed(pl, "login", Some(client), run).await
}

async fn login_unthrottled<U: UserId>(
    pl: &Passlock<U>,
    proof: &Proof,
    client: &ClientInfo,
) -> Result<Outcome<SignedIn, U>, FlowError> {
    let principal = pl.provider().verify(proof).await?;
    check_user_verified(pl, &principal)?;
    let aid = principal.authenticator_id;
    let user = pl
        .store()
        .user_of(&aid)
        .await?
        .ok_or(FlowError::UnknownAuthenticator)?;
    let now = pl.now();
    let at = ceremony_time(principal.authenticated_at, now);
    touch(pl, &aid, now).await;
    let next = SessionRecord::signed_in(
        AuthState::passkey(user.clone(), aid.clone(), now)
            .verified(aid.clone(), at)
            .with_user_handle(principal.user_handle),
    );
    record_subject(&user, Some(&aid));
    pl.emit(
        AuditKind::LoggedIn,
        user.clone(),
        Some(aid.clone()),
        client.address,
    )
    .await;
    Ok(Outcome::new(
        SignedIn {
            user_id: user.to_string(),
            authenticator_id: aid,
        },
        SessionChange::Set {
            record: next,
            renew: true,
        },
    ))
}

/// `POST {prefix}/step-up`: records a fresh passkey verification by the
/// session's own user and cycles the session id. Also completes a partial
/// (MFA pending) session. A passkey of another user is `WrongUser` (`403`)
/// and leaves the session as it was.
/// Throttled per user; the session already proved itself, so failures of
/// others behind the same address do not lock it out.
pub async fn step_up<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
    proof: &Proof,
    client: &ClientInfo,
) -> Result<Outcome<SignedIn, U>, FlowError> {
    let auth = record.auth.clone().ok_or(FlowError::NotSignedIn)?;
    let subject = Some(format!("user:{}", auth.user_id));
    let guard = Guard::new(&pl.policy().throttle, client, subject, true);
    let run = guarded(
        pl,
        guard,
        step_up_unthrottled(pl, record, auth, proof, client),
    );
    observed(pl, "step_up", Some(client), run).await
}

async fn step_up_unthrottled<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
    auth: AuthState<U>,
    proof: &Proof,
    client: &ClientInfo,
) -> Result<Outcome<SignedIn, U>, FlowError> {
    let principal = pl.provider().verify(proof).await?;
    check_user_verified(pl, &principal)?;
    let at = ceremony_time(principal.authenticated_at, pl.now());
    let aid = principal.authenticator_id;
    let owner = pl
        .store()
        .user_of(&aid)
        .await?
        .ok_or(FlowError::UnknownAuthenticator)?;
    if owner != auth.user_id {
        return Err(FlowError::WrongUser);
    }
    let now = pl.now();
    touch(pl, &aid, now).await;
    let user_id = auth.user_id.to_string();
    record_subject(&auth.user_id, Some(&aid));
    pl.emit(
        AuditKind::SteppedUp,
        auth.user_id.clone(),
        Some(aid.clone()),
        client.address,
    )
    .await;
    let next = SessionRecord {
        auth: Some(
            auth.verified(aid.clone(), at)
                .with_user_handle(principal.user_handle),
        ),
        ..record.clone()
    };
    Ok(Outcome::new(
        SignedIn {
            user_id,
            authenticator_id: aid,
        },
        SessionChange::Set {
            record: next,
            renew: true,
        },
    ))
}

async fn touch<U: UserId>(pl: &Passlock<U>, aid: &AuthenticatorId, now: i64) {
    // `last_used_at` is bookkeeping: a failure is logged, not fatal.
    if let Err(e) = pl.store().touch(aid, now).await {
        tracing::warn!(error = %e, "could not record the passkey's last use");
    }
}

/// `POST {prefix}/logout`: revokes the session's sign-in, then deletes the
/// session server-side.
///
/// The revocation marker of the record's [`SessionFamily`](crate::revocation::SessionFamily) is written
/// first: a request that loaded the session before the logout and saves it
/// afterwards (under its old id or a new one) then writes back a record that
/// [`validate_session`] reads as signed out. If the marker cannot be written
/// the logout fails with `503 session_unavailable` and the session is left
/// as it was, so the user can retry; a logout never pretends to succeed.
pub async fn logout<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
) -> Result<Outcome<(), U>, FlowError> {
    if let Some(family) = &record.family {
        // Never before the family's start, so that the marker always
        // covers it (see `crate::revocation`).
        let now = pl.now();
        let at = now.max(record.started_at().unwrap_or(now));
        revoke(pl, &family.revocation_key(), at).await?;
    }
    Ok(Outcome::new((), SessionChange::Purge))
}

/// Writes the marker `key` at `at`, kept for the session lifetime; a
/// store failure is `503 session_unavailable`.
async fn revoke<U: UserId>(pl: &Passlock<U>, key: &str, at: i64) -> Result<(), FlowError> {
    pl.revocations()
        .revoke(key, at, at.saturating_add(pl.session_lifetime_millis()))
        .await
        .map_err(|e| FlowError::SessionUnavailable(Box::new(e)))
}

/// `POST {prefix}/logout/everywhere`: ends every other session of the
/// signed-in user, on every instance sharing the revocation store, and
/// keeps this one.
///
/// A marker for the user is written at `now` (every session of the user
/// started at or before it is revoked, this one's stolen copies included),
/// then this session continues as a new [`SessionFamily`](crate::revocation::SessionFamily)
/// starting just after the marker, under a new session id. Its sign-in
/// time, and so its absolute lifetime, is unchanged. Needs a complete
/// sign-in (`401 not_authenticated` otherwise); a revocation store failure
/// is `503 session_unavailable` and ends nothing. Audited as
/// [`AuditKind::SessionsRevoked`] ([`RevocationReason::LogoutEverywhere`]).
pub async fn logout_everywhere<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
    client: &ClientInfo,
) -> Result<Outcome<(), U>, FlowError> {
    let run = async {
        let auth = require_signed_in(record)?;
        record_subject(&auth.user_id, None);
        let now = pl.now();
        revoke(pl, &crate::revocation::user_key(&auth.user_id), now).await?;
        let kind = AuditKind::SessionsRevoked {
            reason: RevocationReason::LogoutEverywhere,
        };
        pl.emit(kind, auth.user_id.clone(), None, client.address)
            .await;
        let next = record.clone().refamilied(now.saturating_add(1));
        Ok(Outcome::new(
            (),
            SessionChange::Set {
                record: next,
                renew: true,
            },
        ))
    };
    observed(pl, "logout_everywhere", Some(client), run).await
}

// `Passlock::end_sessions_of` is written here, with the flow it runs, so
// that `config` (a lower layer) does not import `flow`.
impl<U: UserId> Passlock<U> {
    /// Ends every session of `user`, on every instance sharing the
    /// [revocation store](crate::PasslockBuilder::revocations): call it when the
    /// app disables or deletes the user. Sessions signed in before this
    /// call read as signed out from their next request on; a later sign-in
    /// is a new session (an app that disables a user also refuses its
    /// sign-ins, for example by unlinking its passkeys). Audited as
    /// [`AuditKind::SessionsRevoked`] with
    /// [`RevocationReason::UserDisabled`](crate::audit::RevocationReason::UserDisabled).
    /// A revocation store failure is `503 session_unavailable` and nothing
    /// is revoked: retry.
    pub async fn end_sessions_of(&self, user: &U) -> Result<(), FlowError> {
        crate::flow::end_sessions(self, user).await
    }
}

/// Ends every session of `user` (see [`Passlock::end_sessions_of`]).
pub(crate) async fn end_sessions<U: UserId>(pl: &Passlock<U>, user: &U) -> Result<(), FlowError> {
    let run = async {
        record_subject(user, None);
        revoke(pl, &crate::revocation::user_key(user), pl.now()).await?;
        let kind = AuditKind::SessionsRevoked {
            reason: RevocationReason::UserDisabled,
        };
        pl.emit(kind, user.clone(), None, None).await;
        Ok(())
    };
    observed(pl, "end_sessions", None, run).await
}

/// A loaded session as [`check_session`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckedSession<U> {
    /// The record to use: empty when the session no longer counts.
    pub record: SessionRecord<U>,
    /// Whether the adapter should write `record` back to the session (its
    /// last use moved on for the idle lifetime), without cycling the id.
    /// Rarely set on a guarded request; never for an emptied record (the
    /// session store still holds the old one, which reads as empty again).
    pub write_back: bool,
}

/// Checks a record just loaded from the session store; both adapters call
/// [`check_session`] on every load, before any route or extractor looks at
/// the record. This is the same check returning only the record.
///
/// The record comes back empty (signed out, any pending registration
/// dropped) when its sign-in is older than
/// [`Policy::session_lifetime_secs`](crate::Policy::session_lifetime_secs),
/// when it was not used for [`Policy::idle_lifetime_secs`](crate::Policy::idle_lifetime_secs),
/// when its [`SessionFamily`](crate::revocation::SessionFamily) was revoked by a logout, when its
/// user's sessions or its passkey's were revoked after it started (see
/// [`crate::revocation`]), or when it is signed in without a family
/// (written before families existed). A record with neither a sign-in nor
/// a family (an anonymous session) is returned as it is without reading
/// the revocation store. A revocation store failure is `503
/// session_unavailable`: the session is not trusted blindly.
///
/// ```
/// use passlock_core::adapter::flow;
/// use passlock_core::{AuthState, AuthenticatorId, SessionRecord};
/// # use std::sync::Arc;
/// # use passlock_core::{Passlock, store::MemoryAuthenticatorStore};
/// # use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let provider = EmbeddedProvider::in_memory(
/// #     EmbeddedConfig::new("localhost", "Demo", ["http://localhost:3000"])).await?;
/// # let pl: Passlock<i64> =
/// #     Passlock::builder(Arc::new(provider), Arc::new(MemoryAuthenticatorStore::new())).build()?;
/// let passkey = AuthenticatorId::new("a")?;
/// let record = SessionRecord::signed_in(AuthState::passkey(7_i64, passkey, pl.now()));
/// assert_eq!(flow::validate_session(&pl, record.clone()).await?, record);
///
/// flow::logout(&pl, &record).await?; // a logout elsewhere
/// assert!(flow::validate_session(&pl, record).await?.is_empty());
/// # Ok(()) }
/// ```
pub async fn validate_session<U: UserId>(
    pl: &Passlock<U>,
    record: SessionRecord<U>,
) -> Result<SessionRecord<U>, FlowError> {
    Ok(check_session(pl, record).await?.record)
}

/// [`validate_session`], also telling the adapter whether to write the
/// record back ([`CheckedSession::write_back`]): with an idle lifetime, the
/// session's last use is moved to now once it is older than a quarter of
/// the idle window, so a guarded request rarely writes. The revocation
/// check is one [`RevocationStore::latest`](crate::store::RevocationStore::latest)
/// call over the family's, the passkey's and the user's markers.
pub async fn check_session<U: UserId>(
    pl: &Passlock<U>,
    record: SessionRecord<U>,
) -> Result<CheckedSession<U>, FlowError> {
    let ended = || CheckedSession {
        record: SessionRecord::default(),
        write_back: false,
    };
    let Some(family) = &record.family else {
        return Ok(match record.auth {
            // Signed in before families existed: no logout could revoke it.
            Some(_) => ended(),
            None => CheckedSession {
                record,
                write_back: false,
            },
        });
    };
    let now = pl.now();
    let mut keys = Vec::with_capacity(3);
    keys.push(family.revocation_key());
    let mut touch = false;
    if let Some(auth) = &record.auth {
        if now.saturating_sub(auth.authenticated_at) >= pl.session_lifetime_millis() {
            return Ok(ended());
        }
        if let Some(idle) = pl.idle_lifetime_millis() {
            let last = record
                .active_at
                .or(record.since)
                .unwrap_or(auth.authenticated_at);
            let unused = now.saturating_sub(last);
            if unused >= idle {
                return Ok(ended());
            }
            touch = unused >= idle / 4;
        }
        keys.push(crate::revocation::user_key(&auth.user_id));
        if let Some(aid) = &auth.authenticator_id {
            keys.push(crate::revocation::passkey_key(aid));
        }
    } else if let Some(grant) = &record.recovery {
        // A recovery session ends at its own short lifetime, and with its
        // user's sessions.
        if grant.expires_at <= now {
            return Ok(ended());
        }
        keys.push(crate::revocation::user_key(&grant.user_id));
    }
    let revoked = pl
        .revocations()
        .latest(&keys)
        .await
        .map_err(|e| FlowError::SessionUnavailable(Box::new(e)))?;
    let start = record.started_at().unwrap_or(i64::MIN);
    if revoked.is_some_and(|at| at >= start) {
        return Ok(ended());
    }
    let mut record = record;
    if touch {
        record.active_at = Some(now);
    }
    Ok(CheckedSession {
        record,
        write_back: touch,
    })
}

/// `GET {prefix}/session`.
pub fn session<U: UserId>(record: &SessionRecord<U>) -> Result<SessionView, FlowError> {
    record
        .auth
        .as_ref()
        .map(SessionView::from)
        .ok_or(FlowError::NotSignedIn)
}

/// `GET {prefix}/passkeys`: for a complete sign-in (a passkey session, or
/// the app's factor alone when no passkey is required), not a partial one.
/// Each entry joins the link (dates) with what the provider knows of the
/// passkey ([`PasskeyProvider::passkey_details`](crate::provider::PasskeyProvider::passkey_details):
/// name, AAGUID, backup flags).
pub async fn list_passkeys<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
) -> Result<Vec<PasskeyView>, FlowError> {
    let auth = require_signed_in(record)?;
    let linked = pl.store().authenticators_of(&auth.user_id).await?;
    let ids: Vec<AuthenticatorId> = linked.iter().map(|l| l.authenticator_id.clone()).collect();
    let mut details = if ids.is_empty() {
        Vec::new()
    } else {
        pl.provider().passkey_details(&ids).await?
    };
    Ok(linked
        .into_iter()
        .map(|l| {
            let found = details
                .iter()
                .position(|d| d.authenticator_id == l.authenticator_id)
                .map(|i| details.swap_remove(i));
            passkey_view(auth, l, found)
        })
        .collect())
}

fn passkey_view<U: UserId>(
    auth: &AuthState<U>,
    link: crate::store::LinkedAuthenticator,
    details: Option<PasskeyDetails>,
) -> PasskeyView {
    let details = details.unwrap_or_else(|| PasskeyDetails::new(link.authenticator_id.clone()));
    let authenticator_name = details
        .aaguid
        .as_deref()
        .and_then(crate::aaguid::authenticator_name)
        .map(str::to_owned);
    let name = crate::aaguid::display_name(
        details.name.as_deref(),
        details.aaguid.as_deref(),
        link.created_at,
    );
    let last_used_at = match (link.last_used_at, details.last_used_at) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    PasskeyView {
        current: auth.authenticator_id.as_ref() == Some(&link.authenticator_id),
        authenticator_id: link.authenticator_id,
        name,
        authenticator_name,
        aaguid: details.aaguid,
        backup_eligible: details.backup_eligible,
        backed_up: details.backed_up,
        created_at: link.created_at,
        last_used_at,
    }
}

/// `PATCH {prefix}/passkeys/{authenticator_id}`: renames one of the
/// signed-in user's passkeys, with the rules of a delete (a passkey
/// verified within [`Policy::manage_step_up_secs`](crate::Policy::manage_step_up_secs)).
/// `name` is checked by [`check_passkey_name`] (`400 invalid_name`); a
/// passkey that is not the user's is `404 not_found`. Answers the renamed
/// passkey as the list shows it. Audited as [`AuditKind::PasskeyRenamed`].
/// Providers that keep no names (the hosted ones) answer
/// `404 unsupported`.
pub async fn rename_passkey<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
    authenticator: &str,
    name: &str,
    client: &ClientInfo,
) -> Result<PasskeyView, FlowError> {
    let run = async {
        let auth = require_step_up(pl, record, pl.policy().manage_step_up_secs)?;
        let aid = AuthenticatorId::new(authenticator).map_err(|_| FlowError::NotFound)?;
        record_subject(&auth.user_id, Some(&aid));
        let name = check_passkey_name(name)?;
        let linked = pl.store().authenticators_of(&auth.user_id).await?;
        let Some(link) = linked.into_iter().find(|l| l.authenticator_id == aid) else {
            return Err(FlowError::NotFound);
        };
        if !pl.provider().rename_passkey(&aid, &name).await? {
            return Err(FlowError::NotFound);
        }
        pl.emit(
            AuditKind::PasskeyRenamed,
            auth.user_id.clone(),
            Some(aid.clone()),
            client.address,
        )
        .await;
        let details = pl
            .provider()
            .passkey_details(std::slice::from_ref(&aid))
            .await?
            .into_iter()
            .next();
        Ok(passkey_view(auth, link, details))
    };
    observed(pl, "rename_passkey", Some(client), run).await
}

/// `DELETE {prefix}/passkeys/{authenticator_id}`: after a recent step-up,
/// unlinks the passkey and deletes it in the provider's vault. The last
/// passkey of an account is kept, also against concurrent deletes.
///
/// The link goes first and the check follows it: two deletes of an
/// account's last two passkeys that each checked first would both see the
/// other passkey and leave none. A delete that finds nothing left after its
/// own unlink (or whose vault delete fails) links the passkey back.
///
/// Every session standing on the removed passkey (signed in or last
/// verified with it) ends, on every instance sharing the revocation store:
/// its marker (`revocation::passkey_key`) is written
/// once the vault delete succeeded, so a refused delete changes nothing. If
/// that write fails the answer is `503 session_unavailable` (logged at
/// `error`): the passkey is gone, and the sessions standing on it end only
/// with their lifetimes or a logout. The session doing the
/// delete stays signed in: when it stands on that passkey it continues as
/// a new family under a new session id. Audited as
/// [`AuditKind::PasskeyRemoved`], then [`AuditKind::SessionsRevoked`]
/// ([`RevocationReason::PasskeyRemoved`]), from `client`.
pub async fn unlink<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
    authenticator: &str,
    client: &ClientInfo,
) -> Result<Outcome<(), U>, FlowError> {
    observed(
        pl,
        "unlink",
        Some(client),
        unlink_observed(pl, record, authenticator, client),
    )
    .await
}

async fn unlink_observed<U: UserId>(
    pl: &Passlock<U>,
    record: &SessionRecord<U>,
    authenticator: &str,
    client: &ClientInfo,
) -> Result<Outcome<(), U>, FlowError> {
    let auth = require_step_up(pl, record, pl.policy().manage_step_up_secs)?;
    let aid = AuthenticatorId::new(authenticator).map_err(|_| FlowError::NotFound)?;
    record_subject(&auth.user_id, Some(&aid));
    let linked = pl.store().authenticators_of(&auth.user_id).await?;
    let Some(link) = linked.into_iter().find(|l| l.authenticator_id == aid) else {
        return Err(FlowError::NotFound);
    };
    if !pl.store().unlink(&aid, &auth.user_id).await? {
        return Err(FlowError::NotFound);
    }
    // From here on every refusal, a failing store included, links the
    // passkey back: a failed delete changes nothing.
    let now = pl.now();
    let refusal = match pl.store().authenticators_of(&auth.user_id).await {
        Err(e) => Some(FlowError::from(e)),
        Ok(left) if left.is_empty() => Some(FlowError::LastAuthenticator),
        Ok(_) => pl
            .provider()
            .delete_passkey(&aid)
            .await
            .err()
            .map(|e| match e {
                ProviderError::Rejected(_) => FlowError::NotFound,
                other => FlowError::Provider(other),
            }),
    };
    let Some(refusal) = refusal else {
        let user = auth.user_id.clone();
        pl.emit(
            AuditKind::PasskeyRemoved,
            user.clone(),
            Some(aid.clone()),
            client.address,
        )
        .await;
        // The passkey is gone: end the sessions standing on it. A store
        // failure here is a 503 after the delete (it cannot be undone in
        // the vault); it is logged, and those sessions then end only with
        // their lifetimes, a logout, or `end_sessions_of`.
        if let Err(e) = revoke(pl, &crate::revocation::passkey_key(&aid), now).await {
            tracing::error!(
                error = %e,
                "passkey removed, but the sessions standing on it could not be revoked"
            );
            return Err(e);
        }
        let kind = AuditKind::SessionsRevoked {
            reason: RevocationReason::PasskeyRemoved,
        };
        pl.emit(kind, user, Some(aid.clone()), client.address).await;
        // This session survives the marker it just wrote.
        let change = match auth.authenticator_id.as_ref() == Some(&aid) {
            true => SessionChange::Set {
                record: record.clone().refamilied(now.saturating_add(1)),
                renew: true,
            },
            false => SessionChange::Unchanged,
        };
        return Ok(Outcome::new((), change));
    };
    pl.store()
        .link(&aid, &auth.user_id, link.created_at)
        .await?;
    if let Some(used) = link.last_used_at {
        pl.store().touch(&aid, used).await?;
    }
    Err(refusal)
}

#[cfg(test)]
mod ceremony_time_tests {
    use super::ceremony_time;

    #[test]
    fn freshness_starts_at_the_ceremony_and_never_after_now() {
        assert_eq!(ceremony_time(1_000, 300_000), 1_000);
        assert_eq!(ceremony_time(300_000, 300_000), 300_000);
        // A principal dated in the future (clock skew) is clamped to now.
        assert_eq!(ceremony_time(900_000, 300_000), 300_000);
    }
}

//! Errors, typed per layer, each with a stable machine [`code`](FlowError::code)
//! and a framework-free [`Status`]. Adapters render them to
//! `{"error": code, "message": ...}` exactly once.
//!
//! `Display` of every error here is safe to show a user: it never contains a
//! secret, a token, a key or an upstream body. Causes are kept as `#[source]`
//! for logs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A boxed cause, kept for logs and never rendered into a response.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An HTTP status class, independent of any web framework.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// 400
    BadRequest,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 409
    Conflict,
    /// 413
    PayloadTooLarge,
    /// 415
    UnsupportedMediaType,
    /// 429
    TooManyRequests,
    /// 500
    Internal,
    /// 502
    BadGateway,
    /// 503
    Unavailable,
    /// 504
    GatewayTimeout,
}

impl Status {
    /// The numeric HTTP status.
    pub fn as_u16(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::TooManyRequests => 429,
            Self::Internal => 500,
            Self::BadGateway => 502,
            Self::Unavailable => 503,
            Self::GatewayTimeout => 504,
        }
    }
}

/// Why a proof (code, id_token, nonce, WebAuthn response) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The code, token or nonce is unknown, already used or malformed.
    #[error("the code or token is invalid or was already used")]
    InvalidToken,
    /// The code, token, ceremony or id_token has expired.
    #[error("the code or token has expired")]
    Expired,
    /// The id_token was already used once.
    #[error("the id_token was already used")]
    Replayed,
    /// The proof is not well formed.
    #[error("the proof is malformed")]
    Malformed,
    /// A signature did not verify.
    #[error("the signature is invalid")]
    BadSignature,
    /// The id_token names a key that is not in the key set.
    #[error("the id_token was signed by an unknown key")]
    UnknownKey,
    /// The id_token uses an algorithm that is not allowed.
    #[error("the id_token algorithm is not allowed")]
    DisallowedAlgorithm,
    /// The id_token's issuer is not the expected one.
    #[error("the id_token issuer is wrong")]
    WrongIssuer,
    /// The id_token's audience is not this tenancy.
    #[error("the id_token audience is wrong")]
    WrongAudience,
    /// A required claim is missing or has the wrong type.
    #[error("the id_token lacks a required claim")]
    MissingClaim,
    /// The id_token was issued in the future.
    #[error("the id_token was issued in the future")]
    IssuedInFuture,
    /// User verification was required but not performed.
    #[error("user verification is required")]
    UserNotVerified,
    /// The ceremony ran on an origin that is not allowed.
    #[error("the ceremony ran on an origin that is not allowed")]
    OriginMismatch,
    /// The ceremony was for another relying party id.
    #[error("the ceremony was for another relying party")]
    RpIdMismatch,
    /// The credential is already registered (to this or another user).
    #[error("this passkey is already registered")]
    CredentialExists,
    /// The credential is not known to the provider.
    #[error("this passkey is not known")]
    UnknownCredential,
    /// The signature counter went backwards: possibly a cloned authenticator.
    #[error("the passkey signature counter went backwards")]
    CounterRegressed,
    /// The WebAuthn response does not verify against its ceremony.
    #[error("the passkey ceremony failed")]
    CeremonyFailed,
}

impl Rejection {
    /// The stable machine code.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidToken => "invalid_token",
            Self::Expired => "expired",
            Self::Replayed => "replayed",
            Self::Malformed => "malformed_proof",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::DisallowedAlgorithm => "disallowed_algorithm",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::MissingClaim => "missing_claim",
            Self::IssuedInFuture => "issued_in_future",
            Self::UserNotVerified => "user_not_verified",
            Self::OriginMismatch => "origin_mismatch",
            Self::RpIdMismatch => "rp_id_mismatch",
            Self::CredentialExists => "credential_exists",
            Self::UnknownCredential => "unknown_credential",
            Self::CounterRegressed => "counter_regressed",
            Self::CeremonyFailed => "ceremony_failed",
        }
    }

    /// The status class.
    pub fn status(self) -> Status {
        match self {
            Self::Malformed => Status::BadRequest,
            Self::CredentialExists => Status::Conflict,
            _ => Status::Unauthorized,
        }
    }
}

/// A failure talking to a hosted service (Passlock, Passage) or its JWKS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// No answer within the configured timeout.
    #[error("the passkey service did not answer in time")]
    Timeout,
    /// The service could not be reached (connect failure, reset, outage).
    #[error("the passkey service is unavailable")]
    Unavailable(#[source] Option<BoxError>),
    /// The service answered something we cannot use (5xx, non-JSON, wrong
    /// content type, oversized, unexpected shape). `reason` is a fixed phrase.
    #[error("the passkey service answered unexpectedly ({reason})")]
    BadResponse {
        /// A short fixed description, safe to show.
        reason: &'static str,
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// The cause, for logs.
        #[source]
        source: Option<BoxError>,
    },
    /// A circuit breaker is open after repeated failures.
    #[error("the passkey service is failing; requests are paused")]
    CircuitOpen,
    /// The service answered `429 Too Many Requests` (its rate limit, for
    /// example the tenancy's quota). Answered as `503 upstream_unavailable`
    /// with the service's `Retry-After`; not a failure for the circuit
    /// breaker (the service is up and said when to come back).
    #[error("the passkey service is busy; try again later")]
    Busy {
        /// Seconds until a retry may succeed, from the service's
        /// `Retry-After` (capped at [`MAX_RETRY_AFTER_SECS`]), when it sent
        /// a usable one.
        retry_after: Option<u64>,
    },
}

/// The largest `Retry-After` (seconds) passed on from a hosted service.
pub const MAX_RETRY_AFTER_SECS: u64 = 3600;

impl UpstreamError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout => "upstream_timeout",
            Self::Unavailable(_) | Self::CircuitOpen | Self::Busy { .. } => "upstream_unavailable",
            Self::BadResponse { .. } => "upstream_bad_response",
        }
    }

    /// The status class.
    pub fn status(&self) -> Status {
        match self {
            Self::Timeout => Status::GatewayTimeout,
            Self::Unavailable(_) | Self::CircuitOpen | Self::Busy { .. } => Status::Unavailable,
            Self::BadResponse { .. } => Status::BadGateway,
        }
    }
}

/// A store (authenticators, credentials, ceremonies, sessions) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The authenticator is already linked to another user, or the
    /// credential id already exists. Nothing was changed.
    #[error("already linked to another user")]
    Conflict,
    /// The backend failed (connection, query, serialisation).
    #[error("the store is unavailable")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(e: impl Into<BoxError>) -> Self {
        Self::Backend(e.into())
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Conflict => "conflict",
            Self::Backend(_) => "store_unavailable",
        }
    }

    /// The status class.
    pub fn status(&self) -> Status {
        match self {
            Self::Conflict => Status::Conflict,
            Self::Backend(_) => Status::Unavailable,
        }
    }
}

/// A provider could not turn a request or proof into a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The proof was refused.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The hosted service failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The hosted service refused the request with a typed error that is not
    /// about the proof (bad API key, unknown tenancy, bad request).
    #[error("the passkey service refused the request ({code})")]
    Refused {
        /// The service's error tag or code, e.g. `Forbidden`, `invalid_request`.
        code: String,
        /// The HTTP status the service answered.
        status: u16,
    },
    /// A provider store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request is not valid for this provider.
    #[error("invalid request: {0}")]
    BadRequest(&'static str),
    /// This provider does not offer the operation.
    #[error("this passkey provider does not support {0}")]
    Unsupported(&'static str),
}

impl ProviderError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rejected(r) => r.code(),
            Self::Upstream(u) => u.code(),
            Self::Refused { .. } => "provider_refused",
            Self::Store(s) => s.code(),
            Self::BadRequest(_) => "bad_request",
            Self::Unsupported(_) => "unsupported",
        }
    }

    /// The status class.
    pub fn status(&self) -> Status {
        match self {
            Self::Rejected(r) => r.status(),
            Self::Upstream(u) => u.status(),
            // A misconfigured key or tenancy is our fault towards the user,
            // and the service is usable by nobody: a bad gateway.
            Self::Refused { .. } => Status::BadGateway,
            Self::Store(s) => s.status(),
            Self::BadRequest(_) => Status::BadRequest,
            Self::Unsupported(_) => Status::NotFound,
        }
    }
}

/// A configuration is invalid; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid passlock configuration: {field}: {reason}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl ConfigError {
    /// A config error for `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Everything a passlock flow or route can answer instead of success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// No passkey session.
    #[error("sign in with a passkey first")]
    NotSignedIn,
    /// The last passkey verification is older than `max_age` seconds.
    #[error("verify with your passkey again to continue")]
    StepUpRequired {
        /// The window, in seconds.
        max_age: u64,
    },
    /// The passkey is not linked to any user.
    #[error("this passkey is not linked to an account")]
    UnknownAuthenticator,
    /// The passkey belongs to another user than the session's.
    #[error("this passkey belongs to another account")]
    WrongUser,
    /// `/register` without a registration authorized in this session.
    #[error("no registration was authorized for this browser")]
    NoPendingRegistration,
    /// The principal's user id is not the one authorized.
    #[error("the passkey was registered for another user")]
    UserMismatch,
    /// Sign-up is not enabled (no sign-up hook).
    #[error("sign-up is not enabled")]
    SignUpDisabled,
    /// The username is empty, too long or has control characters.
    #[error("invalid username: {0}")]
    InvalidUsername(&'static str),
    /// A passkey name is empty, longer than 64 characters or has control
    /// characters.
    #[error("invalid passkey name: {0}")]
    InvalidName(&'static str),
    /// The app's sign-up hook says the username is taken
    /// ([`SignUpHook::username_available`](crate::SignUpHook::username_available)):
    /// refused before any ceremony starts.
    #[error("this username is taken")]
    UsernameTaken,
    /// The app's sign-up hook refused the user (e.g. a taken username).
    #[error("sign-up was refused: {0}")]
    SignUpRefused(String),
    /// The authenticator is linked to another user.
    #[error("this passkey is already linked to another account")]
    Conflict,
    /// Deleting the last passkey would lock the user out.
    #[error("the last passkey of an account cannot be deleted")]
    LastAuthenticator,
    /// Not found.
    #[error("not found")]
    NotFound,
    /// The request body or parameters are malformed.
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// Only `application/json` is accepted.
    #[error("only application/json is accepted")]
    UnsupportedMediaType,
    /// The body is larger than allowed.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// The method is not allowed on this route.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request's `Origin` is not an allowed origin.
    #[error("the request origin is not allowed")]
    ForbiddenOrigin,
    /// Too many failed attempts.
    #[error("too many attempts; try again later")]
    Throttled {
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// The session store failed; nothing was issued.
    #[error("the session store is unavailable")]
    SessionUnavailable(#[source] BoxError),
    /// The app is wired wrongly (e.g. a missing session layer).
    #[error("server misconfigured: {0}")]
    Misconfigured(&'static str),
    /// A recovery code was refused: wrong, expired, already used, for
    /// another challenge, or the challenge is unknown. One answer for every
    /// case, so that it tells nothing about the challenge or the account.
    #[error("the code is wrong or has expired; ask for a new one if needed")]
    InvalidCode,
    /// Every attempt of this recovery challenge is spent (even the right
    /// code is refused now): ask for a new code.
    #[error("too many attempts for this code; ask for a new one")]
    CodeAttemptsExceeded,
    /// The email address is not shaped like an address.
    #[error("the email address is not valid")]
    InvalidEmail,
    /// The passkey provider failed or refused the proof.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The authenticator store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for FlowError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::Conflict,
            other => Self::Store(other),
        }
    }
}

impl From<Rejection> for FlowError {
    fn from(r: Rejection) -> Self {
        Self::Provider(ProviderError::Rejected(r))
    }
}

impl FlowError {
    /// The stable machine code, the `error` of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotSignedIn => "not_authenticated",
            Self::StepUpRequired { .. } => "step_up_required",
            Self::UnknownAuthenticator => "unknown_authenticator",
            Self::WrongUser => "wrong_user",
            Self::NoPendingRegistration => "registration_not_authorized",
            Self::UserMismatch => "user_mismatch",
            Self::SignUpDisabled => "sign_up_disabled",
            Self::InvalidUsername(_) => "invalid_username",
            Self::InvalidName(_) => "invalid_name",
            Self::UsernameTaken => "username_taken",
            Self::SignUpRefused(_) => "sign_up_refused",
            Self::Conflict => "conflict",
            Self::LastAuthenticator => "last_authenticator",
            Self::NotFound => "not_found",
            Self::BadRequest(_) => "bad_request",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::Throttled { .. } => "throttled",
            Self::SessionUnavailable(_) => "session_unavailable",
            Self::Misconfigured(_) => "misconfigured",
            Self::InvalidCode => "invalid_code",
            Self::CodeAttemptsExceeded => "code_attempts_exceeded",
            Self::InvalidEmail => "invalid_email",
            Self::Provider(p) => p.code(),
            Self::Store(s) => s.code(),
        }
    }

    /// The status class.
    pub fn status(&self) -> Status {
        match self {
            Self::NotSignedIn
            | Self::StepUpRequired { .. }
            | Self::UnknownAuthenticator
            | Self::NoPendingRegistration
            | Self::InvalidCode => Status::Unauthorized,
            Self::WrongUser | Self::UserMismatch | Self::SignUpDisabled | Self::ForbiddenOrigin => {
                Status::Forbidden
            }
            Self::InvalidUsername(_)
            | Self::InvalidName(_)
            | Self::BadRequest(_)
            | Self::InvalidEmail => Status::BadRequest,
            Self::SignUpRefused(_)
            | Self::UsernameTaken
            | Self::Conflict
            | Self::LastAuthenticator => Status::Conflict,
            Self::NotFound => Status::NotFound,
            Self::UnsupportedMediaType => Status::UnsupportedMediaType,
            Self::PayloadTooLarge => Status::PayloadTooLarge,
            Self::MethodNotAllowed => Status::MethodNotAllowed,
            Self::Throttled { .. } | Self::CodeAttemptsExceeded => Status::TooManyRequests,
            Self::SessionUnavailable(_) => Status::Unavailable,
            Self::Misconfigured(_) => Status::Internal,
            Self::Provider(p) => p.status(),
            Self::Store(s) => s.status(),
        }
    }

    /// The body every adapter renders: `{"error","message"}` plus
    /// `max_age` for step-up. Never contains a secret or a cause.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code().to_owned(),
            message: self.to_string(),
            max_age: match self {
                Self::StepUpRequired { max_age } => Some(*max_age),
                _ => None,
            },
        }
    }

    /// Extra headers the adapters add: `WWW-Authenticate` for step-up and
    /// `Retry-After` for throttling and for a hosted service's `429`.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::StepUpRequired { max_age } => vec![(
                "www-authenticate",
                format!(
                    "Bearer error=\"insufficient_user_authentication\", error_description=\"A passkey verification within the last {max_age} seconds is required\", max_age={max_age}"
                ),
            )],
            Self::NotSignedIn => {
                vec![("www-authenticate", "Passkey realm=\"passlock\"".to_owned())]
            }
            Self::Throttled { retry_after } => vec![("retry-after", retry_after.to_string())],
            Self::Provider(ProviderError::Upstream(UpstreamError::Busy {
                retry_after: Some(secs),
            })) => vec![("retry-after", secs.to_string())],
            _ => Vec::new(),
        }
    }

    /// Whether this is a server-side failure to log at `error` level (with
    /// its causes) rather than a refusal of the client.
    pub fn is_server_fault(&self) -> bool {
        matches!(self.status().as_u16(), 500..=599)
    }
}

/// The error body every adapter renders: `{"error","message"}` (and
/// `max_age` for `step_up_required`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine code.
    pub error: String,
    /// One sentence for humans.
    pub message: String,
    /// Step-up window in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

/// Logs a flow error once, with its causes, at a level fitting its class.
/// Secrets never reach here: errors hold none.
pub fn log_error(e: &FlowError) {
    struct Chain<'a>(&'a dyn std::error::Error);
    impl fmt::Display for Chain<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let mut cur = self.0.source();
            while let Some(s) = cur {
                write!(f, ": {s}")?;
                cur = s.source();
            }
            Ok(())
        }
    }
    if e.is_server_fault() {
        tracing::error!(code = e.code(), "{e}{}", Chain(e));
    } else {
        tracing::info!(code = e.code(), "{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let cases: Vec<(FlowError, u16, &str)> = vec![
            (FlowError::NotSignedIn, 401, "not_authenticated"),
            (
                FlowError::StepUpRequired { max_age: 60 },
                401,
                "step_up_required",
            ),
            (
                FlowError::UnknownAuthenticator,
                401,
                "unknown_authenticator",
            ),
            (FlowError::WrongUser, 403, "wrong_user"),
            (FlowError::Conflict, 409, "conflict"),
            (
                FlowError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (FlowError::PayloadTooLarge, 413, "payload_too_large"),
            (FlowError::ForbiddenOrigin, 403, "forbidden_origin"),
            (FlowError::Throttled { retry_after: 3 }, 429, "throttled"),
            (FlowError::InvalidCode, 401, "invalid_code"),
            (
                FlowError::CodeAttemptsExceeded,
                429,
                "code_attempts_exceeded",
            ),
            (FlowError::InvalidEmail, 400, "invalid_email"),
            (Rejection::Replayed.into(), 401, "replayed"),
            (Rejection::UserNotVerified.into(), 401, "user_not_verified"),
            (Rejection::CredentialExists.into(), 409, "credential_exists"),
            (
                ProviderError::Upstream(UpstreamError::Timeout).into(),
                504,
                "upstream_timeout",
            ),
            (
                ProviderError::Upstream(UpstreamError::Unavailable(None)).into(),
                503,
                "upstream_unavailable",
            ),
            (
                StoreError::backend("db down").into(),
                503,
                "store_unavailable",
            ),
            (
                FlowError::SessionUnavailable("x".into()),
                503,
                "session_unavailable",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.code(), code, "{e:?}");
        }
    }

    #[test]
    fn an_unverified_user_counts_for_the_throttle() {
        assert!(crate::throttle::counts_as_failure(
            &Rejection::UserNotVerified.into()
        ));
    }

    #[test]
    fn bodies_never_carry_causes() {
        let marker = "SECRET-MARKER-42";
        let e = FlowError::Store(StoreError::backend(marker));
        let body = serde_json::to_string(&e.body()).unwrap();
        assert!(!body.contains(marker), "{body}");
        let e = FlowError::SessionUnavailable(marker.into());
        assert!(!serde_json::to_string(&e.body()).unwrap().contains(marker));
    }

    #[test]
    fn step_up_body_and_header() {
        let e = FlowError::StepUpRequired { max_age: 60 };
        let body = serde_json::to_value(e.body()).unwrap();
        assert_eq!(body["error"], "step_up_required");
        assert_eq!(body["max_age"], 60);
        let h = e.headers();
        assert_eq!(h[0].0, "www-authenticate");
        assert!(
            h[0].1
                .contains("error=\"insufficient_user_authentication\"")
        );
        assert!(h[0].1.contains("max_age=60"));
    }
}

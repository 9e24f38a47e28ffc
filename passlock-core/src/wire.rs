//! JSON bodies of the app-facing HTTP contract (DESIGN section 5).

use serde::{Deserialize, Serialize};

use crate::clock::UnixMillis;
use crate::id::{AuthenticatorId, TenancyId};
use crate::state::{AuthMethod, AuthState};

// The error body is defined with the errors (a lower layer) and re-exported
// here with the other bodies.
pub use crate::error::ErrorBody;

/// `POST {prefix}/registration/authorize` body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRegistrationBody {
    /// The username for a sign-up; ignored when signed in.
    #[serde(default)]
    pub username: Option<String>,
}

/// The answer of an authorize route. `Debug` hides the one-time tokens.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeAnswer {
    /// For registrations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_token: Option<String>,
    /// For authentications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_token: Option<String>,
    /// When the token expires (epoch ms).
    pub expires_at: UnixMillis,
    /// Where the browser runs the ceremony (`{endpoint}/v2/{tenancyId}/...`).
    pub endpoint: String,
    /// The tenancy.
    pub tenancy_id: TenancyId,
}

impl std::fmt::Debug for AuthorizeAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |t: &Option<String>| t.as_ref().map(|_| "[redacted]");
        f.debug_struct("AuthorizeAnswer")
            .field("registration_token", &redacted(&self.registration_token))
            .field(
                "authentication_token",
                &redacted(&self.authentication_token),
            )
            .field("expires_at", &self.expires_at)
            .field("endpoint", &self.endpoint)
            .field("tenancy_id", &self.tenancy_id)
            .finish()
    }
}

/// `201` of `/register`, `200` of `/login` and `/step-up`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIn {
    /// The app's user id, as text.
    pub user_id: String,
    /// The passkey used.
    pub authenticator_id: AuthenticatorId,
}

/// `GET {prefix}/session`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionView {
    /// The app's user id, as text.
    pub user_id: String,
    /// The passkey last used.
    pub authenticator_id: Option<AuthenticatorId>,
    /// When the session was signed in (epoch ms).
    pub authenticated_at: UnixMillis,
    /// When a passkey was last verified (epoch ms).
    pub verified_at: Option<UnixMillis>,
    /// Methods used.
    pub amr: Vec<AuthMethod>,
    /// A first factor is recorded and a passkey step-up must complete it.
    #[serde(default)]
    pub second_factor_pending: bool,
}

impl<U: std::fmt::Display> From<&AuthState<U>> for SessionView {
    fn from(s: &AuthState<U>) -> Self {
        Self {
            user_id: s.user_id.to_string(),
            authenticator_id: s.authenticator_id.clone(),
            authenticated_at: s.authenticated_at,
            verified_at: s.verified_at,
            amr: s.amr.clone(),
            second_factor_pending: s.is_partial(),
        }
    }
}

/// One entry of `GET {prefix}/passkeys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyView {
    /// The passkey.
    pub authenticator_id: AuthenticatorId,
    /// When it was linked (epoch ms).
    pub created_at: UnixMillis,
    /// When it was last used (epoch ms).
    pub last_used_at: Option<UnixMillis>,
    /// Whether it is the one used in this session.
    pub current: bool,
}

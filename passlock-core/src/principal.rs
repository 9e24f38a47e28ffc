//! What a provider proves: [`Principal`]. The hosted service's wire form of
//! it is [`ExtendedPrincipal`](crate::provider::v2::ExtendedPrincipal).

use crate::clock::UnixMillis;
use crate::id::{AuthenticatorId, UserHandle};

/// A verified passkey ceremony, whatever provider proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Principal {
    /// The passkey that was used; what the app links to a user.
    pub authenticator_id: AuthenticatorId,
    /// The provider-side user id fixed when the ceremony was authorized.
    pub user_handle: UserHandle,
    /// Whether the authenticator verified the user (biometrics, PIN).
    pub user_verified: bool,
    /// When the ceremony happened.
    pub authenticated_at: UnixMillis,
}

impl Principal {
    /// A principal.
    pub fn new(
        authenticator_id: AuthenticatorId,
        user_handle: UserHandle,
        user_verified: bool,
        authenticated_at: UnixMillis,
    ) -> Self {
        Self {
            authenticator_id,
            user_handle,
            user_verified,
            authenticated_at,
        }
    }
}

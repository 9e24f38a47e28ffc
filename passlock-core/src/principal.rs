//! What a provider proves: [`Principal`], and the hosted service's wire form
//! [`ExtendedPrincipal`].

use serde::{Deserialize, Serialize};

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

/// The `passkey` object of an [`ExtendedPrincipal`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyFlags {
    /// The authenticator verified the user.
    pub user_verified: bool,
    /// The service verified the ceremony.
    pub verified: bool,
    /// e.g. "iCloud Keychain".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_name: Option<String>,
}

/// The `metadata` object of an [`ExtendedPrincipal`] (required on the wire,
/// its fields optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalMetadata {
    /// The browser's address as the service saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// The browser's user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// The answer of a code exchange (`GET /v2/{tenancyId}/principal/{code}`),
/// exactly as on the wire: `_tag`, camelCase, epoch milliseconds. Unknown
/// fields are accepted; a missing required one fails deserialisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtendedPrincipal {
    /// Always `"ExtendedPrincipal"`.
    #[serde(rename = "_tag")]
    pub tag: String,
    /// The principal's own id.
    pub id: String,
    /// The user id fixed at authorize time.
    pub user_id: UserHandle,
    /// The passkey used.
    pub authenticator_id: AuthenticatorId,
    /// `"passkey"`.
    pub authenticator_type: String,
    /// Passkey flags, when the authenticator is a passkey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<PasskeyFlags>,
    /// When the ceremony happened (epoch ms).
    pub created_at: UnixMillis,
    /// When this principal (and its code) expires (epoch ms).
    pub expires_at: UnixMillis,
    /// Request metadata.
    pub metadata: PrincipalMetadata,
}

impl ExtendedPrincipal {
    /// The tag value on the wire.
    pub const TAG: &'static str = "ExtendedPrincipal";

    /// The provider-independent principal.
    pub fn to_principal(&self) -> Principal {
        Principal {
            authenticator_id: self.authenticator_id.clone(),
            user_handle: self.user_id.clone(),
            user_verified: self.passkey.as_ref().is_some_and(|p| p.user_verified),
            authenticated_at: self.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_wire_form_with_unknown_fields() {
        let json = r#"{"_tag":"ExtendedPrincipal","id":"p1","userId":"u1","authenticatorId":"a1",
            "authenticatorType":"passkey","passkey":{"userVerified":true,"verified":true,"extra":1},
            "createdAt":1700000000000,"expiresAt":1700000300000,"metadata":{},"newField":"x"}"#;
        let p: ExtendedPrincipal = serde_json::from_str(json).unwrap();
        assert_eq!(p.authenticator_id.as_str(), "a1");
        assert!(p.to_principal().user_verified);
        assert_eq!(p.to_principal().authenticated_at, 1_700_000_000_000);
    }

    #[test]
    fn missing_metadata_is_an_error() {
        let json = r#"{"_tag":"ExtendedPrincipal","id":"p1","userId":"u1","authenticatorId":"a1",
            "authenticatorType":"passkey","createdAt":1,"expiresAt":2}"#;
        assert!(serde_json::from_str::<ExtendedPrincipal>(json).is_err());
    }

    #[test]
    fn passkey_is_optional() {
        let json = r#"{"_tag":"ExtendedPrincipal","id":"p1","userId":"u1","authenticatorId":"a1",
            "authenticatorType":"passkey","createdAt":1,"expiresAt":2,"metadata":{"ipAddress":"1.2.3.4"}}"#;
        let p: ExtendedPrincipal = serde_json::from_str(json).unwrap();
        assert!(!p.to_principal().user_verified);
    }
}

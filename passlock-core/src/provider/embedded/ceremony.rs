//! Server-side ceremony records of the embedded provider. Everything here
//! lives only in the [`CeremonyStore`](super::CeremonyStore): none of these
//! types is public, so nothing outside the provider can (de)serialise the
//! webauthn-rs-core state. The state is only ever serialised whole, as
//! webauthn-rs-core's own serde form: no field of it is read or written here.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{Uuid, WebauthnError};
use webauthn_rs_core::proto::{AuthenticationState, RegistrationState};

use crate::error::Rejection;
use crate::id::UserHandle;

/// Key kinds in the ceremony store.
pub(crate) const REGISTRATION_TOKEN: &str = "reg-token";
pub(crate) const AUTHENTICATION_TOKEN: &str = "auth-token";
pub(crate) const SESSION: &str = "session";
pub(crate) const CODE: &str = "code";
pub(crate) const ID_TOKEN: &str = "id-token";

/// The store key of a secret: its kind and the SHA-256 of the secret, so a
/// leaked store does not leak live tokens.
pub(crate) fn store_key(kind: &str, secret: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    format!("{kind}:{}", URL_SAFE_NO_PAD.encode(digest))
}

/// The WebAuthn `user.id` of a user handle: a UUID derived from the SHA-256
/// of the handle (webauthn-rs identifies users by UUID).
pub(crate) fn user_uuid(user: &UserHandle) -> Uuid {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, user.as_str().as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    // Mark it as a version-8 (custom) UUID, variant RFC 4122.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// An approved registration (behind a registration token).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RegistrationGrant {
    pub(crate) user: UserHandle,
    pub(crate) username: String,
    pub(crate) display_name: Option<String>,
    pub(crate) exclude: Vec<String>,
    /// The name the user gave the passkey.
    #[serde(default)]
    pub(crate) passkey_name: Option<String>,
    /// Conditional creation (automatic passkey upgrade).
    #[serde(default)]
    pub(crate) conditional: bool,
}

/// An approved authentication (behind an authentication token).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AuthenticationGrant {
    pub(crate) allow: Option<Vec<String>>,
    /// Conditional mediation (autofill sign-in).
    #[serde(default)]
    pub(crate) conditional: bool,
}

/// The registration state of a running ceremony, stored as
/// `{"rs": <webauthn-rs-core state>}` (the form webauthn-rs 0.6's own
/// `PasskeyRegistration` had, so ceremonies started before this type
/// existed still finish).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RegistrationRecord {
    pub(crate) rs: RegistrationState,
}

/// The authentication state of a running ceremony, stored as
/// `{"ast": <webauthn-rs-core state>}` (the form of webauthn-rs 0.6's
/// `PasskeyAuthentication` and `DiscoverableAuthentication`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AuthenticationRecord {
    pub(crate) ast: AuthenticationState,
}

/// A running ceremony (behind a session token).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum CeremonyState {
    Registration {
        user: UserHandle,
        username: String,
        #[serde(default)]
        passkey_name: Option<String>,
        state: RegistrationRecord,
    },
    Discoverable {
        state: AuthenticationRecord,
    },
    Restricted {
        allow: Vec<String>,
        state: AuthenticationRecord,
    },
}

/// Maps a webauthn-rs verification error to a typed rejection.
pub(crate) fn rejection_of(e: &WebauthnError) -> Rejection {
    match e {
        WebauthnError::InvalidRPOrigin | WebauthnError::CredentialCrossOrigin => {
            Rejection::OriginMismatch
        }
        WebauthnError::InvalidRPIDHash => Rejection::RpIdMismatch,
        WebauthnError::UserNotVerified => Rejection::UserNotVerified,
        WebauthnError::CredentialPossibleCompromise => Rejection::CounterRegressed,
        WebauthnError::CredentialNotFound => Rejection::UnknownCredential,
        WebauthnError::ParseCBORFailure(_)
        | WebauthnError::ParseJSONFailure(_)
        | WebauthnError::ParseNOMFailure => Rejection::Malformed,
        _ => Rejection::CeremonyFailed,
    }
}

//! Server-side ceremony records of the embedded provider. Everything here
//! lives only in the [`CeremonyStore`](super::CeremonyStore): none of these
//! types is public, so nothing outside the provider can (de)serialise the
//! webauthn-rs state.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{Uuid, WebauthnError};

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

/// A running ceremony (behind a session token). The webauthn-rs state is
/// kept as its JSON form.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum CeremonyState {
    Registration {
        user: UserHandle,
        username: String,
        #[serde(default)]
        passkey_name: Option<String>,
        state: serde_json::Value,
    },
    Discoverable {
        state: serde_json::Value,
    },
    Restricted {
        allow: Vec<String>,
        state: serde_json::Value,
    },
}

/// Sets the user verification policy of a serialised webauthn-rs ceremony
/// state (`{"rs":{"policy":..}}` or `{"ast":{"policy":..}}`) to
/// `preferred`.
///
/// webauthn-rs 0.6 offers no public way to run a passkey or discoverable
/// ceremony without required user verification (`start_passkey_*` and
/// `start_discoverable_authentication` fix it to `required`; none of its
/// features changes that), so this is the one place that edits its
/// serialised state, for [`EmbeddedConfig::user_verification_required`]
/// `false` only. It fails closed: a state without that field (a webauthn-rs
/// upgrade changed the layout) is an error, never a ceremony silently run
/// with another policy. The unit test below and the embedded
/// `user_verification_optional` scenario fail when the layout or the
/// behaviour changes.
///
/// [`EmbeddedConfig::user_verification_required`]: super::EmbeddedConfig::user_verification_required
pub(crate) fn relax_policy(state: &mut serde_json::Value) -> Result<(), &'static str> {
    let mut relaxed = false;
    for inner in ["rs", "ast"] {
        if let Some(obj) = state.get_mut(inner).and_then(|v| v.as_object_mut())
            && let Some(policy) = obj.get_mut("policy")
        {
            *policy = serde_json::json!("preferred");
            relaxed = true;
        }
    }
    if relaxed {
        Ok(())
    } else {
        Err("webauthn-rs ceremony state has no user verification policy")
    }
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

#[cfg(test)]
mod tests {
    use webauthn_rs::WebauthnBuilder;
    use webauthn_rs::prelude::{DiscoverableAuthentication, PasskeyRegistration, Url, Uuid};

    use super::relax_policy;

    /// Pins the webauthn-rs state layout `relax_policy` relies on: the
    /// policy is where it is looked for, is `required` before, and the
    /// relaxed state still reads as webauthn-rs's own type.
    #[test]
    fn relaxed_states_keep_their_shape() {
        let origin = Url::parse("http://localhost:3000").unwrap();
        let webauthn = WebauthnBuilder::new("localhost", &origin)
            .unwrap()
            .build()
            .unwrap();
        let (_, reg) = webauthn
            .start_passkey_registration(Uuid::from_u128(1), "bob", "Bob", None)
            .unwrap();
        let mut state = serde_json::to_value(&reg).unwrap();
        assert_eq!(state["rs"]["policy"], "required");
        relax_policy(&mut state).unwrap();
        assert_eq!(state["rs"]["policy"], "preferred");
        serde_json::from_value::<PasskeyRegistration>(state).unwrap();

        let (_, auth) = webauthn.start_discoverable_authentication().unwrap();
        let mut state = serde_json::to_value(&auth).unwrap();
        assert_eq!(state["ast"]["policy"], "required");
        relax_policy(&mut state).unwrap();
        assert_eq!(state["ast"]["policy"], "preferred");
        serde_json::from_value::<DiscoverableAuthentication>(state).unwrap();

        // A layout without the field fails closed.
        let mut other = serde_json::json!({ "rs": { "strict": true } });
        assert!(relax_policy(&mut other).is_err());
    }
}

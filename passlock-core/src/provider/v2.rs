//! The Passlock REST API v2 wire (DESIGN section 6), in both directions, as
//! types.
//!
//! Everything that crosses the wire of the hosted Passlock service is
//! declared here once: the request and answer bodies, the `_tag` of every
//! object ([`Tag`]) and the typed error body ([`ErrorBody`], tagged
//! `@error/<Name>`, [`ErrorTag`]). Three parties are built on it, so the
//! compiler keeps them in step:
//!
//! * the hosted client ([`PasslockClient`](super::passlock::PasslockClient))
//!   sends the request types and decodes the answers;
//! * the embedded provider's browser-facing server
//!   ([`EmbeddedProvider::handle`](super::embedded::EmbeddedProvider::handle))
//!   answers [`OptionsAnswer`], [`CeremonySuccess`] and [`ErrorBody`], the
//!   hosted service's bodies;
//! * the test kit's fake Passlock answers every body of this module.
//!
//! Golden JSON fixtures written by hand from the documented wire formats
//! (`passlock-core/tests/fixtures/v2`) check the serde attributes here
//! against the documentation, not against themselves.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::clock::UnixMillis;
use crate::id::{AuthenticatorId, ChallengeId, PasskeyId, UserHandle};
use crate::principal::Principal;
use crate::secret::{
    AuthenticationToken, ChallengeSecret, Code, IdToken, RegistrationToken, SessionToken,
    VaultToken,
};

/// The `@error/` prefix of error tags.
pub const ERROR_TAG_PREFIX: &str = "@error/";

// ---------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------

macro_rules! names {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $variant:ident,)* } other: $(#[$om:meta])* $other:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        $vis enum $name {
            $($(#[$vm])* $variant,)*
            $(#[$om])*
            $other(String),
        }

        impl $name {
            /// The name on the wire (for an error tag, the part after `@error/`).
            pub fn name(&self) -> &str {
                match self {
                    $(Self::$variant => stringify!($variant),)*
                    Self::$other(name) => name,
                }
            }

            /// The value of `name`. A name this crate does not know is kept,
            /// reduced to at most 64 letters, digits and `_` (it may reach
            /// logs).
            pub fn from_name(name: &str) -> Self {
                match name {
                    $(stringify!($variant) => Self::$variant,)*
                    other => Self::$other(
                        other
                            .chars()
                            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .take(64)
                            .collect(),
                    ),
                }
            }
        }
    };
}

names! {
    /// The name of a typed error (`{"_tag":"@error/<Name>"}`).
    pub enum ErrorTag {
        /// Missing or bad API key (401).
        Unauthorized,
        /// The key is not allowed on this tenancy (403); the embedded server
        /// also answers it for a refused ceremony.
        Forbidden,
        /// The code is unknown, expired or already used (404).
        InvalidCode,
        /// The principal is not valid.
        InvalidPrincipal,
        /// The challenge (or, on the browser routes, the token) is unknown,
        /// used or expired.
        InvalidChallenge,
        /// The one-time code of a challenge is wrong.
        InvalidChallengeCode,
        /// The challenge expired.
        ChallengeExpired,
        /// Too many wrong codes for this challenge.
        ChallengeAttemptsExceeded,
        /// Too many challenges (429, with `retryAfterSeconds`).
        ChallengeRateLimited,
        /// The tenancy is unknown or disabled.
        InvalidTenancy,
        /// The passkey is not (or no longer) in the vault (with
        /// `credentialId` and `rpId`).
        PasskeyNotFound,
        /// The resource does not exist.
        NotFound,
        /// The email address is not valid.
        InvalidEmail,
        /// The email address is already used.
        DuplicateEmail,
        /// The request was refused as malformed.
        BadRequest,
        /// A store of the embedded server failed (503; not a tag of the
        /// hosted service).
        Unavailable,
    }
    other:
    /// A name this crate does not know.
    Other
}

names! {
    /// The `_tag` of a successful answer object.
    pub enum SuccessTag {
        /// [`ExtendedPrincipal`].
        ExtendedPrincipal,
        /// [`AuthorizedPasskeyRegistration`].
        AuthorizedPasskeyRegistration,
        /// [`AuthorizedPasskeyAuthentication`].
        AuthorizedPasskeyAuthentication,
        /// [`CeremonySuccess`] of a registration.
        RegistrationSuccess,
        /// [`CeremonySuccess`] of an authentication.
        AuthenticationSuccess,
        /// [`FindAllPasskeys`].
        FindAllPasskeys,
        /// [`PasskeySummary`].
        PasskeySummary,
        /// [`Passkey`].
        Passkey,
        /// [`PreparedPasskeyOperation`] of `/passkeys/update`.
        PreparedPasskeyUpdate,
        /// [`PreparedPasskeyOperation`] of `/passkeys/delete`.
        PreparedPasskeyDelete,
        /// [`PreparedPasskeyOperation`] of `/passkeys/prune`.
        PreparedPasskeyPrune,
        /// [`ChallengeCreated`].
        ChallengeCreated,
        /// [`Challenge`].
        Challenge,
        /// [`ChallengeVerified`].
        ChallengeVerified,
        /// [`ChallengeDeleted`].
        ChallengeDeleted,
    }
    other:
    /// A tag this crate does not know.
    Unknown
}

/// Every `_tag` value of the v2 wire: an answer's, or `@error/<Name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Tag {
    /// The tag of a successful answer.
    Success(SuccessTag),
    /// `@error/<Name>`.
    Error(ErrorTag),
}

impl Tag {
    /// Parses a `_tag` value.
    pub fn parse(tag: &str) -> Self {
        match tag.strip_prefix(ERROR_TAG_PREFIX) {
            Some(name) => Self::Error(ErrorTag::from_name(name)),
            None => Self::Success(SuccessTag::from_name(tag)),
        }
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Success(tag) => f.write_str(tag.name()),
            Self::Error(tag) => write!(f, "{ERROR_TAG_PREFIX}{}", tag.name()),
        }
    }
}

impl From<SuccessTag> for Tag {
    fn from(tag: SuccessTag) -> Self {
        Self::Success(tag)
    }
}

impl From<ErrorTag> for Tag {
    fn from(tag: ErrorTag) -> Self {
        Self::Error(tag)
    }
}

impl PartialEq<&str> for Tag {
    fn eq(&self, other: &&str) -> bool {
        match (self, other.strip_prefix(ERROR_TAG_PREFIX)) {
            (Self::Error(tag), Some(name)) => tag.name() == name,
            (Self::Success(tag), None) => tag.name() == *other,
            _ => false,
        }
    }
}

impl PartialEq<&str> for SuccessTag {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::parse(&raw))
    }
}

impl Serialize for SuccessTag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for SuccessTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(d)?;
        // An error tag is not an answer's tag: keep it whole, so it never
        // equals a known one.
        Ok(match Tag::parse(&raw) {
            Tag::Success(tag) => tag,
            Tag::Error(_) => Self::Unknown(raw.into_owned()),
        })
    }
}

/// An answer object with a `_tag`.
pub trait Tagged {
    /// The tag every value of this type carries on the wire.
    const TAG: SuccessTag;
    /// The tag this value carries.
    fn tag(&self) -> &SuccessTag;
}

macro_rules! tagged {
    ($($t:ty => $tag:ident),* $(,)?) => {$(
        impl Tagged for $t {
            const TAG: SuccessTag = SuccessTag::$tag;
            fn tag(&self) -> &SuccessTag { &self.tag }
        }
    )*};
}

tagged!(
    ExtendedPrincipal => ExtendedPrincipal,
    AuthorizedPasskeyRegistration => AuthorizedPasskeyRegistration,
    AuthorizedPasskeyAuthentication => AuthorizedPasskeyAuthentication,
    FindAllPasskeys => FindAllPasskeys,
    Passkey => Passkey,
    ChallengeCreated => ChallengeCreated,
    Challenge => Challenge,
    ChallengeVerified => ChallengeVerified,
    ChallengeDeleted => ChallengeDeleted,
);

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A typed error body: `{"_tag":"@error/<Name>","message", ...}`.
///
/// Reading is lenient, as clients branch on the tag only: a missing or
/// non-string `message` is empty, an extra field of the wrong type is
/// absent. A `_tag` without the `@error/` prefix is not an error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ErrorBody {
    /// The error (serialised as `@error/<Name>`).
    #[serde(rename = "_tag", serialize_with = "error_tag")]
    pub tag: ErrorTag,
    /// One sentence for humans.
    pub message: String,
    /// The [`Rejection`](crate::error::Rejection) code; only the embedded
    /// server sends it (an addition to the hosted form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `ChallengeRateLimited`: seconds until a new challenge may be created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// `PasskeyNotFound`: the WebAuthn credential id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// `PasskeyNotFound`: the relying party id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rp_id: Option<String>,
}

fn error_tag<S: Serializer>(tag: &ErrorTag, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{ERROR_TAG_PREFIX}{}", tag.name()))
}

impl ErrorBody {
    /// An error body with `message` and no extra field.
    pub fn new(tag: ErrorTag, message: impl Into<String>) -> Self {
        Self {
            tag,
            message: message.into(),
            code: None,
            retry_after_seconds: None,
            credential_id: None,
            rp_id: None,
        }
    }

    /// Reads an error body from a JSON object; `None` when its `_tag` is not
    /// an error tag.
    pub fn from_object(body: &Map<String, Value>) -> Option<Self> {
        let name = body.get("_tag")?.as_str()?.strip_prefix(ERROR_TAG_PREFIX)?;
        let string = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            tag: ErrorTag::from_name(name),
            message: string("message").unwrap_or_default(),
            code: string("code"),
            retry_after_seconds: body.get("retryAfterSeconds").and_then(Value::as_u64),
            credential_id: string("credentialId"),
            rp_id: string("rpId"),
        })
    }
}

impl<'de> Deserialize<'de> for ErrorBody {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let body = Map::<String, Value>::deserialize(d)?;
        Self::from_object(&body)
            .ok_or_else(|| serde::de::Error::custom("not an @error/ tagged body"))
    }
}

// ---------------------------------------------------------------------------
// Server-side calls (API key)
// ---------------------------------------------------------------------------

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
    pub tag: SuccessTag,
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

/// `POST /passkey/registration/authorize` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthorizeRegistration {
    /// The relying party id (the app's domain).
    pub rp_id: String,
    /// The relying party name shown by authenticators.
    pub rp_name: String,
    /// The user id the passkey is created for.
    pub user_id: UserHandle,
    /// The username.
    pub username: String,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Passkeys not to create again on the same authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_credentials: Option<Vec<String>>,
    /// `required`, `preferred` or `discouraged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<String>,
    /// Ceremony timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

impl AuthorizeRegistration {
    /// A registration for `user_id` named `username`.
    pub fn new(
        rp_id: impl Into<String>,
        rp_name: impl Into<String>,
        user_id: UserHandle,
        username: impl Into<String>,
    ) -> Self {
        Self {
            rp_id: rp_id.into(),
            rp_name: rp_name.into(),
            user_id,
            username: username.into(),
            display_name: None,
            exclude_credentials: None,
            user_verification: None,
            timeout: None,
        }
    }
}

/// `AuthorizedPasskeyRegistration`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthorizedPasskeyRegistration {
    /// `"AuthorizedPasskeyRegistration"`.
    #[serde(rename = "_tag")]
    pub tag: SuccessTag,
    /// The one-time token for the browser.
    pub registration_token: RegistrationToken,
    /// When it expires (epoch ms).
    pub expires_at: UnixMillis,
}

impl AuthorizedPasskeyRegistration {
    /// An approved registration.
    pub fn new(registration_token: RegistrationToken, expires_at: UnixMillis) -> Self {
        Self {
            tag: Self::TAG,
            registration_token,
            expires_at,
        }
    }
}

/// `POST /passkey/authentication/authorize` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthorizeAuthentication {
    /// The relying party id.
    pub rp_id: String,
    /// Restrict to this user's passkeys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// Restrict to these passkeys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<Vec<String>>,
    /// `required`, `preferred` or `discouraged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<String>,
    /// Ceremony timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Whether a discoverable (usernameless) passkey is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discoverable: Option<bool>,
    /// WebAuthn mediation (`conditional`, `optional`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mediation: Option<String>,
}

impl AuthorizeAuthentication {
    /// An authentication for `rp_id`.
    pub fn new(rp_id: impl Into<String>) -> Self {
        Self {
            rp_id: rp_id.into(),
            ..Self::default()
        }
    }
}

/// `AuthorizedPasskeyAuthentication`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthorizedPasskeyAuthentication {
    /// `"AuthorizedPasskeyAuthentication"`.
    #[serde(rename = "_tag")]
    pub tag: SuccessTag,
    /// The one-time token for the browser.
    pub authentication_token: AuthenticationToken,
    /// When it expires (epoch ms).
    pub expires_at: UnixMillis,
}

impl AuthorizedPasskeyAuthentication {
    /// An approved authentication.
    pub fn new(authentication_token: AuthenticationToken, expires_at: UnixMillis) -> Self {
        Self {
            tag: Self::TAG,
            authentication_token,
            expires_at,
        }
    }
}

/// One passkey in a vault listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PasskeySummary {
    /// `"PasskeySummary"`.
    #[serde(rename = "_tag")]
    pub tag: SuccessTag,
    /// The passkey id (the `authenticatorId` of principals).
    pub id: PasskeyId,
    /// The user it was registered for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// When it was created (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<UnixMillis>,
    /// Fields this client does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PasskeySummary {
    /// A summary (for fakes and tests).
    pub fn new(id: PasskeyId, user_id: Option<UserHandle>, created_at: Option<UnixMillis>) -> Self {
        Self {
            tag: SuccessTag::PasskeySummary,
            id,
            user_id,
            created_at,
            extra: Map::new(),
        }
    }
}

/// One page of `GET /passkeys/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FindAllPasskeys {
    /// `"FindAllPasskeys"`.
    #[serde(rename = "_tag")]
    pub tag: SuccessTag,
    /// The cursor of the next page; `null` on the last page.
    pub cursor: Option<String>,
    /// The passkeys of this page.
    pub records: Vec<PasskeySummary>,
}

impl FindAllPasskeys {
    /// A page.
    pub fn new(cursor: Option<String>, records: Vec<PasskeySummary>) -> Self {
        Self {
            tag: Self::TAG,
            cursor,
            records,
        }
    }
}

/// A passkey in the vault (`GET /passkeys/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Passkey {
    /// `"Passkey"`.
    #[serde(rename = "_tag")]
    pub tag: SuccessTag,
    /// The passkey id.
    pub id: PasskeyId,
    /// The user it was registered for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// The username shown by authenticators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// When it was created (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<UnixMillis>,
    /// When it was last used (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<UnixMillis>,
    /// Fields this client does not model (credential, platform, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Passkey {
    /// A passkey (for fakes and tests).
    pub fn new(id: PasskeyId, user_id: Option<UserHandle>, username: Option<String>) -> Self {
        Self {
            tag: SuccessTag::Passkey,
            id,
            user_id,
            username,
            created_at: None,
            last_used: None,
            extra: Map::new(),
        }
    }
}

/// `POST /passkeys/update` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PrepareUpdate {
    /// The user whose passkeys are renamed.
    pub user_id: UserHandle,
    /// The new username.
    pub username: String,
    /// The new display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl PrepareUpdate {
    /// Renames `user_id`'s passkeys.
    pub fn new(user_id: UserHandle, username: impl Into<String>) -> Self {
        Self {
            user_id,
            username: username.into(),
            display_name: None,
        }
    }
}

/// `POST /passkeys/delete` body: exactly one of the two forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum DeleteTarget {
    /// These passkeys.
    Passkeys {
        /// The passkeys.
        #[serde(rename = "passkeyIds")]
        passkey_ids: Vec<PasskeyId>,
    },
    /// Every passkey of this user.
    User {
        /// The user.
        #[serde(rename = "userId")]
        user_id: UserHandle,
    },
}

/// `POST /passkeys/prune` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PrunePasskeys {
    /// The user whose passkeys are pruned.
    pub user_id: UserHandle,
}

impl PrunePasskeys {
    /// Prunes `user_id`'s passkeys.
    pub fn new(user_id: UserHandle) -> Self {
        Self { user_id }
    }
}

/// A warning of a prepared vault operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VaultWarning {
    /// A machine code.
    pub code: String,
    /// A human sentence.
    pub message: String,
    /// The passkey concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey_id: Option<PasskeyId>,
}

impl VaultWarning {
    /// A warning.
    pub fn new(
        code: impl Into<String>,
        message: impl Into<String>,
        passkey_id: Option<PasskeyId>,
    ) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            passkey_id,
        }
    }
}

/// The `202` answer of `POST /passkeys/{update,delete,prune}`: a token the
/// browser exchanges to finish the operation on the device. The token is
/// named after the operation on the wire (`updateToken`, `deleteToken`,
/// `pruneToken`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PreparedPasskeyOperation {
    /// `PreparedPasskeyUpdate`, `PreparedPasskeyDelete` or `PreparedPasskeyPrune`.
    pub tag: SuccessTag,
    /// The `updateToken`, `deleteToken` or `pruneToken`.
    pub token: VaultToken,
    /// When the token expires (epoch ms).
    pub expires_at: UnixMillis,
    /// Warnings (e.g. a passkey that was already gone).
    pub warnings: Vec<VaultWarning>,
}

impl PreparedPasskeyOperation {
    /// A prepared operation; `tag` names it (and its token's field).
    pub fn new(tag: SuccessTag, token: VaultToken, expires_at: UnixMillis) -> Self {
        Self {
            tag,
            token,
            expires_at,
            warnings: Vec::new(),
        }
    }

    /// Whether the tag is one of the three prepared operations.
    pub fn is_prepared(&self) -> bool {
        matches!(
            self.tag,
            SuccessTag::PreparedPasskeyUpdate
                | SuccessTag::PreparedPasskeyDelete
                | SuccessTag::PreparedPasskeyPrune
        )
    }

    fn token_field(&self) -> &'static str {
        match self.tag {
            SuccessTag::PreparedPasskeyDelete => "deleteToken",
            SuccessTag::PreparedPasskeyPrune => "pruneToken",
            _ => "updateToken",
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreparedWire {
    #[serde(rename = "_tag")]
    tag: SuccessTag,
    #[serde(alias = "updateToken", alias = "deleteToken", alias = "pruneToken")]
    token: VaultToken,
    expires_at: UnixMillis,
    #[serde(default)]
    warnings: Vec<VaultWarning>,
}

impl Serialize for PreparedPasskeyOperation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("_tag", &self.tag)?;
        map.serialize_entry(self.token_field(), &self.token)?;
        map.serialize_entry("expiresAt", &self.expires_at)?;
        map.serialize_entry("warnings", &self.warnings)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for PreparedPasskeyOperation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = PreparedWire::deserialize(d)?;
        Ok(Self {
            tag: wire.tag,
            token: wire.token,
            expires_at: wire.expires_at,
            warnings: wire.warnings,
        })
    }
}

/// `POST /challenges` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreateChallenge {
    /// Where the code is mailed.
    pub email: String,
    /// What the challenge is for (e.g. `login`).
    pub purpose: String,
    /// The recipient's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The user concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// Free metadata kept with the challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Invalidate the other pending challenges of this email and purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidate_others: Option<bool>,
    /// Skip the service's rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_rate_limit: Option<bool>,
    /// Whether the service mails the code itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_email: Option<bool>,
}

impl CreateChallenge {
    /// A challenge for `email` and `purpose`.
    pub fn new(email: impl Into<String>, purpose: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            purpose: purpose.into(),
            ..Self::default()
        }
    }
}

/// The mail of a created challenge (holds the code: `Debug` hides it).
#[derive(Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChallengeMessage {
    /// HTML body.
    pub html: String,
    /// Text body.
    pub text: String,
}

impl ChallengeMessage {
    /// A mail.
    pub fn new(html: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            html: html.into(),
            text: text.into(),
        }
    }
}

impl std::fmt::Debug for ChallengeMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeMessage([redacted])")
    }
}

/// A created challenge, with its secret and code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreatedChallenge {
    /// The challenge id.
    pub challenge_id: ChallengeId,
    /// The purpose.
    pub purpose: String,
    /// The email.
    pub email: String,
    /// The user concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// When it was created (epoch ms).
    pub created_at: UnixMillis,
    /// When it expires (epoch ms).
    pub expires_at: UnixMillis,
    /// The metadata.
    #[serde(default)]
    pub metadata: Value,
    /// The secret the app keeps (e.g. in its session) to verify later.
    pub secret: ChallengeSecret,
    /// The one-time code mailed to the user.
    pub code: ChallengeSecret,
    /// The mail.
    pub message: ChallengeMessage,
}

impl CreatedChallenge {
    /// The created form of `challenge`, with its secret, code and mail.
    pub fn new(
        challenge: &Challenge,
        secret: ChallengeSecret,
        code: ChallengeSecret,
        message: ChallengeMessage,
    ) -> Self {
        Self {
            challenge_id: challenge.challenge_id.clone(),
            purpose: challenge.purpose.clone(),
            email: challenge.email.clone(),
            user_id: challenge.user_id.clone(),
            created_at: challenge.created_at,
            expires_at: challenge.expires_at,
            metadata: challenge.metadata.clone(),
            secret,
            code,
            message,
        }
    }
}

/// `ChallengeCreated` (201).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChallengeCreated {
    /// `"ChallengeCreated"`.
    #[serde(rename = "_tag")]
    pub tag: SuccessTag,
    /// The challenge.
    pub challenge: CreatedChallenge,
}

impl ChallengeCreated {
    /// The answer of a created challenge.
    pub fn new(challenge: CreatedChallenge) -> Self {
        Self {
            tag: Self::TAG,
            challenge,
        }
    }
}

/// A pending challenge (no secret, no code).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Challenge {
    /// `"Challenge"`.
    #[serde(rename = "_tag")]
    pub tag: SuccessTag,
    /// The challenge id.
    pub challenge_id: ChallengeId,
    /// The purpose.
    pub purpose: String,
    /// The email.
    pub email: String,
    /// The user concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserHandle>,
    /// When it was created (epoch ms).
    pub created_at: UnixMillis,
    /// When it expires (epoch ms).
    pub expires_at: UnixMillis,
    /// The metadata.
    #[serde(default)]
    pub metadata: Value,
}

impl Challenge {
    /// A pending challenge without a user and with empty metadata.
    pub fn new(
        challenge_id: ChallengeId,
        purpose: impl Into<String>,
        email: impl Into<String>,
        created_at: UnixMillis,
        expires_at: UnixMillis,
    ) -> Self {
        Self {
            tag: Self::TAG,
            challenge_id,
            purpose: purpose.into(),
            email: email.into(),
            user_id: None,
            created_at,
            expires_at,
            metadata: Value::Object(Map::new()),
        }
    }
}

/// `POST /challenges/verify` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VerifyChallenge {
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// The secret from [`CreatedChallenge::secret`].
    pub secret: ChallengeSecret,
    /// The code the user typed.
    pub code: ChallengeSecret,
}

impl VerifyChallenge {
    /// A verification.
    pub fn new(challenge_id: ChallengeId, secret: ChallengeSecret, code: ChallengeSecret) -> Self {
        Self {
            challenge_id,
            secret,
            code,
        }
    }
}

/// `ChallengeVerified`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChallengeVerified {
    /// `"ChallengeVerified"`.
    #[serde(rename = "_tag")]
    pub tag: SuccessTag,
    /// The verified challenge (now consumed).
    pub challenge: Challenge,
}

impl ChallengeVerified {
    /// The answer of a verified challenge.
    pub fn new(challenge: Challenge) -> Self {
        Self {
            tag: Self::TAG,
            challenge,
        }
    }
}

/// `ChallengeDeleted`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChallengeDeleted {
    /// `"ChallengeDeleted"`.
    #[serde(rename = "_tag")]
    pub tag: SuccessTag,
    /// The deleted challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<ChallengeId>,
}

impl ChallengeDeleted {
    /// The answer of a deleted challenge.
    pub fn new(challenge_id: Option<ChallengeId>) -> Self {
        Self {
            tag: Self::TAG,
            challenge_id,
        }
    }
}

// ---------------------------------------------------------------------------
// Browser-facing calls (one-time tokens, no key)
// ---------------------------------------------------------------------------

/// `POST /passkey/registration/options` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RegistrationOptionsRequest {
    /// The token of an approved registration.
    pub registration_token: RegistrationToken,
}

/// `POST /passkey/authentication/options` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthenticationOptionsRequest {
    /// The token of an approved authentication.
    pub authentication_token: AuthenticationToken,
}

/// The answer of `POST /passkey/{registration,authentication}/options`
/// (untagged on the wire).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OptionsAnswer {
    /// Binds the browser to this ceremony's server-side state.
    pub session_token: SessionToken,
    /// The WebAuthn options (the inner `PublicKeyCredentialCreationOptions`
    /// or `...RequestOptions`, binary fields as base64url strings).
    #[serde(rename = "optionsJSON")]
    pub options_json: Value,
    /// WebAuthn mediation; authentication only (`optional`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mediation: Option<String>,
}

impl OptionsAnswer {
    /// The options of a registration.
    pub fn registration(session_token: SessionToken, options_json: Value) -> Self {
        Self {
            session_token,
            options_json,
            mediation: None,
        }
    }

    /// The options of an authentication (mediation `optional`).
    pub fn authentication(session_token: SessionToken, options_json: Value) -> Self {
        Self {
            session_token,
            options_json,
            mediation: Some("optional".to_owned()),
        }
    }
}

/// `POST /passkey/{registration,authentication}/verification` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VerificationRequest {
    /// The WebAuthn response (`PublicKeyCredential` as JSON).
    pub response: Value,
    /// The token of [`OptionsAnswer::session_token`].
    pub session_token: SessionToken,
    /// `idToken: true` asks the embedded provider for an id_token beside
    /// the code (an addition to the hosted wire, whose answers always carry
    /// one; see `EmbeddedConfig::id_tokens`). Left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub id_token: bool,
}

/// The `principal` of a [`CeremonySuccess`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CeremonyPrincipal {
    /// The passkey used or created.
    pub authenticator_id: AuthenticatorId,
    /// The user id fixed when the ceremony was authorized.
    pub user_id: UserHandle,
}

/// `RegistrationSuccess` or `AuthenticationSuccess`: the two proofs of a
/// ceremony. `Debug` hides them.
#[derive(Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CeremonySuccess {
    /// `RegistrationSuccess` or `AuthenticationSuccess`.
    #[serde(rename = "_tag")]
    pub tag: SuccessTag,
    /// Who signed in with which passkey.
    pub principal: CeremonyPrincipal,
    /// The signed id_token (its `jti` is the principal id of the code).
    /// The hosted service always sends one; the embedded provider only
    /// when asked (see `EmbeddedConfig::id_tokens`), and leaves the member
    /// out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    /// The single-use exchange code.
    pub code: Code,
}

impl std::fmt::Debug for CeremonySuccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CeremonySuccess")
            .field("tag", &self.tag)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl CeremonySuccess {
    /// A successful ceremony; `registration` picks the tag.
    pub fn new(
        registration: bool,
        authenticator_id: AuthenticatorId,
        user_id: UserHandle,
        id_token: Option<IdToken>,
        code: Code,
    ) -> Self {
        Self {
            tag: if registration {
                SuccessTag::RegistrationSuccess
            } else {
                SuccessTag::AuthenticationSuccess
            },
            principal: CeremonyPrincipal {
                authenticator_id,
                user_id,
            },
            id_token,
            code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_compare_to_their_wire_names() {
        for raw in [
            "ExtendedPrincipal",
            "PreparedPasskeyPrune",
            "@error/ChallengeRateLimited",
            "@error/Unavailable",
        ] {
            let tag = Tag::parse(raw);
            assert_eq!(tag.to_string(), raw);
            assert_eq!(tag, raw);
        }
        assert_eq!(
            Tag::parse("@error/Weird Tag!"),
            Tag::Error(ErrorTag::Other("WeirdTag".into()))
        );
        assert_eq!(
            Tag::parse("Novel"),
            Tag::Success(SuccessTag::Unknown("Novel".into()))
        );
        // An error tag is never read as an answer's tag.
        let tag: SuccessTag = serde_json::from_str(r#""@error/Passkey""#).unwrap();
        assert_ne!(tag, SuccessTag::Passkey);
    }

    #[test]
    fn error_bodies_need_the_error_prefix() {
        assert!(serde_json::from_str::<ErrorBody>(r#"{"_tag":"Unauthorized"}"#).is_err());
        let body: ErrorBody =
            serde_json::from_str(r#"{"_tag":"@error/Unauthorized","message":7}"#).unwrap();
        assert_eq!(body, ErrorBody::new(ErrorTag::Unauthorized, ""));
    }

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

    // ---- golden fixtures (hand-written from DESIGN section 6) ----

    fn fixture(name: &str) -> Value {
        let all: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/v2_wire.json")).unwrap();
        all.get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no fixture {name}"))
    }

    /// Reads the fixture as `T` and writes it back: every documented field
    /// is read, and written under its documented name.
    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(name: &str) -> T {
        let golden = fixture(name);
        let typed: T = serde_json::from_value(golden.clone())
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        assert_eq!(serde_json::to_value(&typed).unwrap(), golden, "{name}");
        typed
    }

    #[test]
    fn golden_principal() {
        let p: ExtendedPrincipal = round_trip("ExtendedPrincipal");
        assert_eq!(p.tag, SuccessTag::ExtendedPrincipal);
        assert_eq!(p.authenticator_id.as_str(), "cred-1");
        assert_eq!(p.user_id.as_str(), "user-42");
        assert_eq!(p.expires_at, 1_700_000_300_000);
        assert!(p.to_principal().user_verified);
        assert_eq!(p.metadata.ip_address.as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn golden_requests_built_by_the_client() {
        let mut reg = AuthorizeRegistration::new(
            "example.com",
            "Example",
            UserHandle::new("user-42").unwrap(),
            "jdoe@example.com",
        );
        reg.display_name = Some("J. Doe".into());
        reg.exclude_credentials = Some(vec!["cred-1".into()]);
        reg.user_verification = Some("required".into());
        reg.timeout = Some(60_000);
        assert_eq!(
            serde_json::to_value(&reg).unwrap(),
            fixture("AuthorizeRegistration")
        );
        round_trip::<AuthorizeRegistration>("AuthorizeRegistration");

        let mut auth = AuthorizeAuthentication::new("example.com");
        auth.user_id = Some(UserHandle::new("user-42").unwrap());
        auth.allow_credentials = Some(vec!["cred-1".into(), "cred-2".into()]);
        auth.user_verification = Some("preferred".into());
        auth.timeout = Some(60_000);
        auth.discoverable = Some(false);
        auth.mediation = Some("conditional".into());
        assert_eq!(
            serde_json::to_value(&auth).unwrap(),
            fixture("AuthorizeAuthentication")
        );
        // Optional fields are left out, not sent as null.
        assert_eq!(
            serde_json::to_value(AuthorizeAuthentication::new("example.com")).unwrap(),
            serde_json::json!({"rpId": "example.com"})
        );

        let mut update =
            PrepareUpdate::new(UserHandle::new("user-42").unwrap(), "jane@example.com");
        update.display_name = Some("Jane".into());
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            fixture("PrepareUpdate")
        );
        let ids = DeleteTarget::Passkeys {
            passkey_ids: vec![
                PasskeyId::new("cred-1").unwrap(),
                PasskeyId::new("cred-2").unwrap(),
            ],
        };
        assert_eq!(
            serde_json::to_value(&ids).unwrap(),
            fixture("DeletePasskeys")
        );
        let user = DeleteTarget::User {
            user_id: UserHandle::new("user-42").unwrap(),
        };
        assert_eq!(serde_json::to_value(&user).unwrap(), fixture("DeleteUser"));
        assert_eq!(round_trip::<DeleteTarget>("DeleteUser"), user);
        let prune = PrunePasskeys::new(UserHandle::new("user-42").unwrap());
        assert_eq!(
            serde_json::to_value(&prune).unwrap(),
            fixture("PrunePasskeys")
        );

        let verify = VerifyChallenge::new(
            ChallengeId::new("ch_1").unwrap(),
            ChallengeSecret::new("sec_1"),
            ChallengeSecret::new("123456"),
        );
        assert_eq!(
            serde_json::to_value(&verify).unwrap(),
            fixture("VerifyChallenge")
        );
        let c: CreateChallenge = round_trip("CreateChallenge");
        assert_eq!(c.invalidate_others, Some(true));
        assert_eq!(c.skip_rate_limit, Some(false));
        round_trip::<RegistrationOptionsRequest>("RegistrationOptionsRequest");
        round_trip::<AuthenticationOptionsRequest>("AuthenticationOptionsRequest");
        let v: VerificationRequest = round_trip("VerificationRequest");
        assert_eq!(v.session_token.expose_secret(), "st_1");
    }

    #[test]
    fn golden_answers_of_the_server_side_calls() {
        let r: AuthorizedPasskeyRegistration = round_trip("AuthorizedPasskeyRegistration");
        assert_eq!(r.tag, AuthorizedPasskeyRegistration::TAG);
        assert_eq!(r.registration_token.expose_secret(), "rt_abc");
        assert_eq!(
            serde_json::to_value(AuthorizedPasskeyRegistration::new(
                RegistrationToken::new("rt_abc"),
                1_700_000_300_000
            ))
            .unwrap(),
            fixture("AuthorizedPasskeyRegistration")
        );
        let a: AuthorizedPasskeyAuthentication = round_trip("AuthorizedPasskeyAuthentication");
        assert_eq!(a.tag, AuthorizedPasskeyAuthentication::TAG);
        assert_eq!(a.authentication_token.expose_secret(), "at_abc");

        let page: FindAllPasskeys = round_trip("FindAllPasskeys");
        assert_eq!(page.cursor, None);
        assert_eq!(page.records[0].tag, SuccessTag::PasskeySummary);
        assert_eq!(page.records[0].created_at, Some(1_700_000_000_000));
        let p: Passkey = round_trip("Passkey");
        assert_eq!(p.last_used, Some(1_700_000_100_000));
        assert!(p.extra.contains_key("platform"));

        let del: PreparedPasskeyOperation = round_trip("PreparedPasskeyDelete");
        assert_eq!(del.tag, SuccessTag::PreparedPasskeyDelete);
        assert_eq!(del.token.expose_secret(), "dt_1");
        assert_eq!(
            del.warnings[0].passkey_id.as_ref().unwrap().as_str(),
            "cred-2"
        );
        let up: PreparedPasskeyOperation = round_trip("PreparedPasskeyUpdate");
        assert!(up.is_prepared());
        assert_eq!(up.token.expose_secret(), "ut_1");

        let created: ChallengeCreated = round_trip("ChallengeCreated");
        assert_eq!(created.challenge.code.expose_secret(), "123456");
        assert_eq!(created.challenge.secret.expose_secret(), "sec_1");
        let ch: Challenge = round_trip("Challenge");
        assert_eq!(
            serde_json::to_value(Challenge::new(
                ChallengeId::new("ch_1").unwrap(),
                "login",
                "jdoe@example.com",
                1_700_000_000_000,
                1_700_000_600_000,
            ))
            .unwrap(),
            fixture("Challenge")
        );
        let verified: ChallengeVerified = round_trip("ChallengeVerified");
        assert_eq!(verified.challenge, ch);
        let deleted: ChallengeDeleted = round_trip("ChallengeDeleted");
        assert_eq!(deleted.challenge_id.unwrap().as_str(), "ch_1");
    }

    #[test]
    fn golden_answers_of_the_browser_calls() {
        let reg: OptionsAnswer = round_trip("RegistrationOptions");
        assert_eq!(
            serde_json::to_value(OptionsAnswer::registration(
                SessionToken::new("st_1"),
                reg.options_json.clone()
            ))
            .unwrap(),
            fixture("RegistrationOptions")
        );
        let auth: OptionsAnswer = round_trip("AuthenticationOptions");
        assert_eq!(
            serde_json::to_value(OptionsAnswer::authentication(
                SessionToken::new("st_2"),
                auth.options_json.clone()
            ))
            .unwrap(),
            fixture("AuthenticationOptions")
        );
        for (name, registration, code) in [
            ("RegistrationSuccess", true, "code_1"),
            ("AuthenticationSuccess", false, "code_2"),
        ] {
            let ok: CeremonySuccess = round_trip(name);
            assert_eq!(ok.tag, name);
            let built = CeremonySuccess::new(
                registration,
                AuthenticatorId::new("cred-1").unwrap(),
                UserHandle::new("user-42").unwrap(),
                Some(IdToken::new("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")),
                Code::new(code),
            );
            assert_eq!(serde_json::to_value(&built).unwrap(), fixture(name));
            assert!(!format!("{built:?}").contains(code));
            // Without an id_token (the embedded provider unless asked) the
            // member is left out, not `null`.
            let mut alone = built.clone();
            alone.id_token = None;
            let mut expected = fixture(name);
            expected.as_object_mut().unwrap().remove("id_token");
            assert_eq!(serde_json::to_value(&alone).unwrap(), expected);
            let back: CeremonySuccess = serde_json::from_value(expected).unwrap();
            assert!(back.id_token.is_none());
        }
    }

    #[test]
    fn golden_errors() {
        let e: ErrorBody = round_trip("ErrorUnauthorized");
        assert_eq!(e, ErrorBody::new(ErrorTag::Unauthorized, "bad key"));
        let e: ErrorBody = round_trip("ErrorChallengeRateLimited");
        assert_eq!(e.tag, ErrorTag::ChallengeRateLimited);
        assert_eq!(e.retry_after_seconds, Some(42));
        let e: ErrorBody = round_trip("ErrorPasskeyNotFound");
        assert_eq!(e.tag, ErrorTag::PasskeyNotFound);
        assert_eq!(e.credential_id.as_deref(), Some("cred-1"));
        assert_eq!(e.rp_id.as_deref(), Some("example.com"));
    }
}

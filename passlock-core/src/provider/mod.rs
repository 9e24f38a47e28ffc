//! The [`PasskeyProvider`] trait and its implementations.
//!
//! A provider has two halves: *authorize* approves one ceremony and returns a
//! one-time token for the browser; [`verify`](PasskeyProvider::verify) turns
//! what the browser sent back (a [`Proof`]) into a verified [`Principal`].

use crate::clock::UnixMillis;
use crate::error::ProviderError;
use crate::id::{AuthenticatorId, TenancyId, UserHandle};
use crate::principal::Principal;
use crate::proof::Proof;
use crate::secret::{AuthenticationToken, RegistrationToken};

pub mod jwt;
pub mod v2;

#[cfg(feature = "hosted")]
#[cfg_attr(docsrs, doc(cfg(feature = "hosted")))]
pub mod passlock;

#[cfg(any(feature = "hosted", feature = "passage"))]
mod rest;

#[cfg(feature = "passage")]
#[cfg_attr(docsrs, doc(cfg(feature = "passage")))]
pub mod passage;

#[cfg(feature = "embedded")]
#[cfg_attr(docsrs, doc(cfg(feature = "embedded")))]
pub mod embedded;

/// How the browser mediates a ceremony (WebAuthn `mediation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mediation {
    /// The browser shows its usual prompt (`optional`, the default).
    #[default]
    Optional,
    /// Without a modal prompt: a sign-in offered in the username field's
    /// autofill, or a passkey created after a password sign-in
    /// (automatic passkey upgrade).
    Conditional,
}

impl Mediation {
    /// The WebAuthn value (`"optional"`, `"conditional"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Optional => "optional",
            Self::Conditional => "conditional",
        }
    }
}

/// A registration to approve.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegistrationRequest {
    /// The provider-side user id the passkey is created for.
    pub user: UserHandle,
    /// The username shown by the authenticator.
    pub username: String,
    /// A display name (defaults to the username).
    pub display_name: Option<String>,
    /// Passkeys the user already has, so the authenticator does not create a
    /// second one on the same device.
    pub exclude: Vec<AuthenticatorId>,
    /// The name the user gave the passkey being created, if any.
    pub passkey_name: Option<String>,
    /// How the browser is asked to create it.
    pub mediation: Mediation,
}

impl RegistrationRequest {
    /// A registration request.
    pub fn new(user: UserHandle, username: impl Into<String>) -> Self {
        Self {
            user,
            username: username.into(),
            display_name: None,
            exclude: Vec::new(),
            passkey_name: None,
            mediation: Mediation::Optional,
        }
    }
}

/// An authentication to approve.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AuthenticationRequest {
    /// `None`: usernameless (discoverable). `Some`: only these passkeys
    /// (step-up of a signed-in user).
    pub allow: Option<Vec<AuthenticatorId>>,
    /// The provider-side user being authenticated, when known (a step-up of
    /// a signed-in user). Providers that authenticate a known user (Passage
    /// Passkey Flex) need it; others ignore it.
    pub user: Option<UserHandle>,
    /// How the browser is asked to run it ([`Mediation::Conditional`]: a
    /// discoverable sign-in offered in the username field's autofill).
    pub mediation: Mediation,
}

impl AuthenticationRequest {
    /// Usernameless: any discoverable passkey.
    pub fn discoverable() -> Self {
        Self {
            allow: None,
            user: None,
            mediation: Mediation::Optional,
        }
    }

    /// Restricted to `allow`.
    pub fn restricted(allow: Vec<AuthenticatorId>) -> Self {
        Self {
            allow: Some(allow),
            user: None,
            mediation: Mediation::Optional,
        }
    }

    /// Asks the browser for this mediation.
    #[must_use]
    pub fn with_mediation(mut self, mediation: Mediation) -> Self {
        self.mediation = mediation;
        self
    }

    /// Names the user being authenticated.
    #[must_use]
    pub fn with_user(mut self, user: UserHandle) -> Self {
        self.user = Some(user);
        self
    }
}

/// What a provider knows about one passkey
/// ([`PasskeyProvider::passkey_details`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasskeyDetails {
    /// The passkey.
    pub authenticator_id: AuthenticatorId,
    /// The name the user gave it, if any.
    pub name: Option<String>,
    /// The authenticator's AAGUID (lowercase UUID), if known.
    pub aaguid: Option<String>,
    /// Whether it may be synced (backup eligible).
    pub backup_eligible: bool,
    /// Whether it is synced (backed up), as of its last use.
    pub backed_up: bool,
    /// When it was last used, as the provider saw it (epoch ms).
    pub last_used_at: Option<UnixMillis>,
    /// The username it was created under, if the provider keeps it.
    pub username: Option<String>,
}

impl PasskeyDetails {
    /// Details of `authenticator_id`, nothing known yet.
    pub fn new(authenticator_id: AuthenticatorId) -> Self {
        Self {
            authenticator_id,
            name: None,
            aaguid: None,
            backup_eligible: false,
            backed_up: false,
            last_used_at: None,
            username: None,
        }
    }
}

/// Where the browser runs a ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// A hosted service at this base URL (e.g. `https://api.passlock.dev`).
    Remote(String),
    /// The embedded server mounted by the adapter under the app's prefix.
    Local,
}

/// An approved ceremony.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Authorization<T> {
    /// The one-time token for the browser.
    pub token: T,
    /// When it expires (epoch ms).
    pub expires_at: UnixMillis,
    /// The tenancy the browser talks to.
    pub tenancy_id: TenancyId,
    /// Where the browser talks to.
    pub endpoint: Endpoint,
}

impl<T> Authorization<T> {
    /// An authorization.
    pub fn new(
        token: T,
        expires_at: UnixMillis,
        tenancy_id: TenancyId,
        endpoint: Endpoint,
    ) -> Self {
        Self {
            token,
            expires_at,
            tenancy_id,
            endpoint,
        }
    }
}

/// A passkey provider: hosted Passlock, Passage Passkey Flex, or embedded.
///
/// Held by `Passlock` as `Arc<dyn PasskeyProvider>`.
#[async_trait::async_trait]
pub trait PasskeyProvider: Send + Sync + std::fmt::Debug + 'static {
    /// A short name for logs (`"passlock"`, `"embedded"`, `"passage"`).
    fn name(&self) -> &'static str;

    /// Approves one registration.
    async fn authorize_registration(
        &self,
        request: RegistrationRequest,
    ) -> Result<Authorization<RegistrationToken>, ProviderError>;

    /// Approves one authentication.
    async fn authorize_authentication(
        &self,
        request: AuthenticationRequest,
    ) -> Result<Authorization<AuthenticationToken>, ProviderError>;

    /// Verifies a proof. Single use: the same proof verifies at most once.
    async fn verify(&self, proof: &Proof) -> Result<Principal, ProviderError>;

    /// Deletes a passkey from the provider's vault, where it has one. A
    /// provider without a vault answers `Ok(())`.
    async fn delete_passkey(&self, authenticator: &AuthenticatorId) -> Result<(), ProviderError>;

    /// What the provider knows about these passkeys (names, AAGUIDs, backup
    /// flags), for the passkey list. A passkey it knows nothing of is left
    /// out; the default knows nothing (the list then shows the link's
    /// dates and a name derived from the creation date).
    async fn passkey_details(
        &self,
        authenticators: &[AuthenticatorId],
    ) -> Result<Vec<PasskeyDetails>, ProviderError> {
        let _ = authenticators;
        Ok(Vec::new())
    }

    /// Renames a passkey where the provider keeps names; `Ok(false)` when
    /// it has no such passkey. The default keeps no names and answers
    /// [`ProviderError::Unsupported`].
    async fn rename_passkey(
        &self,
        authenticator: &AuthenticatorId,
        name: &str,
    ) -> Result<bool, ProviderError> {
        let _ = (authenticator, name);
        Err(ProviderError::Unsupported(
            "this provider keeps no passkey names",
        ))
    }

    /// The embedded server, when this provider is one (the adapters mount
    /// its browser-facing routes).
    #[cfg(feature = "embedded")]
    #[cfg_attr(docsrs, doc(cfg(feature = "embedded")))]
    fn embedded(&self) -> Option<&embedded::EmbeddedProvider> {
        None
    }

    /// The default [`SealingKey`](crate::ticket::SealingKey) of sign-up
    /// tickets, derived from a secret every instance of the app shares with
    /// this provider (so a sign-up authorized on one instance completes on
    /// another). `None` (the default) makes [`Passlock`](crate::Passlock)
    /// use a random key unless the app sets one.
    fn sealing_key(&self) -> Option<crate::ticket::SealingKey> {
        None
    }
}

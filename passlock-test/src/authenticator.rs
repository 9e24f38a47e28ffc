//! A software passkey authenticator for tests: completes real WebAuthn
//! ceremonies (1Password's `passkey-client` and `passkey-authenticator`)
//! without a browser.
//!
//! It takes the `optionsJSON` exactly as an options route returns it (the
//! inner options object, or `{publicKey: ...}`) and returns the JSON a
//! browser sends as `response` to the verification route. Credentials are
//! discoverable and kept in memory. Signature counters are on by default
//! (each assertion increments them) so counter checks can be exercised.
//!
//! Attack helpers: [`set_origin`](SoftAuthenticator::set_origin) (a phishing
//! page), [`set_user_verification`](SoftAuthenticator::set_user_verification)
//! (an authenticator that skips UV even when asked), `clone()` (a cloned
//! device with its own copy of the keys and counters),
//! [`set_counters`](SoftAuthenticator::set_counters).

use std::sync::{Arc, Mutex};

use passkey_authenticator::{
    Authenticator, CredentialStore, DiscoverabilitySupport, StoreInfo, UiHint, UserCheck,
    UserValidationMethod,
};
use passkey_client::{Client, DefaultClientData};
use passkey_types::Passkey;
use passkey_types::ctap2::make_credential::{
    Options, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};
use passkey_types::ctap2::{Aaguid, Ctap2Error, StatusCode};
use passkey_types::webauthn::{
    CredentialCreationOptions, CredentialRequestOptions, PublicKeyCredentialDescriptor,
};
use serde_json::Value;
use url::Url;

/// Why the software authenticator could not complete a ceremony.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoftAuthError {
    /// The options are not valid WebAuthn options JSON.
    #[error("invalid options JSON: {0}")]
    Options(String),
    /// The configured origin is not a URL.
    #[error("invalid origin")]
    Origin,
    /// The client or authenticator refused (e.g. no credential, excluded
    /// credential, origin not valid for the RP id).
    #[error("the authenticator refused: {0}")]
    Refused(String),
}

type Credentials = Arc<Mutex<Vec<Passkey>>>;

/// The authenticator's credential store: discoverable, newest first.
#[derive(Clone)]
struct SoftStore {
    credentials: Credentials,
}

impl SoftStore {
    fn with<T>(&self, f: impl FnOnce(&mut Vec<Passkey>) -> T) -> Result<T, StatusCode> {
        let mut guard = self
            .credentials
            .lock()
            .map_err(|_| StatusCode::from(Ctap2Error::Other))?;
        Ok(f(&mut guard))
    }
}

#[async_trait::async_trait]
impl CredentialStore for SoftStore {
    type PasskeyItem = Passkey;

    async fn find_credentials(
        &self,
        ids: Option<&[PublicKeyCredentialDescriptor]>,
        rp_id: &str,
        _user_handle: Option<&[u8]>,
    ) -> Result<Vec<Passkey>, StatusCode> {
        let found: Vec<Passkey> = self.with(|creds| {
            creds
                .iter()
                .rev()
                .filter(|p| p.rp_id == rp_id)
                .filter(|p| match ids {
                    Some(ids) => ids.iter().any(|d| *d.id == *p.credential_id),
                    None => p.user_handle.is_some(),
                })
                .cloned()
                .collect()
        })?;
        if found.is_empty() {
            Err(Ctap2Error::NoCredentials.into())
        } else {
            Ok(found)
        }
    }

    async fn save_credential(
        &mut self,
        cred: Passkey,
        _user: PublicKeyCredentialUserEntity,
        _rp: PublicKeyCredentialRpEntity,
        _options: Options,
    ) -> Result<(), StatusCode> {
        self.with(|creds| {
            // A new credential for the same RP and user replaces the old one,
            // as platform authenticators do.
            creds.retain(|p| {
                !(p.rp_id == cred.rp_id
                    && p.user_handle.is_some()
                    && p.user_handle == cred.user_handle)
            });
            creds.push(cred);
        })
    }

    async fn update_credential(&mut self, cred: &Passkey) -> Result<(), StatusCode> {
        self.with(|creds| {
            for p in creds.iter_mut() {
                if p.credential_id == cred.credential_id {
                    *p = cred.clone();
                }
            }
        })
    }

    async fn get_info(&self) -> StoreInfo {
        StoreInfo {
            discoverability: DiscoverabilitySupport::ForcedDiscoverable,
        }
    }
}

/// The user: always present, verified when configured.
struct SoftUser {
    verify: bool,
}

#[async_trait::async_trait]
impl UserValidationMethod for SoftUser {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        _presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence: true,
            verification: verification && self.verify,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

/// A software passkey authenticator plus the browser's WebAuthn client.
///
/// `Clone` makes an independent copy of the device (its own keys and
/// counters), as an attacker who cloned it would have;
/// [`share`](Self::share) makes a second handle to the same device.
pub struct SoftAuthenticator {
    origin: String,
    user_verification: bool,
    signature_counter: bool,
    credentials: Credentials,
    extra_client_data: Option<Value>,
}

impl std::fmt::Debug for SoftAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftAuthenticator")
            .field("origin", &self.origin)
            .field("user_verification", &self.user_verification)
            .field("credentials", &self.credential_ids().len())
            .finish()
    }
}

impl Clone for SoftAuthenticator {
    fn clone(&self) -> Self {
        let copy = self
            .credentials
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        Self {
            origin: self.origin.clone(),
            user_verification: self.user_verification,
            signature_counter: self.signature_counter,
            credentials: Arc::new(Mutex::new(copy)),
            extra_client_data: self.extra_client_data.clone(),
        }
    }
}

/// Client data built by [`SoftAuthenticator`] itself: the client signs its
/// hash, and [`with_client_data`] puts the bytes in the response.
struct Prebuilt(Vec<u8>);

impl Prebuilt {
    fn of(client_data_json: &[u8]) -> Self {
        let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, client_data_json);
        Self(hash.as_ref().to_vec())
    }
}

impl passkey_client::ClientData<()> for Prebuilt {
    fn extra_client_data(&self) {}

    fn client_data_hash(&self) -> Option<Vec<u8>> {
        Some(self.0.clone())
    }
}

/// `response` with `response.clientDataJSON` replaced by `custom` (base64url).
fn with_client_data(mut response: Value, custom: Option<&[u8]>) -> Value {
    use base64::Engine as _;
    if let Some(data) = custom
        && let Some(inner) = response.get_mut("response").and_then(Value::as_object_mut)
    {
        inner.insert(
            "clientDataJSON".to_owned(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(data)
                .into(),
        );
    }
    response
}

/// The options object, whether wrapped in `{publicKey: ...}` or not.
fn inner_options(options_json: &Value) -> Result<Value, SoftAuthError> {
    let inner = options_json.get("publicKey").unwrap_or(options_json);
    if inner.is_object() {
        Ok(inner.clone())
    } else {
        Err(SoftAuthError::Options("not a JSON object".to_owned()))
    }
}

impl SoftAuthenticator {
    /// An authenticator used from pages on `origin` (e.g.
    /// `http://localhost:3000`), verifying the user, with no credentials.
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            user_verification: true,
            signature_counter: true,
            credentials: Arc::new(Mutex::new(Vec::new())),
            extra_client_data: None,
        }
    }

    /// Whether the authenticator verifies the user. With `false` it neither
    /// verifies nor refuses: it answers without the UV flag even when the
    /// options require verification (a broken or malicious client).
    pub fn set_user_verification(&mut self, verify: bool) {
        self.user_verification = verify;
    }

    /// The origin the next ceremonies run on (e.g. a phishing origin).
    pub fn set_origin(&mut self, origin: &str) {
        origin.clone_into(&mut self.origin);
    }

    /// Members added to the client data (`clientDataJSON`) of the next
    /// ceremonies, as a browser running them in a cross-origin iframe adds
    /// `{"crossOrigin": true, "topOrigin": "https://top.example"}`; `None`
    /// (the default) for a same-origin page.
    pub fn set_extra_client_data(&mut self, extra: Option<Value>) {
        self.extra_client_data = extra;
    }

    /// Whether new credentials keep a signature counter (default true).
    pub fn set_signature_counter(&mut self, enabled: bool) {
        self.signature_counter = enabled;
    }

    /// A second handle to the same device (shared keys and counters).
    pub fn share(&self) -> Self {
        Self {
            origin: self.origin.clone(),
            user_verification: self.user_verification,
            signature_counter: self.signature_counter,
            credentials: Arc::clone(&self.credentials),
            extra_client_data: self.extra_client_data.clone(),
        }
    }

    /// The credential ids on the device (base64url), oldest first.
    pub fn credential_ids(&self) -> Vec<String> {
        use base64::Engine as _;
        self.credentials
            .lock()
            .map(|c| {
                c.iter()
                    .map(|p| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*p.credential_id)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets the signature counter of every credential that has one.
    pub fn set_counters(&mut self, counter: u32) {
        if let Ok(mut creds) = self.credentials.lock() {
            for p in creds.iter_mut() {
                if p.counter.is_some() {
                    p.counter = Some(counter);
                }
            }
        }
    }

    /// Re-binds every credential to another RP id (a proxy or a confused
    /// client asserting for the wrong relying party).
    pub fn rebind_rp_id(&mut self, rp_id: &str) {
        if let Ok(mut creds) = self.credentials.lock() {
            for p in creds.iter_mut() {
                rp_id.clone_into(&mut p.rp_id);
            }
        }
    }

    /// Forgets every credential.
    pub fn clear(&mut self) {
        if let Ok(mut creds) = self.credentials.lock() {
            creds.clear();
        }
    }

    fn authenticator(
        &self,
    ) -> Authenticator<SoftStore, SoftUser, passkey_crypto::AvailableBackend> {
        let mut authenticator = Authenticator::new(
            Aaguid::new_empty(),
            SoftStore {
                credentials: Arc::clone(&self.credentials),
            },
            SoftUser {
                verify: self.user_verification,
            },
            passkey_crypto::AvailableBackend,
        );
        authenticator.set_make_credentials_with_signature_counter(self.signature_counter);
        authenticator
    }

    /// Rewrites the options for an authenticator that skips verification.
    fn adjust(&self, options: &mut Value) {
        if self.user_verification {
            return;
        }
        if let Some(obj) = options.as_object_mut() {
            // Creation options (they name the `rp`) carry the requirement in
            // `authenticatorSelection`, request options at the top; absent,
            // it defaults to `preferred`, which the client would ask for.
            if obj.contains_key("rp") {
                let sel = obj
                    .entry("authenticatorSelection")
                    .or_insert_with(|| Value::Object(serde_json::Map::new()));
                if let Some(sel) = sel.as_object_mut() {
                    sel.insert("userVerification".to_owned(), "discouraged".into());
                }
            } else {
                obj.insert("userVerification".to_owned(), "discouraged".into());
            }
        }
    }

    /// The client data of the next ceremony when extra members are set
    /// (the standard members, then the extra ones over them, so
    /// `crossOrigin` can be `true`); `None` for the client's own.
    fn custom_client_data(
        &self,
        ty: &str,
        inner: &Value,
        origin: &Url,
    ) -> Result<Option<Vec<u8>>, SoftAuthError> {
        let Some(extra) = &self.extra_client_data else {
            return Ok(None);
        };
        let challenge = inner
            .get("challenge")
            .and_then(Value::as_str)
            .ok_or_else(|| SoftAuthError::Options("no challenge".to_owned()))?;
        let mut data = serde_json::Map::new();
        data.insert("type".to_owned(), ty.into());
        data.insert("challenge".to_owned(), challenge.into());
        data.insert(
            "origin".to_owned(),
            origin.origin().ascii_serialization().into(),
        );
        data.insert("crossOrigin".to_owned(), false.into());
        if let Some(extra) = extra.as_object() {
            data.extend(extra.clone());
        }
        serde_json::to_vec(&data)
            .map(Some)
            .map_err(|e| SoftAuthError::Options(e.to_string()))
    }

    fn origin_url(&self) -> Result<Url, SoftAuthError> {
        Url::parse(&self.origin).map_err(|_| SoftAuthError::Origin)
    }

    /// Runs `navigator.credentials.create` on `options_json` (as the
    /// registration options route returns it); returns the `response` for
    /// the registration verification route.
    pub async fn create(&mut self, options_json: &Value) -> Result<Value, SoftAuthError> {
        let mut inner = inner_options(options_json)?;
        self.adjust(&mut inner);
        let request: CredentialCreationOptions =
            serde_json::from_value(serde_json::json!({ "publicKey": inner }))
                .map_err(|e| SoftAuthError::Options(e.to_string()))?;
        let origin = self.origin_url()?;
        let custom = self.custom_client_data("webauthn.create", &inner, &origin)?;
        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let created = match &custom {
            Some(data) => client.register(&origin, request, Prebuilt::of(data)).await,
            None => client.register(&origin, request, DefaultClientData).await,
        }
        .map_err(|e| SoftAuthError::Refused(format!("{e:?}")))?;
        let created =
            serde_json::to_value(&created).map_err(|e| SoftAuthError::Options(e.to_string()))?;
        Ok(with_client_data(created, custom.as_deref()))
    }

    /// Runs `navigator.credentials.get` on `options_json` (as the
    /// authentication options route returns it); returns the `response` for
    /// the authentication verification route. Usernameless options pick the
    /// newest discoverable credential for the RP.
    pub async fn get(&mut self, options_json: &Value) -> Result<Value, SoftAuthError> {
        let mut inner = inner_options(options_json)?;
        self.adjust(&mut inner);
        let request: CredentialRequestOptions =
            serde_json::from_value(serde_json::json!({ "publicKey": inner }))
                .map_err(|e| SoftAuthError::Options(e.to_string()))?;
        let origin = self.origin_url()?;
        let custom = self.custom_client_data("webauthn.get", &inner, &origin)?;
        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let asserted = match &custom {
            Some(data) => {
                client
                    .authenticate(&origin, request, Prebuilt::of(data))
                    .await
            }
            None => {
                client
                    .authenticate(&origin, request, DefaultClientData)
                    .await
            }
        }
        .map_err(|e| SoftAuthError::Refused(format!("{e:?}")))?;
        let asserted =
            serde_json::to_value(&asserted).map_err(|e| SoftAuthError::Options(e.to_string()))?;
        Ok(with_client_data(asserted, custom.as_deref()))
    }
}

//! The id_token issuer of the embedded provider: a P-256 signing key shared
//! by every instance through the [`CeremonyStore`], ES256 id_tokens with the
//! hosted service's claims, and the JWKS that verifies them.

use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use serde::Serialize;

use super::store::CeremonyStore;
use crate::error::{ConfigError, ProviderError, StoreError};
use crate::id::{AuthenticatorId, TenancyId, UserHandle};
use crate::provider::jwt::JwksSource;
use crate::secret::IdToken;

/// The CeremonyStore key of the persisted signing key.
pub(crate) const SIGNING_KEY_ENTRY: &str = "signing-key";

/// Lifetime of an id_token, in seconds.
pub(crate) const ID_TOKEN_LIFETIME_SECS: i64 = 300;

/// A P-256 private key (PKCS#8 DER) that signs the embedded provider's
/// id_tokens. `Debug` never prints it.
#[derive(Clone)]
pub struct SigningKey {
    pkcs8: Arc<Vec<u8>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    /// Parses a P-256 private key in PKCS#8 DER form.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, ConfigError> {
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(|_| {
            ConfigError::new("signing_key", "not a P-256 private key in PKCS#8 DER form")
        })?;
        Ok(Self {
            pkcs8: Arc::new(der.to_vec()),
        })
    }

    /// Generates a fresh key.
    pub fn generate() -> Result<Self, ConfigError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| ConfigError::new("signing_key", "could not generate a key"))?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// The key as PKCS#8 DER. Secret: never log it.
    pub fn expose_pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The uncompressed public point (`04 || x || y`).
    fn public_point(&self) -> Result<Vec<u8>, ConfigError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8)
            .map_err(|_| ConfigError::new("signing_key", "invalid key"))?;
        Ok(pair.public_key().as_ref().to_vec())
    }

    /// Loads the key persisted in `store`, or generates one and persists it
    /// (the first instance to write wins; every instance then uses it).
    pub(crate) async fn load_or_create(store: &dyn CeremonyStore) -> Result<Self, ConfigError> {
        let fresh = Self::generate()?;
        let encoded = STANDARD.encode(fresh.expose_pkcs8_der());
        let stored = store
            .get_or_insert(SIGNING_KEY_ENTRY, &encoded)
            .await
            .map_err(|_| ConfigError::new("ceremony_store", "the ceremony store is unavailable"))?;
        let der = STANDARD.decode(stored.trim()).map_err(|_| {
            ConfigError::new("ceremony_store", "the persisted signing key is not base64")
        })?;
        Self::from_pkcs8_der(&der)
    }
}

/// The claims of an embedded id_token (the hosted service's claim names).
#[derive(Debug, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    jti: &'a str,
    iat: i64,
    exp: i64,
    #[serde(rename = "a:id")]
    authenticator_id: &'a str,
    #[serde(rename = "a:typ")]
    authenticator_type: &'a str,
    #[serde(rename = "pk:uv")]
    user_verified: bool,
}

/// Signs id_tokens and publishes the key set.
///
/// The key pair is parsed once: `jsonwebtoken::encode` would parse and
/// check the PKCS#8 key on every token (a measurable share of an embedded
/// sign-in, see BENCHMARKS.md), so the JWS is assembled here.
#[derive(Clone)]
pub(crate) struct Issuer {
    key_pair: Arc<EcdsaKeyPair>,
    /// The base64url JOSE header (`alg`, `typ`, `kid`), fixed per key.
    header: String,
    kid: String,
    jwks: JwkSet,
    issuer: String,
    audience: TenancyId,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LocalJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalJwks")
            .field("keys", &self.0.keys.len())
            .finish()
    }
}

/// The provider's own key set as a [`JwksSource`].
#[derive(Clone)]
pub(crate) struct LocalJwks(pub(crate) JwkSet);

#[async_trait::async_trait]
impl JwksSource for LocalJwks {
    async fn fetch(&self) -> Result<JwkSet, ProviderError> {
        Ok(self.0.clone())
    }
}

/// One issued id_token with its `jti` and expiry.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) token: IdToken,
    pub(crate) jti: String,
    pub(crate) exp_secs: i64,
}

impl Issuer {
    pub(crate) fn new(
        key: &SigningKey,
        issuer: String,
        audience: TenancyId,
    ) -> Result<Self, ConfigError> {
        let point = key.public_point()?;
        if point.len() != 65 || point.first() != Some(&4) {
            return Err(ConfigError::new(
                "signing_key",
                "unexpected public key form",
            ));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        // RFC 7638 thumbprint as the key id.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ));
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::ES256),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x,
                y,
            }),
        };
        let key_pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.expose_pkcs8_der())
                .map_err(|_| ConfigError::new("signing_key", "invalid key"))?;
        let header = serde_json::json!({ "typ": "JWT", "alg": "ES256", "kid": kid });
        Ok(Self {
            key_pair: Arc::new(key_pair),
            header: URL_SAFE_NO_PAD.encode(header.to_string()),
            kid,
            jwks: JwkSet { keys: vec![jwk] },
            issuer,
            audience,
        })
    }

    pub(crate) fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Signs an id_token for a verified ceremony at `now_secs`.
    pub(crate) fn issue(
        &self,
        user: &UserHandle,
        authenticator: &AuthenticatorId,
        user_verified: bool,
        now_secs: i64,
    ) -> Result<Issued, ProviderError> {
        let jti = crate::secret::random_token(16);
        if jti.is_empty() {
            return Err(StoreError::backend("no randomness available").into());
        }
        let exp = now_secs + ID_TOKEN_LIFETIME_SECS;
        let claims = Claims {
            iss: &self.issuer,
            aud: self.audience.as_str(),
            sub: user.as_str(),
            jti: &jti,
            iat: now_secs,
            exp,
            authenticator_id: authenticator.as_str(),
            authenticator_type: "passkey",
            user_verified,
        };
        let payload = serde_json::to_vec(&claims)
            .map_err(|e| StoreError::backend(format!("id_token claims: {e}")))?;
        let mut token = String::with_capacity(self.header.len() + payload.len() * 4 / 3 + 92);
        token.push_str(&self.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        // FIXED signing: the JWS form of ES256 (r || s, 64 bytes).
        let signature = self
            .key_pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), token.as_bytes())
            .map_err(|_| StoreError::backend("id_token signing failed"))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(Issued {
            token: IdToken::new(token),
            jti,
            exp_secs: exp,
        })
    }
}

/// The `jti` of an id_token whose signature was already verified.
pub(crate) fn jti_of_verified(token: &IdToken) -> Option<String> {
    let payload = token.expose_secret().split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("jti")?.as_str().map(str::to_owned)
}

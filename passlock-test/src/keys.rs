//! Test keys: an RSA key (RS256/PS256) and an EC P-256 key (ES256), each
//! able to sign a JWT with given header and claims and to export its public
//! JWK with a `kid`; and helpers building raw tokens with arbitrary header,
//! payload and signature for attack tests.
//!
//! ```
//! use passlock_test::keys::TestKey;
//! let key = TestKey::ec_p256("k1").unwrap();
//! let token = key.sign(&serde_json::json!({"sub": "u1"})).unwrap();
//! assert_eq!(token.split('.').count(), 3);
//! assert_eq!(key.jwk().common.key_id.as_deref(), Some("k1"));
//! ```

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// Why a test key could not be made or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Key generation or encoding failed.
    #[error("test key generation failed")]
    Generate,
    /// jsonwebtoken refused the key or the claims.
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
    /// The claims or header do not serialise.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// A signing key for tests, with its public JWK.
#[derive(Clone)]
pub struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Jwk,
    public_der: Vec<u8>,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// A fresh 2048-bit RSA key signing RS256.
    pub fn rsa(kid: impl Into<String>) -> Result<Self, KeyError> {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| KeyError::Generate)?;
        let pkcs8 = pair.as_der().map_err(|_| KeyError::Generate)?;
        let pkcs1 = pkcs8_private_key(pkcs8.as_ref()).ok_or(KeyError::Generate)?;
        let public_der = pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Generate)?
            .as_ref()
            .to_vec();
        Self::build(
            kid.into(),
            Algorithm::RS256,
            EncodingKey::from_rsa_der(pkcs1),
            public_der,
        )
    }

    /// A fresh P-256 key signing ES256.
    pub fn ec_p256(kid: impl Into<String>) -> Result<Self, KeyError> {
        let alg = &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pair =
            aws_lc_rs::signature::EcdsaKeyPair::generate(alg).map_err(|_| KeyError::Generate)?;
        let pkcs8 = pair.to_pkcs8v1().map_err(|_| KeyError::Generate)?;
        let public_der = pair.public_key().as_ref().to_vec();
        Self::build(
            kid.into(),
            Algorithm::ES256,
            EncodingKey::from_ec_der(pkcs8.as_ref()),
            public_der,
        )
    }

    fn build(
        kid: String,
        alg: Algorithm,
        encoding: EncodingKey,
        public_der: Vec<u8>,
    ) -> Result<Self, KeyError> {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            kid,
            alg,
            encoding,
            jwk,
            public_der,
        })
    }

    /// The same key under another algorithm of its family (e.g. PS256 for
    /// an RSA key); the JWK then names that algorithm.
    pub fn with_algorithm(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self.jwk.common.key_algorithm = Some(alg.into());
        self
    }

    /// The same key, its JWK naming no `alg`.
    pub fn without_jwk_alg(mut self) -> Self {
        self.jwk.common.key_algorithm = None;
        self
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK (`kid`, `alg`, `use: sig`).
    pub fn jwk(&self) -> Jwk {
        self.jwk.clone()
    }

    /// The public key's DER bytes (SubjectPublicKeyInfo for RSA, the
    /// uncompressed point for EC): what an attacker knows, e.g. to use as an
    /// HMAC secret.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// The standard header of this key: `alg`, `typ: JWT`, `kid`.
    pub fn header(&self) -> Header {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        h
    }

    /// Signs `claims` with the standard header.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        self.sign_with_header(&self.header(), claims)
    }

    /// Signs `claims` with a given header (its `alg` must suit this key).
    pub fn sign_with_header<T: Serialize>(
        &self,
        header: &Header,
        claims: &T,
    ) -> Result<String, KeyError> {
        Ok(jsonwebtoken::encode(header, claims, &self.encoding)?)
    }

    /// Signs an arbitrary header JSON (e.g. with unknown fields) and payload.
    pub fn sign_raw(
        &self,
        header: &serde_json::Value,
        payload: &serde_json::Value,
    ) -> Result<String, KeyError> {
        let h = b64(&serde_json::to_vec(header)?);
        let p = b64(&serde_json::to_vec(payload)?);
        let message = format!("{h}.{p}");
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, self.alg)?;
        Ok(format!("{message}.{sig}"))
    }

    /// Signs a header and a payload given as JSON text, byte for byte (e.g.
    /// with a key named twice, which a `Value` cannot hold).
    pub fn sign_json_text(&self, header: &str, payload: &str) -> Result<String, KeyError> {
        let message = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, self.alg)?;
        Ok(format!("{message}.{sig}"))
    }
}

/// A key set of these keys.
pub fn jwk_set<'a>(keys: impl IntoIterator<Item = &'a TestKey>) -> JwkSet {
    JwkSet {
        keys: keys.into_iter().map(TestKey::jwk).collect(),
    }
}

/// A [`JwksSource`](passlock_core::provider::jwt::JwksSource) the test controls:
/// `Some(set)` is served, `None` fails as an outage.
#[derive(Debug, Default)]
pub struct StaticJwks {
    set: std::sync::Mutex<Option<JwkSet>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl StaticJwks {
    /// Serves `set`.
    pub fn new(set: JwkSet) -> Self {
        Self {
            set: std::sync::Mutex::new(Some(set)),
            fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Replaces what is served (`None`: an outage).
    pub fn set(&self, set: Option<JwkSet>) {
        *self
            .set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = set;
    }

    /// How many times the set was fetched.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl passlock_core::provider::jwt::JwksSource for StaticJwks {
    async fn fetch(&self) -> Result<JwkSet, passlock_core::error::ProviderError> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(passlock_core::error::ProviderError::Upstream(
                passlock_core::error::UpstreamError::Unavailable(None),
            ))
    }
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token built from parts: `b64(header).b64(payload).b64(signature)`,
/// nothing checked (for attack tests).
pub fn raw_token(
    header: &serde_json::Value,
    payload: &serde_json::Value,
    signature: &[u8],
) -> Result<String, KeyError> {
    Ok(format!(
        "{}.{}.{}",
        b64(&serde_json::to_vec(header)?),
        b64(&serde_json::to_vec(payload)?),
        b64(signature)
    ))
}

/// A token with the given header (whatever its `alg` says) signed with
/// HMAC-SHA256 over `secret`: the algorithm-confusion attack when `secret`
/// is a public key.
pub fn hmac_token(
    header: &serde_json::Value,
    payload: &serde_json::Value,
    secret: &[u8],
) -> Result<String, KeyError> {
    let h = b64(&serde_json::to_vec(header)?);
    let p = b64(&serde_json::to_vec(payload)?);
    let message = format!("{h}.{p}");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, message.as_bytes());
    Ok(format!("{message}.{}", b64(tag.as_ref())))
}

/// The inner private key of a PKCS#8 `PrivateKeyInfo` (for RSA: the PKCS#1
/// `RSAPrivateKey` jsonwebtoken wants).
fn pkcs8_private_key(der: &[u8]) -> Option<&[u8]> {
    let (tag, outer, _) = tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, _version, rest) = tlv(outer)?;
    if tag != 0x02 {
        return None;
    }
    let (tag, _alg, rest) = tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, key, _) = tlv(rest)?;
    (tag == 0x04).then_some(key)
}

/// One DER tag-length-value: `(tag, content, rest)`.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sign_and_export() {
        for key in [TestKey::rsa("r").unwrap(), TestKey::ec_p256("e").unwrap()] {
            let t = key.sign(&serde_json::json!({"a": 1})).unwrap();
            assert_eq!(t.split('.').count(), 3);
            let t2 = key
                .sign_raw(
                    &serde_json::json!({"alg": format!("{:?}", key.algorithm()), "kid": key.kid()}),
                    &serde_json::json!({"a": 1}),
                )
                .unwrap();
            assert_eq!(t2.split('.').count(), 3);
            assert!(jsonwebtoken::DecodingKey::from_jwk(&key.jwk()).is_ok());
        }
        assert!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(pkcs8_private_key(b"junk").is_none());
    }
}

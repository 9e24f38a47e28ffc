//! Shared set-up of the passlock fuzz targets: one runtime, embedded
//! providers over in-memory stores, the ceremony fixture.
//!
//! The embedded verification routes need a live ceremony for deep coverage.
//! `fixtures/ceremony.json` holds the server-side state of one registration
//! and one authentication ceremony run by a `SoftAuthenticator` (written by
//! the `capture` binary, which also writes the matching seed bodies). The
//! [`TrackingCeremonyStore`] answers the fixed session token
//! [`FIXTURE_SESSION`] with that state on every take, so every iteration
//! reaches webauthn-rs with a matching challenge.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passlock_core::StoreError;
use passlock_core::clock::UnixMillis;
use passlock_core::provider::embedded::{
    CeremonyStore, CredentialStore, EmbeddedConfig, EmbeddedProvider, IdTokens,
    MemoryCeremonyStore, MemoryCredentialStore, StoredCredential,
};
use passlock_core::{AuthenticatorId, UserHandle};
use serde_json::{Value, json};

/// The origin every fuzzed ceremony runs on.
pub const ORIGIN: &str = "http://localhost:3000";
/// The tenancy id of the embedded provider (its default).
pub const TENANCY: &str = "embedded";
/// The session token the fixture ceremonies are stored under.
pub const FIXTURE_SESSION: &str = "fuzz-session-token-0123456789abcdef";
/// Replaced in an options body by a fresh single-use token each iteration.
pub const TOKEN_PLACEHOLDER: &[u8] = b"@TOKEN@";

/// The one runtime of a fuzz process (current thread).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The embedded provider's configuration used everywhere here: every
/// answer carries an id_token, so the issuer runs under the fuzzer too.
pub fn config() -> EmbeddedConfig {
    EmbeddedConfig::new("localhost", "Fuzz app", [ORIGIN]).with_id_tokens(IdTokens::Always)
}

/// The ceremony store key of a secret, as the embedded provider derives it.
pub fn store_key(kind: &str, secret: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    format!("{kind}:{}", URL_SAFE_NO_PAD.encode(digest))
}

/// A ceremony store that remembers every key put, so an iteration can
/// remove what it left behind (memory stays flat over millions of runs),
/// and that serves fixed values for pinned keys without consuming them.
#[derive(Debug, Default)]
pub struct TrackingCeremonyStore {
    inner: MemoryCeremonyStore,
    put_keys: Mutex<Vec<String>>,
    pinned: Mutex<Vec<(String, String)>>,
    /// The last `(key, value)` put (for the capture binary).
    pub last_put: Mutex<Option<(String, String)>>,
}

impl TrackingCeremonyStore {
    /// Serves `value` for `key` on every take.
    pub fn pin(&self, key: String, value: String) {
        self.pinned.lock().unwrap().push((key, value));
    }

    /// Removes everything put since the last sweep.
    pub async fn sweep(&self) {
        let keys: Vec<String> = std::mem::take(&mut *self.put_keys.lock().unwrap());
        for key in keys {
            let _ = self.inner.take(&key, 0).await;
        }
    }
}

#[async_trait::async_trait]
impl CeremonyStore for TrackingCeremonyStore {
    async fn put(&self, key: &str, value: &str, expires_at: UnixMillis) -> Result<(), StoreError> {
        self.put_keys.lock().unwrap().push(key.to_owned());
        *self.last_put.lock().unwrap() = Some((key.to_owned(), value.to_owned()));
        self.inner.put(key, value, expires_at).await
    }

    async fn take(&self, key: &str, now: UnixMillis) -> Result<Option<String>, StoreError> {
        if let Some((_, v)) = self.pinned.lock().unwrap().iter().find(|(k, _)| k == key) {
            return Ok(Some(v.clone()));
        }
        self.inner.take(key, now).await
    }

    async fn get_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        self.inner.get_or_insert(key, value).await
    }
}

/// A provider with its stores.
#[derive(Debug)]
pub struct Harness {
    /// The provider.
    pub provider: EmbeddedProvider,
    /// Its ceremony store.
    pub ceremonies: Arc<TrackingCeremonyStore>,
    /// Its credential store.
    pub credentials: Arc<MemoryCredentialStore>,
}

impl Harness {
    /// A provider over fresh in-memory stores.
    pub async fn new() -> Self {
        let ceremonies = Arc::new(TrackingCeremonyStore::default());
        let credentials = Arc::new(MemoryCredentialStore::new());
        let provider = EmbeddedProvider::new(config(), credentials.clone(), ceremonies.clone())
            .await
            .unwrap();
        Self {
            provider,
            ceremonies,
            credentials,
        }
    }
}

/// The captured ceremonies (`fixtures/ceremony.json`).
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The stored registration ceremony state.
    pub registration_state: String,
    /// The stored authentication ceremony state.
    pub authentication_state: String,
    /// The credential the authentication ceremony uses.
    pub credential: StoredCredential,
}

/// Serialises a credential record for the fixture file.
pub fn credential_to_json(c: &StoredCredential) -> Value {
    json!({
        "credential_id": c.credential_id.as_str(),
        "user_handle": c.user_handle.as_str(),
        "username": c.username,
        "passkey_json": c.passkey_json,
        "created_at": c.created_at,
        "sign_count": c.sign_count,
        "backup_eligible": c.backup_eligible,
        "backup_state": c.backup_state,
    })
}

impl Fixture {
    /// Parses the fixture file.
    pub fn parse(text: &str) -> Self {
        let v: Value = serde_json::from_str(text).unwrap();
        let c = &v["credential"];
        let s = |v: &Value| v.as_str().unwrap().to_owned();
        Self {
            registration_state: s(&v["registration_state"]),
            authentication_state: s(&v["authentication_state"]),
            credential: StoredCredential::new(
                AuthenticatorId::new(s(&c["credential_id"])).unwrap(),
                UserHandle::new(s(&c["user_handle"])).unwrap(),
                s(&c["username"]),
                s(&c["passkey_json"]),
                c["created_at"].as_i64().unwrap(),
                u32::try_from(c["sign_count"].as_u64().unwrap()).unwrap(),
                c["backup_eligible"].as_bool().unwrap(),
                c["backup_state"].as_bool().unwrap(),
            ),
        }
    }

    /// The committed fixture.
    pub fn committed() -> Self {
        Self::parse(include_str!("../fixtures/ceremony.json"))
    }
}

/// Replaces every [`TOKEN_PLACEHOLDER`] in `data` by `token`.
pub fn substitute(data: &[u8], token: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + token.len());
    let mut rest = data;
    while let Some(pos) = rest
        .windows(TOKEN_PLACEHOLDER.len())
        .position(|w| w == TOKEN_PLACEHOLDER)
    {
        out.extend_from_slice(&rest[..pos]);
        out.extend_from_slice(token.as_bytes());
        rest = &rest[pos + TOKEN_PLACEHOLDER.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Inserts the fixture credential into `store` (ignoring a conflict).
pub async fn insert_credential(store: &dyn CredentialStore, credential: &StoredCredential) {
    match store.insert(credential).await {
        Ok(()) | Err(StoreError::Conflict) => {}
        Err(e) => panic!("cannot insert the fixture credential: {e}"),
    }
}

/// The statuses a fuzzed hosted-service answer may carry besides 200.
const ERROR_STATUSES: [u16; 9] = [400, 401, 403, 404, 409, 413, 429, 500, 503];
/// The content types a fuzzed hosted-service answer may carry.
const CONTENT_TYPES: [Option<&str>; 4] = [
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/html"),
    None,
];

/// The body of the hosted-response targets: the first byte picks the status
/// (even: 200, odd: one of the error statuses), the second the content
/// type, the rest is the body, handed to `decode` (a client's
/// `fuzz_decode_response`). Invariant: a non-2xx or non-JSON answer is
/// accepted as no wire type.
pub fn hosted_response(data: &[u8], decode: fn(u16, Option<&str>, &[u8]) -> usize) {
    let [s, t, body @ ..] = data else {
        return;
    };
    let status = if s % 2 == 0 {
        200
    } else {
        ERROR_STATUSES[usize::from(s / 2) % ERROR_STATUSES.len()]
    };
    let content_type = CONTENT_TYPES[usize::from(*t) % CONTENT_TYPES.len()];
    let accepted = decode(status, content_type, body);
    if status != 200 || content_type.is_none_or(|t| t == "text/html") {
        assert_eq!(accepted, 0);
    }
}

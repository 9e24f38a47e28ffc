//! Sign-up tickets: an anonymous visitor's pending sign-up, sealed into a
//! cookie, so that `POST {prefix}/registration/authorize` persists nothing
//! server-side (no session row) before a ceremony completes.
//!
//! A sign-up needs a provider user handle before the passkey exists, and
//! `/register` must check that the proof carries exactly the handle
//! reserved by *this browser* (a proof registered for another browser's
//! sign-up is `403 user_mismatch`). The handle, the username and the expiry
//! travel in the `passlock_signup` cookie (`HttpOnly`, `SameSite=Lax`,
//! `Path={prefix}`, `Secure` like the session cookie), authenticated with
//! HMAC-SHA256 under the [`SealingKey`]. A forged or altered ticket does not
//! open, an expired one neither; `/register` then answers `401
//! registration_not_authorized`. A ticket is no credential: completing a
//! sign-up also needs a passkey proof for its handle, which only the
//! ceremony authorized with that handle yields, once.
//!
//! A signed-in user adding a passkey already has a session, so that pending
//! registration stays in the session record.
//!
//! Instances of an app must share the key: by default it is derived from
//! the provider's own secret, which instances already share (the embedded
//! provider's id_token signing key, kept in the shared ceremony store; the
//! hosted providers' API key), or set one with
//! [`PasslockBuilder::sealing_key`](crate::PasslockBuilder::sealing_key).

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::clock::UnixMillis;
use crate::error::ConfigError;
use crate::id::UserHandle;
use crate::state::PendingRegistration;

/// The name of the sign-up ticket cookie.
pub(crate) const TICKET_COOKIE: &str = "passlock_signup";

/// Largest ticket accepted (a handle, a 64-character username and a MAC
/// fit in well under 1 KiB).
const MAX_TICKET_LEN: usize = 2048;

/// The HMAC-SHA256 key that seals sign-up tickets. `Debug` prints no key
/// material.
#[derive(Clone)]
pub struct SealingKey(Arc<hmac::Key>);

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey([redacted])")
    }
}

impl SealingKey {
    /// A key from at least 32 bytes of secret material (for example from
    /// the app's secret store, the same on every instance).
    pub fn from_bytes(secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < 32 {
            return Err(ConfigError::new(
                "sealing_key",
                "needs at least 32 bytes of secret material",
            ));
        }
        Ok(Self(Arc::new(hmac::Key::new(hmac::HMAC_SHA256, secret))))
    }

    /// A random key, for one instance.
    pub fn random() -> Result<Self, ConfigError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map(|k| Self(Arc::new(k)))
            .map_err(|_| ConfigError::new("sealing_key", "no randomness available"))
    }

    /// A key derived from another secret of the app (`material`) for the
    /// purpose `label`: HMAC-SHA256(material, label). Providers use it to
    /// derive the default key from a secret their instances share.
    pub fn derive(material: &[u8], label: &str) -> Self {
        let outer = hmac::Key::new(hmac::HMAC_SHA256, material);
        let tag = hmac::sign(&outer, label.as_bytes());
        Self(Arc::new(hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())))
    }

    /// A key for another purpose (`label`) derived from this one:
    /// HMAC-SHA256(this key, label). Every instance sharing the sealing key
    /// derives the same key (the recovery code hashes use it).
    pub(crate) fn subkey(&self, label: &str) -> hmac::Key {
        let tag = hmac::sign(&self.0, label.as_bytes());
        hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
    }
}

/// What a ticket holds, as sealed.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The reserved provider user handle.
    h: UserHandle,
    /// The username.
    n: String,
    /// Expiry, epoch ms.
    e: UnixMillis,
}

/// Seals the anonymous pending sign-up `pending` (`for_user` is ignored: a
/// ticket is only for sign-ups).
pub(crate) fn seal<U>(key: &SealingKey, pending: &PendingRegistration<U>) -> String {
    let sealed = Sealed {
        h: pending.user_handle.clone(),
        n: pending.username.clone(),
        e: pending.expires_at,
    };
    // A struct of a string, a handle and a number always serializes.
    let json = serde_json::to_vec(&sealed).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(&json);
    let tag = hmac::sign(&key.0, payload.as_bytes());
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Opens a ticket: `None` when it is malformed, was not sealed with `key`
/// (checked in constant time) or has expired at `now`.
pub(crate) fn open<U>(
    key: &SealingKey,
    ticket: &str,
    now: UnixMillis,
) -> Option<PendingRegistration<U>> {
    if ticket.len() > MAX_TICKET_LEN {
        return None;
    }
    let (payload, tag) = ticket.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    hmac::verify(&key.0, payload.as_bytes(), &tag).ok()?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let sealed: Sealed = serde_json::from_slice(&json).ok()?;
    (sealed.e > now).then(|| PendingRegistration {
        user_handle: sealed.h,
        username: sealed.n,
        for_user: None,
        expires_at: sealed.e,
    })
}

/// The `Set-Cookie` value that stores `ticket` for `max_age_secs` on the
/// routes under `path`, or (`ticket` `None`) removes it.
pub(crate) fn set_cookie(
    ticket: Option<&str>,
    path: &str,
    max_age_secs: u64,
    secure: bool,
) -> String {
    let (value, max_age) = match ticket {
        Some(t) => (t, max_age_secs),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{TICKET_COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    )
}

/// The ticket in a request's `Cookie` header value(s), if any.
pub fn from_cookie_header<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == TICKET_COOKIE && !value.is_empty())
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(expires_at: UnixMillis) -> PendingRegistration<i64> {
        PendingRegistration {
            user_handle: UserHandle::new("handle-1").unwrap(),
            username: "alice".to_owned(),
            for_user: Some(9),
            expires_at,
        }
    }

    fn key() -> SealingKey {
        SealingKey::from_bytes(&[7; 32]).unwrap()
    }

    #[test]
    fn a_ticket_opens_with_its_key_until_it_expires() {
        let t = seal(&key(), &pending(1_000));
        let back: PendingRegistration<i64> = open(&key(), &t, 999).unwrap();
        assert_eq!(back.user_handle.as_str(), "handle-1");
        assert_eq!(back.username, "alice");
        assert_eq!(back.for_user, None, "a ticket is only ever a sign-up");
        assert_eq!(back.expires_at, 1_000);
        assert!(open::<i64>(&key(), &t, 1_000).is_none(), "expired");
    }

    #[test]
    fn altered_forged_or_foreign_tickets_do_not_open() {
        let t = seal(&key(), &pending(1_000));
        let other = SealingKey::from_bytes(&[8; 32]).unwrap();
        assert!(open::<i64>(&other, &t, 0).is_none(), "another key");
        let (payload, tag) = t.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"h":"handle-2","n":"alice","e":1000}"#);
        assert!(open::<i64>(&key(), &format!("{forged_payload}.{tag}"), 0).is_none());
        let mut bad_tag = URL_SAFE_NO_PAD.decode(tag).unwrap();
        bad_tag[0] ^= 1;
        let bad = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(bad_tag));
        assert!(open::<i64>(&key(), &bad, 0).is_none());
        for garbage in ["", ".", "a.b", &"a".repeat(3000), payload] {
            assert!(open::<i64>(&key(), garbage, 0).is_none(), "{garbage:?}");
        }
    }

    #[test]
    fn keys_need_32_bytes_and_print_nothing() {
        assert_eq!(
            SealingKey::from_bytes(&[1; 31]).unwrap_err().field,
            "sealing_key"
        );
        let k = SealingKey::from_bytes(&[0x41; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "SealingKey([redacted])");
        let a = SealingKey::derive(b"secret", "label");
        let b = SealingKey::derive(b"secret", "label");
        let t = seal(&a, &pending(10));
        assert!(
            open::<i64>(&b, &t, 0).is_some(),
            "derivation is deterministic"
        );
        let c = SealingKey::derive(b"secret", "other label");
        assert!(open::<i64>(&c, &t, 0).is_none());
    }

    #[test]
    fn cookies() {
        assert_eq!(
            set_cookie(Some("t"), "/passkey", 300, true),
            "passlock_signup=t; Path=/passkey; Max-Age=300; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            set_cookie(None, "/p", 300, false),
            "passlock_signup=; Path=/p; Max-Age=0; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            from_cookie_header(["id=1; passlock_signup=abc.def", "x=2"]),
            Some("abc.def")
        );
        assert_eq!(from_cookie_header(["passlock_signup="]), None);
        assert_eq!(from_cookie_header(["xpasslock_signup=1"]), None);
    }
}

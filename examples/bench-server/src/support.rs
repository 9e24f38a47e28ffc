//! What both modes share: the `Passlock` (embedded provider on memory
//! stores), the sign-up ceremony with the software authenticator, and the
//! line the script reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::{Passlock, SignUpError, SignUpHook};
use passlock_test::authenticator::SoftAuthenticator;
use serde_json::{Value, json};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The one allowed origin (plain `http://localhost`, so cookies are not
/// `Secure` and wrk/curl may send them over plain HTTP).
pub(crate) const ORIGIN: &str = "http://localhost:3000";

/// The body both `/guarded` and `/bare` answer for the signed-in user.
pub(crate) fn body(user: i64) -> String {
    format!("user {user}")
}

#[derive(Debug, Default)]
struct Users(AtomicI64);

#[async_trait::async_trait]
impl SignUpHook<i64> for Users {
    async fn create_user(&self, _username: &str) -> Result<i64, SignUpError> {
        Ok(self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
    async fn abandon_user(&self, _user: &i64) -> Result<(), SignUpError> {
        Ok(())
    }
}

/// The embedded provider on memory stores, sign-up open.
pub(crate) async fn passlock() -> Result<Passlock<i64>, BoxError> {
    let provider =
        EmbeddedProvider::in_memory(EmbeddedConfig::new("localhost", "bench", [ORIGIN])).await?;
    Ok(Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .origins([ORIGIN])
    .sign_up(Arc::new(Users::default()))
    .build()?)
}

/// An in-process client of one app that keeps the session cookie.
pub(crate) trait Client {
    /// POSTs `body` as JSON to `path` with `Origin` and the cookie held so
    /// far; answers the response status, its `Set-Cookie` header (if any)
    /// and its body.
    async fn post(
        &mut self,
        path: &str,
        cookie: Option<&str>,
        body: Value,
    ) -> Result<(u16, Option<String>, Vec<u8>), BoxError>;
}

/// Every `Set-Cookie` value of a response, one per line (`None` when
/// there is none).
pub(crate) fn set_cookies<'a, V: 'a + AsHeaderStr>(
    values: impl Iterator<Item = &'a V>,
) -> Result<Option<String>, BoxError> {
    let lines = values
        .map(|v| v.header_str().map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!lines.is_empty()).then(|| lines.join("\n")))
}

/// A header value as text (axum's and actix's `HeaderValue` are two types).
pub(crate) trait AsHeaderStr {
    /// The value, if it is visible ASCII.
    fn header_str(&self) -> Result<&str, BoxError>;
}

impl AsHeaderStr for axum::http::HeaderValue {
    fn header_str(&self) -> Result<&str, BoxError> {
        Ok(self.to_str()?)
    }
}

impl AsHeaderStr for actix_web::http::header::HeaderValue {
    fn header_str(&self) -> Result<&str, BoxError> {
        Ok(self.to_str()?)
    }
}

/// Applies `Set-Cookie` lines to a jar kept as one `Cookie` header value
/// (`a=1; b=2`): a cookie set with an empty value is removed.
pub(crate) fn keep_cookies(jar: &mut Option<String>, set_cookie: &str) {
    let mut cookies: Vec<(String, String)> = jar
        .as_deref()
        .unwrap_or("")
        .split("; ")
        .filter_map(|p| p.split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    for line in set_cookie.lines() {
        let Some((name, value)) = line.split(';').next().and_then(|p| p.split_once('=')) else {
            continue;
        };
        cookies.retain(|(n, _)| n != name);
        if !value.is_empty() {
            cookies.push((name.to_owned(), value.to_owned()));
        }
    }
    let joined: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
    *jar = (!joined.is_empty()).then(|| joined.join("; "));
}

/// One request: keeps the cookies it sets, fails on a non-2xx.
async fn send(
    client: &mut impl Client,
    cookie: &mut Option<String>,
    path: &str,
    body: Value,
) -> Result<Value, BoxError> {
    let (status, set_cookie, bytes) = client.post(path, cookie.as_deref(), body).await?;
    if let Some(set) = set_cookie {
        keep_cookies(cookie, &set);
    }
    if !(200..300).contains(&status) {
        return Err(format!("{path}: {status}").into());
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A real sign-up through the app's routes with the software authenticator;
/// answers the signed-in session's cookie (`name=value`).
pub(crate) async fn sign_up(client: &mut impl Client) -> Result<String, BoxError> {
    let mut cookie = None;
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let a = send(
        client,
        &mut cookie,
        "/passkey/registration/authorize",
        json!({ "username": "alice" }),
    )
    .await?;
    let base = format!(
        "{}/v2/{}/passkey",
        a["endpoint"].as_str().unwrap_or_default(),
        a["tenancyId"].as_str().unwrap_or_default()
    );
    let o = send(
        client,
        &mut cookie,
        &format!("{base}/registration/options"),
        json!({ "registrationToken": a["registrationToken"] }),
    )
    .await?;
    let response = auth.create(&o["optionsJSON"]).await?;
    let v = send(
        client,
        &mut cookie,
        &format!("{base}/registration/verification"),
        json!({ "response": response, "sessionToken": o["sessionToken"] }),
    )
    .await?;
    send(
        client,
        &mut cookie,
        "/passkey/register",
        json!({ "code": v["code"] }),
    )
    .await?;
    Ok(cookie.ok_or("no session cookie")?)
}

/// The line `scripts/bench-http` waits for.
pub(crate) fn announce(port: u16, cookie: &str, record_bytes: usize, session_bytes: usize) {
    println!("{port} {cookie} {record_bytes} {session_bytes}");
}

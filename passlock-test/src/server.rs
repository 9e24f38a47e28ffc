//! The HTTP plumbing the hosted fakes ([`FakePasslock`](super::fake_passlock::FakePasslock),
//! [`FakePassage`](super::fake_passage::FakePassage)) share: a hyper server
//! on `127.0.0.1:0` that stops when dropped, the request pipeline (count the
//! hit, inject the fault, read a capped body, route, post-process the
//! answer), the fake's clock, credentials, per-route hit counters and state.
//!
//! A fake implements [`Fake`] on its [`Shared`] state: it names the route of
//! a request and the fault to inject ([`Fake::arrive`]) and answers it
//! ([`Fake::route`]); everything around that lives here, so both fakes inject
//! faults the same way. Their wire formats (error bodies, route names) stay
//! theirs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use passlock_core::clock::{SharedClock, UnixMillis};
use passlock_core::id::TenancyId;
use passlock_core::secret::ApiKey;

/// Largest accepted request body.
const MAX_BODY: usize = 64 * 1024;

/// A fake's answer.
pub(crate) type Resp = Response<Full<Bytes>>;

/// An answer with `status`, `Content-Type: content_type` and `body`.
pub(crate) fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A JSON answer (`Content-Type: application/json` exactly).
pub(crate) fn ok<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> Resp {
    respond(
        status,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

/// The injected server failure: `status` with a `text/plain` body.
/// `429 Too Many Requests` with a `text/plain` body and, when given, this
/// `Retry-After` value.
pub(crate) fn too_many_requests(retry_after: Option<&str>) -> Resp {
    let mut r = respond(429, "text/plain", b"too many requests".to_vec());
    if let Some(v) = retry_after.and_then(|v| hyper::header::HeaderValue::from_str(v).ok()) {
        r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    r
}

pub(crate) fn internal_error(status: u16) -> Resp {
    respond(status, "text/plain", b"internal error".to_vec())
}

/// Decodes `%XX` escapes (a malformed escape stays as it is); with
/// `plus_as_space`, `+` becomes a space (form encoding).
pub(crate) fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let Some(h) = bytes.get(i + 1..i + 3)
            && let Ok(h) = std::str::from_utf8(h)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if plus_as_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the pipeline does about a fake's fault, decided on arrival.
pub(crate) enum Plan {
    /// Answer normally.
    None,
    /// Wait this long, then answer normally.
    Latency(Duration),
    /// Close the connection without answering.
    DropConnection,
    /// Answer this at once, without reading the body or routing.
    Answer(Resp),
    /// Route as usual, then answer `200 application/json` with these bytes.
    MalformedJson(&'static [u8]),
    /// Route as usual, then answer the same status and body as `text/html`.
    WrongContentType,
}

/// The parts of a request the fakes route on.
pub(crate) struct Head {
    /// The method.
    pub(crate) method: Method,
    /// The path split on `/` (without the leading one), each segment
    /// percent-decoded.
    pub(crate) segs: Vec<String>,
    /// The raw query string (empty if none).
    pub(crate) query: String,
    /// The token of `Authorization: Bearer <token>`.
    pub(crate) bearer: Option<String>,
}

impl Head {
    fn of<B>(req: &Request<B>, plus_as_space: bool) -> Self {
        Self {
            method: req.method().clone(),
            segs: req
                .uri()
                .path()
                .trim_start_matches('/')
                .split('/')
                .map(|s| percent_decode(s, plus_as_space))
                .collect(),
            query: req.uri().query().unwrap_or_default().to_owned(),
            bearer: req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned),
        }
    }

    /// The path segments as `&str`s.
    pub(crate) fn segs(&self) -> Vec<&str> {
        self.segs.iter().map(String::as_str).collect()
    }
}

/// What a fake service knows about its own wire format.
pub(crate) trait Fake: Send + Sync + 'static {
    /// Whether `+` in a path segment decodes to a space.
    const PLUS_AS_SPACE: bool;
    /// What [`arrive`](Self::arrive) found out for [`route`](Self::route).
    type Route: Send;

    /// Classifies the request, counts its hit and picks the fault.
    fn arrive(&self, head: &Head) -> (Self::Route, Plan);

    /// The answer to a body over the size cap.
    fn too_large(&self) -> Resp;

    /// Answers a request (no fault applied).
    fn route(&self, head: &Head, route: Self::Route, body: &[u8]) -> Resp;
}

/// The state every fake keeps: its tenancy (or app) id, API key, clock,
/// per-route hit counters and its own mutable state `S`.
pub(crate) struct Shared<S> {
    /// The tenancy (Passlock) or app (Passage) id.
    pub(crate) id: TenancyId,
    /// The API key server-side routes require.
    pub(crate) api_key: ApiKey,
    clock: SharedClock,
    hits: Mutex<HashMap<&'static str, u64>>,
    state: Mutex<S>,
}

/// Locks `m`; a test that panicked while holding the lock poisons it, and
/// the state is still usable for the remaining assertions.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<S> Shared<S> {
    /// A fake's state.
    pub(crate) fn new(id: TenancyId, api_key: ApiKey, clock: SharedClock, state: S) -> Self {
        Self {
            id,
            api_key,
            clock,
            hits: Mutex::new(HashMap::new()),
            state: Mutex::new(state),
        }
    }

    /// The fake's own state, locked.
    pub(crate) fn state(&self) -> MutexGuard<'_, S> {
        lock(&self.state)
    }

    /// The fake's clock.
    pub(crate) fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// Now on the fake's clock.
    pub(crate) fn now(&self) -> UnixMillis {
        self.clock.now_millis()
    }

    /// Counts a request on route `name`.
    pub(crate) fn hit(&self, name: &'static str) {
        *lock(&self.hits).entry(name).or_insert(0) += 1;
    }

    /// Requests counted on route `name`.
    pub(crate) fn hits(&self, name: &str) -> u64 {
        lock(&self.hits).get(name).copied().unwrap_or(0)
    }

    /// Requests counted on every route together.
    pub(crate) fn total_hits(&self) -> u64 {
        lock(&self.hits).values().sum()
    }

    /// Whether `bearer` is the API key (compared in constant time).
    pub(crate) fn key_ok(&self, bearer: Option<&str>) -> bool {
        bearer.is_some_and(|b| ApiKey::new(b).ct_eq(&self.api_key))
    }
}

/// A running fake server: accepts HTTP/1 connections on `127.0.0.1:0` until
/// dropped.
pub(crate) struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Binds `127.0.0.1:0` and serves `fake` there.
    pub(crate) async fn start<F: Fake>(fake: Arc<F>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let fake = fake.clone();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let svc = hyper::service::service_fn(move |req| handle(fake.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn handle<F: Fake>(fake: Arc<F>, req: Request<Incoming>) -> Result<Resp, std::io::Error> {
    let head = Head::of(&req, F::PLUS_AS_SPACE);
    let (route, plan) = fake.arrive(&head);
    let plan = match plan {
        Plan::Latency(d) => {
            tokio::time::sleep(d).await;
            Plan::None
        }
        Plan::DropConnection => {
            return Err(std::io::Error::other("fault: connection dropped"));
        }
        Plan::Answer(r) => return Ok(r),
        other => other,
    };
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(fake.too_large()),
    };
    let resp = fake.route(&head, route, &body);
    Ok(match plan {
        Plan::MalformedJson(bytes) => respond(200, "application/json", bytes.to_vec()),
        Plan::WrongContentType => {
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map(|b| b.to_bytes());
            respond(status, "text/html", body.unwrap_or_default().to_vec())
        }
        _ => resp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%3f", false), "a/b?");
        assert_eq!(percent_decode("a%2", false), "a%2");
        assert_eq!(percent_decode("%zz", false), "%zz");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("a+b%2B", true), "a b+");
    }
}

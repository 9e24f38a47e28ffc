//! The outbound HTTP wrapper: timeouts, no redirects, body cap.
//!
//! Every call to a hosted service (Passlock, Passage, a JWKS) goes through one
//! [`HttpClient`]: a single pooled `reqwest::Client` with a connect timeout
//! (2 s), a total timeout (5 s), redirects disabled and response bodies read
//! chunk by chunk up to a cap (64 KiB). Failures come back as
//! [`UpstreamError`]; no error ever carries a URL (a code-exchange URL holds
//! the code) or a response body.
//!
//! Only idempotent calls made with [`Retry::OnConnectFailure`] are retried,
//! once, and only when the connection could not be opened (nothing was sent).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::UpstreamError;
use crate::secret::ApiKey;

/// Timeouts and limits of outbound HTTP.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Time allowed to open a connection (default 2 s).
    pub connect_timeout: Duration,
    /// Time allowed for a whole call, body included (default 5 s).
    pub timeout: Duration,
    /// Largest accepted response body in bytes (default 64 KiB).
    pub max_body: usize,
    /// The `User-Agent` sent.
    pub user_agent: String,
    /// An optional circuit breaker (off by default).
    pub circuit_breaker: Option<CircuitBreaker>,
    /// The clock an HTTP-date `Retry-After` is converted to seconds with
    /// and the circuit breaker times its open state on (the system clock by
    /// default; the hosted providers set theirs).
    pub clock: crate::clock::SharedClock,
}

/// After `failures` consecutive outages (timeouts, connection failures,
/// 5xx; not a `429`, which says the service is up and when to come back),
/// calls fail at once with [`UpstreamError::CircuitOpen`] for
/// `open_for`; then one call is let through to probe the service. Time is
/// read from the [`HttpConfig::clock`] (the hosted providers set the app's
/// clock), so tests move it instead of sleeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreaker {
    /// Consecutive failures that open the circuit.
    pub failures: u32,
    /// How long the circuit stays open.
    pub open_for: Duration,
}

impl Default for CircuitBreaker {
    /// 5 consecutive failures open it for 30 s.
    fn default() -> Self {
        Self {
            failures: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    /// Milliseconds since the epoch, on the configured clock.
    open_until: Option<crate::clock::UnixMillis>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            max_body: 64 * 1024,
            user_agent: concat!("passlock-core/", env!("CARGO_PKG_VERSION")).to_owned(),
            circuit_breaker: None,
            clock: crate::clock::system(),
        }
    }
}

impl HttpConfig {
    /// Sets the total timeout of a call.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Turns the circuit breaker on.
    #[must_use]
    pub fn with_circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.circuit_breaker = Some(breaker);
        self
    }

    /// Sets the clock an HTTP-date `Retry-After` is read with and the
    /// circuit breaker is timed on.
    #[must_use]
    pub fn with_clock(mut self, clock: crate::clock::SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the response body cap.
    #[must_use]
    pub fn with_max_body(mut self, max_body: usize) -> Self {
        self.max_body = max_body;
        self
    }
}

/// Whether a call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retry {
    /// Never (POSTs, code exchanges: anything not safe to send twice).
    Never,
    /// Once, when the connection could not be opened (idempotent GETs only).
    OnConnectFailure,
}

/// The HTTP method of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// DELETE
    Delete,
    /// PATCH
    Patch,
}

impl Method {
    fn to_reqwest(self) -> reqwest::Method {
        match self {
            Self::Get => reqwest::Method::GET,
            Self::Post => reqwest::Method::POST,
            Self::Delete => reqwest::Method::DELETE,
            Self::Patch => reqwest::Method::PATCH,
        }
    }
}

/// A response read in full (within the cap).
#[derive(Clone)]
pub struct HttpResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body (at most the configured cap).
    pub body: Vec<u8>,
    /// The `Retry-After` header in seconds (an HTTP date is converted with
    /// the configured clock), capped at
    /// [`MAX_RETRY_AFTER_SECS`](crate::error::MAX_RETRY_AFTER_SECS); `None`
    /// when absent or unparsable.
    pub retry_after: Option<u64>,
}

impl std::fmt::Debug for HttpResponse {
    // The body may hold tokens or codes: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the media type is `application/json` (parameters such as a
    /// charset are ignored, the essence must match).
    pub fn is_json(&self) -> bool {
        self.content_type.as_deref().is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
        })
    }

    /// Parses the body as JSON, after checking the content type.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, UpstreamError> {
        if !self.is_json() {
            return Err(bad("wrong content type", Some(self.status), None));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| bad("unexpected body", Some(self.status), Some(Box::new(e))))
    }
}

fn bad(
    reason: &'static str,
    status: Option<u16>,
    source: Option<crate::error::BoxError>,
) -> UpstreamError {
    UpstreamError::BadResponse {
        reason,
        status,
        source,
    }
}

/// The one outbound HTTP client. Cheap to clone (connections are pooled and
/// shared between clones).
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    config: HttpConfig,
    breaker: std::sync::Arc<std::sync::Mutex<Breaker>>,
}

impl HttpClient {
    /// A client with these timeouts and limits.
    pub fn new(config: HttpConfig) -> Result<Self, crate::error::ConfigError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| {
                crate::error::ConfigError::new("http", format!("cannot build the client: {e}"))
            })?;
        Ok(Self {
            client,
            config,
            breaker: std::sync::Arc::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// `GET url`, answered within the total timeout.
    pub async fn get(
        &self,
        url: &str,
        bearer: Option<&ApiKey>,
        retry: Retry,
    ) -> Result<HttpResponse, UpstreamError> {
        self.send(Method::Get, url, bearer, None, retry).await
    }

    /// `POST url` with a JSON body. Never retried.
    pub async fn post_json<B: Serialize + ?Sized>(
        &self,
        url: &str,
        bearer: Option<&ApiKey>,
        body: &B,
    ) -> Result<HttpResponse, UpstreamError> {
        let bytes = serde_json::to_vec(body).map_err(|e| UpstreamError::BadResponse {
            reason: "cannot encode the request",
            status: None,
            source: Some(Box::new(e)),
        })?;
        self.send(Method::Post, url, bearer, Some(bytes), Retry::Never)
            .await
    }

    /// Sends one request and reads the answer in full (within the cap).
    /// `body` is sent as `application/json`.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&ApiKey>,
        body: Option<Vec<u8>>,
        retry: Retry,
    ) -> Result<HttpResponse, UpstreamError> {
        let Some(cb) = self.config.circuit_breaker else {
            return self.send_unguarded(method, url, bearer, body, retry).await;
        };
        let open_for = i64::try_from(cb.open_for.as_millis()).unwrap_or(i64::MAX);
        let now = self.config.clock.now_millis();
        if let Ok(mut b) = self.breaker.lock() {
            match b.open_until {
                Some(until) if now < until => return Err(UpstreamError::CircuitOpen),
                // Half open: this call probes; others wait for its outcome.
                Some(_) => b.open_until = Some(now.saturating_add(open_for)),
                None => {}
            }
        }
        let result = self.send_unguarded(method, url, bearer, body, retry).await;
        let outage = match &result {
            Ok(r) => r.status >= 500,
            Err(e) => {
                matches!(e, UpstreamError::Timeout | UpstreamError::Unavailable(_))
                    || matches!(e, UpstreamError::BadResponse { status: Some(s), .. } if *s >= 500)
            }
        };
        if let Ok(mut b) = self.breaker.lock() {
            if outage {
                b.failures = b.failures.saturating_add(1);
                if b.failures >= cb.failures {
                    tracing::warn!("passkey service failing; circuit opened");
                    let now = self.config.clock.now_millis();
                    b.open_until = Some(now.saturating_add(open_for));
                }
            } else {
                *b = Breaker::default();
            }
        }
        result
    }

    async fn send_unguarded(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&ApiKey>,
        body: Option<Vec<u8>>,
        retry: Retry,
    ) -> Result<HttpResponse, UpstreamError> {
        let attempt = || self.send_once(method, url, bearer, body.clone());
        // The outer bound is a safety net on top of reqwest's own timeout.
        let bound = self.config.timeout + Duration::from_millis(250);
        let first = tokio::time::timeout(bound, attempt())
            .await
            .unwrap_or(Err(Attempt::Failed(UpstreamError::Timeout)));
        match first {
            Ok(r) => Ok(r),
            Err(Attempt::ConnectFailed(_))
                if retry == Retry::OnConnectFailure && method == Method::Get =>
            {
                tracing::debug!("connect failed; retrying once");
                match tokio::time::timeout(bound, attempt()).await {
                    Ok(Ok(r)) => Ok(r),
                    Ok(Err(e)) => Err(e.into_error()),
                    Err(_) => Err(UpstreamError::Timeout),
                }
            }
            Err(e) => Err(e.into_error()),
        }
    }

    async fn send_once(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&ApiKey>,
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, Attempt> {
        let mut req = self
            .client
            .request(method.to_reqwest(), url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(key) = bearer {
            req = req.bearer_auth(key.expose_secret());
        }
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut resp = req.send().await.map_err(classify)?;
        let status = resp.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let retry_after = header(reqwest::header::RETRY_AFTER)
            .and_then(|v| parse_retry_after(&v, self.config.clock.now_secs()));
        if (300..400).contains(&status) {
            // Redirects are never followed: a redirect from an API is an error.
            return Err(Attempt::Failed(bad("redirect", Some(status), None)));
        }
        let max = self.config.max_body;
        if resp
            .content_length()
            .is_some_and(|len| usize::try_from(len).map_or(true, |len| len > max))
        {
            return Err(Attempt::Failed(bad("body too large", Some(status), None)));
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > max {
                        return Err(Attempt::Failed(bad("body too large", Some(status), None)));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(Attempt::Failed(classify_body(e, status))),
            }
        }
        Ok(HttpResponse {
            status,
            content_type,
            body,
            retry_after,
        })
    }
}

enum Attempt {
    /// The connection was never opened: nothing was sent.
    ConnectFailed(UpstreamError),
    Failed(UpstreamError),
}

impl Attempt {
    fn into_error(self) -> UpstreamError {
        match self {
            Self::ConnectFailed(e) | Self::Failed(e) => e,
        }
    }
}

/// Whether `id` may be placed in an outbound URL path as one segment: 1 to
/// 1024 characters of `[A-Za-z0-9_-]` (what the hosted services' ids,
/// codes and tokens are made of). Dot segments, `/`, `%`, whitespace and
/// empty values are refused, so no value can fold the URL into another
/// upstream path. The hosted clients check every id before any call.
pub(crate) fn is_url_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A `Retry-After` value in seconds from now: delta-seconds, or an
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) read against `now_secs`
/// (a date in the past is `0`). Capped at
/// [`MAX_RETRY_AFTER_SECS`](crate::error::MAX_RETRY_AFTER_SECS); anything
/// else is `None`.
pub(crate) fn parse_retry_after(value: &str, now_secs: i64) -> Option<u64> {
    let cap = crate::error::MAX_RETRY_AFTER_SECS;
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // An overlong number of digits is a huge delay: the cap.
        return Some(value.parse::<u64>().map_or(cap, |s| s.min(cap)));
    }
    let at = parse_imf_fixdate(value)?;
    let delta = at.saturating_sub(now_secs).max(0);
    Some(u64::try_from(delta).map_or(cap, |d| d.min(cap)))
}

/// Seconds since the epoch of an IMF-fixdate (RFC 9110, section 5.6.7).
fn parse_imf_fixdate(value: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = value.split(' ').collect();
    let [weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let digits = |s: &str, n: usize| -> Option<i64> {
        (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    if weekday.len() != 4 || !weekday.ends_with(',') {
        return None;
    }
    let day = digits(day, 2)?;
    let month = i64::try_from(MONTHS.iter().position(|m| m == month)?).ok()? + 1;
    let year = digits(year, 4)?;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    let (h, m, s) = (digits(h, 2)?, digits(m, 2)?, digits(s, 2)?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

fn classify(e: reqwest::Error) -> Attempt {
    // Never keep the URL: a code-exchange URL holds the code.
    let e = e.without_url();
    if e.is_timeout() {
        Attempt::Failed(UpstreamError::Timeout)
    } else if e.is_connect() {
        Attempt::ConnectFailed(UpstreamError::Unavailable(Some(Box::new(e))))
    } else {
        Attempt::Failed(UpstreamError::Unavailable(Some(Box::new(e))))
    }
}

fn classify_body(e: reqwest::Error, status: u16) -> UpstreamError {
    let e = e.without_url();
    if e.is_timeout() {
        UpstreamError::Timeout
    } else {
        bad("body cut short", Some(status), Some(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(ct: Option<&str>, body: &str) -> HttpResponse {
        HttpResponse {
            status: 200,
            content_type: ct.map(str::to_owned),
            body: body.as_bytes().to_vec(),
            retry_after: None,
        }
    }

    #[test]
    fn json_needs_the_json_media_type() {
        assert!(
            resp(Some("application/json"), "{}")
                .json::<serde_json::Value>()
                .is_ok()
        );
        assert!(
            resp(Some("application/json; charset=utf-8"), "{}")
                .json::<serde_json::Value>()
                .is_ok()
        );
        assert!(matches!(
            resp(Some("text/html"), "{}").json::<serde_json::Value>(),
            Err(UpstreamError::BadResponse {
                reason: "wrong content type",
                ..
            })
        ));
        assert!(resp(None, "{}").json::<serde_json::Value>().is_err());
        assert!(matches!(
            resp(Some("application/json"), "<html>").json::<serde_json::Value>(),
            Err(UpstreamError::BadResponse {
                reason: "unexpected body",
                ..
            })
        ));
    }

    #[test]
    fn url_safe_ids_are_allow_listed() {
        for ok in ["a", "A-z_09", "tenancy-abc", &"x".repeat(1024)] {
            assert!(is_url_safe_id(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "%2e%2e",
            "a/b",
            "  ",
            "a b",
            "a.b",
            "a\\b",
            "a?b",
            "a#b",
            "é",
            &"x".repeat(1025),
        ] {
            assert!(!is_url_safe_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date_is_capped() {
        // 1994-11-06T08:49:37Z
        let at = 784_111_777;
        assert_eq!(parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"), Some(at));
        assert_eq!(parse_retry_after("120", at), Some(120));
        assert_eq!(parse_retry_after(" 7 ", at), Some(7));
        assert_eq!(parse_retry_after("99999", at), Some(3600));
        assert_eq!(parse_retry_after("99999999999999999999999", at), Some(3600));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at - 90),
            Some(90)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at + 90),
            Some(0)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at - 86_400),
            Some(3600)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
        ] {
            assert_eq!(parse_retry_after(bad, at), None, "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_body() {
        let r = resp(Some("application/json"), "{\"code\":\"secretcode\"}");
        assert!(!format!("{r:?}").contains("secretcode"));
    }

    #[tokio::test]
    async fn circuit_breaker_opens_after_consecutive_outages_and_probes_later() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cb = CircuitBreaker {
            failures: 2,
            open_for: Duration::from_secs(30),
        };
        let clock = crate::clock::ManualClock::new(1_800_000_000_000);
        let client = HttpClient::new(
            HttpConfig::default()
                .with_circuit_breaker(cb)
                .with_clock(std::sync::Arc::new(clock.clone())),
        )
        .unwrap();
        let url = format!("http://127.0.0.1:{port}/x");
        for _ in 0..2 {
            let e = client.get(&url, None, Retry::Never).await.unwrap_err();
            assert!(matches!(e, UpstreamError::Unavailable(_)), "{e:?}");
        }
        let e = client.get(&url, None, Retry::Never).await.unwrap_err();
        assert!(matches!(e, UpstreamError::CircuitOpen), "{e:?}");
        assert_eq!(e.status().as_u16(), 503);
        // Still open one millisecond before the end of `open_for`.
        clock.set_millis(1_800_000_000_000 + 29_999);
        let e = client.get(&url, None, Retry::Never).await.unwrap_err();
        assert!(matches!(e, UpstreamError::CircuitOpen), "{e:?}");
        clock.set_millis(1_800_000_000_000 + 30_000);
        // Half open: one probe reaches the (still dead) service and re-opens.
        let e = client.get(&url, None, Retry::Never).await.unwrap_err();
        assert!(matches!(e, UpstreamError::Unavailable(_)), "{e:?}");
        let e = client.get(&url, None, Retry::Never).await.unwrap_err();
        assert!(matches!(e, UpstreamError::CircuitOpen), "{e:?}");
        // Off by default.
        let plain = HttpClient::new(HttpConfig::default()).unwrap();
        for _ in 0..6 {
            let e = plain.get(&url, None, Retry::Never).await.unwrap_err();
            assert!(matches!(e, UpstreamError::Unavailable(_)), "{e:?}");
        }
    }

    #[tokio::test]
    async fn connection_refused_is_unavailable_without_url() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = HttpClient::new(HttpConfig::default()).unwrap();
        let url = format!("http://127.0.0.1:{port}/v2/t/principal/secretcode");
        let err = client
            .get(&url, None, Retry::OnConnectFailure)
            .await
            .unwrap_err();
        assert!(matches!(err, UpstreamError::Unavailable(_)), "{err:?}");
        let mut chain = format!("{err} {err:?}");
        let mut src = std::error::Error::source(&err);
        while let Some(s) = src {
            chain.push_str(&format!(" {s} {s:?}"));
            src = s.source();
        }
        assert!(!chain.contains("secretcode"), "{chain}");
    }
}

/// Checks a hosted service's endpoint and key, for every hosted provider's
/// config: an absolute `https` URL (`http` only on a loopback host), without
/// query, fragment or credentials, and a non-empty API key.
pub fn validate_endpoint(
    endpoint: &str,
    api_key: &crate::secret::ApiKey,
) -> Result<url::Url, crate::error::ConfigError> {
    use crate::error::ConfigError;
    let url = url::Url::parse(endpoint)
        .map_err(|_| ConfigError::new("endpoint", "not an absolute URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(ConfigError::new("endpoint", "has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(ConfigError::new(
                "endpoint",
                "must be https (http only for localhost)",
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            "endpoint",
            "must not have a query or fragment",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new("endpoint", "must not hold credentials"));
    }
    if api_key.is_empty() {
        return Err(ConfigError::new("api_key", "is empty"));
    }
    Ok(url)
}

#[cfg(test)]
mod endpoint_tests {
    use super::validate_endpoint;
    use crate::secret::ApiKey;

    #[test]
    fn endpoints_must_be_https_except_loopback() {
        let key = ApiKey::new("k");
        assert!(validate_endpoint("https://api.passlock.dev", &key).is_ok());
        assert!(validate_endpoint("http://127.0.0.1:8080", &key).is_ok());
        assert!(validate_endpoint("http://localhost:8080", &key).is_ok());
        for bad in [
            "http://api.passlock.dev",
            "https://user:pw@api.passlock.dev",
            "https://api.passlock.dev/?x=1",
            "not a url",
        ] {
            assert_eq!(
                validate_endpoint(bad, &key).unwrap_err().field,
                "endpoint",
                "{bad}"
            );
        }
        assert_eq!(
            validate_endpoint("https://api.passlock.dev", &ApiKey::new(""))
                .unwrap_err()
                .field,
            "api_key"
        );
    }
}

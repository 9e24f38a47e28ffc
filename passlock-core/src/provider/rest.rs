//! The REST client skeleton the hosted providers share: one base URL under
//! which every call's path is built from allow-listed segments, one bearer
//! API key, one [`HttpClient`] (timeouts, no redirects, a body cap), JSON
//! bodies, and one decoding rule: a 2xx answer is the expected type, any
//! other is the service's typed error.
//!
//! [`PasslockClient`](super::passlock::PasslockClient) and
//! [`PassageClient`](super::passage::PassageClient) hold only what their
//! service differs in: the path prefix, the error body ([`Service`]) and the
//! calls.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ConfigError, UpstreamError};
use crate::http::{HttpClient, HttpConfig, HttpResponse, Method, Retry};
use crate::secret::ApiKey;

/// What a hosted service differs in: its failed-call error and how an
/// answer that is not a 2xx becomes one.
pub(crate) trait Service {
    /// A failed call to the service.
    type Error: From<UpstreamError>;

    /// The error a path segment that cannot be an id of the service turns
    /// into (answered before any call).
    fn unsafe_segment() -> Self::Error;

    /// The typed error of a non-2xx answer.
    fn error_of(resp: &HttpResponse) -> Self::Error;
}

/// A malformed answer of the service.
pub(crate) fn bad(reason: &'static str, status: u16) -> UpstreamError {
    UpstreamError::BadResponse {
        reason,
        status: Some(status),
        source: None,
    }
}

/// A 2xx answer as `T`; any other status as the service's typed error.
pub(crate) fn decode<S: Service, T: DeserializeOwned>(resp: &HttpResponse) -> Result<T, S::Error> {
    if !resp.is_success() {
        return Err(S::error_of(resp));
    }
    Ok(resp.json::<T>()?)
}

/// A JSON request body.
pub(crate) fn encode<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>, UpstreamError> {
    serde_json::to_vec(body).map_err(|e| UpstreamError::BadResponse {
        reason: "cannot encode the request",
        status: None,
        source: Some(Box::new(e)),
    })
}

/// Builds an [`HttpResponse`] for the fuzz entry points.
pub(crate) fn fuzz_response(status: u16, content_type: Option<&str>, body: &[u8]) -> HttpResponse {
    HttpResponse {
        status,
        content_type: content_type.map(str::to_owned),
        body: body.to_vec(),
        retry_after: None,
    }
}

/// One service's base URL, path prefix, key and HTTP client. Cheap to clone.
#[derive(Clone)]
pub(crate) struct RestClient {
    http: HttpClient,
    base: url::Url,
    prefix: Vec<String>,
    api_key: ApiKey,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("endpoint", &self.base.as_str())
            .field("prefix", &self.prefix)
            .field("api_key", &self.api_key) // redacted
            .finish_non_exhaustive()
    }
}

impl RestClient {
    /// A client of the validated `base` URL; every call's path starts with
    /// `prefix`.
    pub(crate) fn new(
        base: url::Url,
        prefix: &[&str],
        api_key: ApiKey,
        http: HttpConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            http: HttpClient::new(http)?,
            base,
            prefix: prefix.iter().map(|s| (*s).to_owned()).collect(),
            api_key,
        })
    }

    /// The endpoint, without a trailing slash.
    pub(crate) fn endpoint(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// The HTTP client.
    #[cfg_attr(not(feature = "hosted"), allow(dead_code))] // only Passlock asks for it
    pub(crate) fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The API key.
    pub(crate) fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// `{endpoint}/{prefix...}/{segments...}`. Every prefix and path
    /// segment must pass [`is_url_safe_id`](crate::http::is_url_safe_id)
    /// (else [`Service::unsafe_segment`], before any call); with
    /// `trailing_slash`, an empty last segment is allowed and makes a
    /// trailing slash.
    pub(crate) fn url<S: Service>(
        &self,
        segments: &[&str],
        trailing_slash: bool,
    ) -> Result<url::Url, S::Error> {
        let safe = |s: &&str| crate::http::is_url_safe_id(s);
        let segments_ok = match segments.split_last() {
            Some((last, ids)) if trailing_slash => {
                ids.iter().all(safe) && (last.is_empty() || safe(last))
            }
            _ => segments.iter().all(safe),
        };
        if !self.prefix.iter().all(|s| safe(&s.as_str())) || !segments_ok {
            return Err(S::unsafe_segment());
        }
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| S::Error::from(bad("endpoint cannot be a base", 0)))?;
            path.pop_if_empty().extend(&self.prefix).extend(segments);
        }
        Ok(url)
    }

    /// Sends one call with the bearer key and a JSON body.
    pub(crate) async fn send<S: Service, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&B>,
        retry: Retry,
    ) -> Result<HttpResponse, S::Error> {
        let body = body.map(encode).transpose()?;
        Ok(self
            .http
            .send(method, url.as_str(), Some(&self.api_key), body, retry)
            .await?)
    }

    /// Sends one call and decodes its answer ([`decode`]).
    #[cfg_attr(not(feature = "passage"), allow(dead_code))] // only Passage calls it
    pub(crate) async fn call<S: Service, T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&B>,
        retry: Retry,
    ) -> Result<T, S::Error> {
        let resp = self.send::<S, B>(method, url, body, retry).await?;
        decode::<S, T>(&resp)
    }
}

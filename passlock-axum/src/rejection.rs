//! The one place where errors become HTTP responses.

use axum::Json;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use passlock_core::FlowError;
use passlock_core::adapter::log_error;

/// The rejection of every passlock route and extractor: a [`FlowError`]
/// rendered as `{"error","message"}` JSON with the status and headers the
/// core assigns to it. Server faults are logged with their causes; causes
/// never reach the body.
#[derive(Debug)]
pub struct PasslockRejection(pub FlowError);

impl From<FlowError> for PasslockRejection {
    fn from(e: FlowError) -> Self {
        Self(e)
    }
}

impl std::fmt::Display for PasslockRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for PasslockRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl IntoResponse for PasslockRejection {
    fn into_response(self) -> Response {
        log_error(&self.0);
        let status = StatusCode::from_u16(self.0.status().as_u16())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.0.body())).into_response();
        // Also on the app's own routes (extractor rejections).
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.0.headers() {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// Renders a status and a JSON value (the embedded provider's answers).
#[cfg(feature = "embedded")]
pub(crate) fn json_response(status: u16, body: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

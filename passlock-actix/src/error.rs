//! The one place where errors become HTTP responses.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use passlock_core::FlowError;
use passlock_core::adapter::log_error;

/// The error of every passlock route, extractor and middleware: a
/// [`FlowError`] rendered as `{"error","message"}` JSON with the status and
/// headers the core assigns to it. Server faults are logged with their
/// causes; causes never reach the body.
#[derive(Debug)]
pub struct PasslockError(pub FlowError);

impl From<FlowError> for PasslockError {
    fn from(e: FlowError) -> Self {
        Self(e)
    }
}

impl fmt::Display for PasslockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for PasslockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl ResponseError for PasslockError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        log_error(&self.0);
        let mut response = HttpResponse::build(self.status_code())
            // Also on the app's own routes (extractor rejections).
            .insert_header((CACHE_CONTROL, "no-store"))
            .json(self.0.body());
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
pub(crate) fn json_response(status: u16, body: &serde_json::Value) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(body)
}

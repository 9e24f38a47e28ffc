//! For adapter authors; not needed by apps.
//!
//! Everything a web-framework adapter (`passlock-axum`, `passlock-actix`)
//! uses and an app never names: the flows the routes call ([`flow`]), the
//! JSON bodies of the app-facing HTTP contract ([`wire`]), the body limit
//! and parsers, the sign-up ticket cookie, the client address, the
//! embedded provider's browser-facing operations and the one way to log a
//! flow error. An adapter stays thin: parse HTTP with these, call a flow,
//! apply the [`SessionChange`](crate::SessionChange) it returns to the
//! session, render a [`FlowError`](crate::FlowError) with
//! [`FlowError::status`](crate::FlowError::status),
//! [`FlowError::body`](crate::FlowError::body) and
//! [`FlowError::headers`](crate::FlowError::headers).

/// The flows: one function per route, framework-free. Each takes the
/// [`Passlock`](crate::Passlock) and the loaded
/// [`SessionRecord`](crate::SessionRecord) and returns what the adapter
/// writes back.
pub mod flow {
    pub use crate::flow::*;
}

/// JSON bodies of the app-facing HTTP contract (DESIGN section 5).
pub mod wire {
    pub use crate::wire::*;
}

pub use crate::config::{
    MAX_BODY_BYTES, check_json_body, parse_json, parse_optional_json, parse_proof,
};
pub use crate::error::log_error;
pub use crate::flow::into_checked;
pub use crate::throttle::ClientInfo;
pub use crate::ticket::from_cookie_header;

/// The embedded provider's browser-facing operations and their limit.
#[cfg(feature = "embedded")]
#[cfg_attr(docsrs, doc(cfg(feature = "embedded")))]
pub use crate::provider::embedded::{BrowserOp, BrowserResponse, MAX_BODY_LEN};

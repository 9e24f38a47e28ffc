//! The outbound HTTP wrapper: timeouts, no redirects, body cap.

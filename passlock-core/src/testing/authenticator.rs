//! authenticator (test kit).

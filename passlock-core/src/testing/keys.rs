//! keys (test kit).

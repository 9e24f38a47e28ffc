//! conformance (test kit).

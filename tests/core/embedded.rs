//! embedded tests

//! jwt tests

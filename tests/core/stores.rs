//! stores tests

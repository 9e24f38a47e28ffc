//! hosted tests

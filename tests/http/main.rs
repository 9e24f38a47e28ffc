//! HTTP scenario tests through the adapters.

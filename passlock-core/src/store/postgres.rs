//! PostgreSQL stores.

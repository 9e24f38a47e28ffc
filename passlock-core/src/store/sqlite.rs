//! SQLite stores.

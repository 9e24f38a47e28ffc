//! Shared helpers of passlock's integration tests.

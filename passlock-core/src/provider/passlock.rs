//! The hosted Passlock provider and REST API v2 client.

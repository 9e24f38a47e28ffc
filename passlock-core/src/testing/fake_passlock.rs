//! fake_passlock (test kit).

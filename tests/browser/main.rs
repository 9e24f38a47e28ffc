//! Real-browser test: Debian chromium over CDP with a virtual authenticator.

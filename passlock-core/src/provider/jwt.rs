//! Local `id_token` verification (JWKS cache, algorithm allow-list, claims, replay cache).

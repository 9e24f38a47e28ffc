-- passlock schema, version 1 (PostgreSQL).
-- Timestamps are epoch milliseconds (BIGINT).

-- Which user a passkey (authenticator) belongs to. user_id holds the app's
-- user id as text (its Display form).
CREATE TABLE IF NOT EXISTS passlock_authenticator (
    authenticator_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX IF NOT EXISTS passlock_authenticator_user
    ON passlock_authenticator (user_id, created_at);

-- Passkeys of the embedded provider.
CREATE TABLE IF NOT EXISTS passlock_credential (
    credential_id TEXT NOT NULL PRIMARY KEY,
    user_handle TEXT NOT NULL,
    username TEXT NOT NULL,
    passkey_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    sign_count BIGINT NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295),
    backup_eligible BOOLEAN NOT NULL,
    backup_state BOOLEAN NOT NULL
);
CREATE INDEX IF NOT EXISTS passlock_credential_user
    ON passlock_credential (user_handle, created_at);

-- Single-use, expiring values of the embedded provider (tokens, ceremony
-- state, codes); expires_at NULL marks a persistent value (signing key).
CREATE TABLE IF NOT EXISTS passlock_ceremony (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX IF NOT EXISTS passlock_ceremony_expires
    ON passlock_ceremony (expires_at);

-- jti of verified id_tokens, until they expire (replay protection).
CREATE TABLE IF NOT EXISTS passlock_jti (
    jti TEXT NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS passlock_jti_expires
    ON passlock_jti (expires_at);

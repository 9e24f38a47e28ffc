-- Account recovery challenges (passlock_core::recovery): the keyed hash of
-- the address and of the code, never either in clear; user_id is NULL for
-- an address without an account (a challenge no code opens). Times are
-- epoch ms; used is 0 or 1.
CREATE TABLE IF NOT EXISTS passlock_recovery_challenge (
    id TEXT NOT NULL PRIMARY KEY,
    address TEXT NOT NULL,
    user_id TEXT,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    used BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS passlock_recovery_challenge_expires_at
    ON passlock_recovery_challenge (expires_at);

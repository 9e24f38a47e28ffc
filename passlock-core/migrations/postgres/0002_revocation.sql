-- Logout markers (passlock_core::revocation): a key such as family:{id},
-- when it was revoked and until when the marker is kept (epoch ms).
CREATE TABLE IF NOT EXISTS passlock_revocation (
    key TEXT NOT NULL PRIMARY KEY,
    revoked_at BIGINT NOT NULL,
    keep_until BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS passlock_revocation_keep_until
    ON passlock_revocation (keep_until);

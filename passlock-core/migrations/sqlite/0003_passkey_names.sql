-- Schema version 3: named passkeys. The name the user gave (NULL: derived
-- from the authenticator's AAGUID or the creation date when shown) and the
-- authenticator's AAGUID (NULL when it sent none, or only zeros).
ALTER TABLE passlock_credential ADD COLUMN name TEXT;
ALTER TABLE passlock_credential ADD COLUMN aaguid TEXT;

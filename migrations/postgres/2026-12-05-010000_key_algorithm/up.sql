-- A key's algorithm, as migrations/sqlite: HS256 keys hold an HMAC secret,
-- EdDSA keys an Ed25519 private key (the 32-byte seed).
ALTER TABLE signing_keys ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'HS256'
    CHECK (algorithm IN ('HS256', 'EdDSA'));

-- A key's algorithm: HS256 keys hold an HMAC secret; EdDSA keys hold an
-- Ed25519 private key (the 32-byte seed), whose public half the JWKS
-- publishes. Every key made before this was HS256.
ALTER TABLE signing_keys ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'HS256'
    CHECK (algorithm IN ('HS256', 'EdDSA'));

-- Two-factor sign-in (TOTP, RFC 6238). A user has at most one TOTP secret:
-- pending (confirmed_at NULL) from enrolment until the first right code,
-- then on, and `users.mfa` says so. `last_step` is the time step of the
-- last code accepted: a code is never accepted twice. Recovery codes are
-- kept as SHA-256, each used once. A challenge is the `mfa_token` of a
-- sign-in waiting for its code: kept as SHA-256, single use, short-lived.
ALTER TABLE users ADD COLUMN mfa BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE mfa_totp (
    user_id TEXT COLLATE "C" PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    last_step BIGINT
);
CREATE TABLE mfa_recovery_codes (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at TIMESTAMP,
    PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE mfa_challenges (
    token_hash TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);

-- Users: the email is stored already trimmed and lower-cased, so the unique
-- index enforces uniqueness of the normalised address. `search_text` holds
-- the email and names lower-cased (Unicode-aware, done by the application),
-- so a case-insensitive substring search is one LIKE on one column.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP,
    search_text TEXT NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_newest_first ON users (created_at DESC, id DESC);
CREATE INDEX users_role ON users (role, disabled);

-- One row per sign-in. A session outlives its user's deletion (user_id set
-- to NULL) so that a restart still knows its sid was revoked.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL,
    idle_expires_at TIMESTAMP NOT NULL,
    absolute_expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    revoked_reason TEXT,
    client_addr TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at);
CREATE INDEX sessions_absolute_expiry ON sessions (absolute_expires_at);

-- The chain of refresh tokens of a session, stored only as SHA-256 (hex).
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at TIMESTAMP NOT NULL,
    spent_at TIMESTAMP
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- The key ring. Exactly one active key, enforced by a partial unique index.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    secret BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'previous', 'retired')),
    created_at TIMESTAMP NOT NULL,
    deactivated_at TIMESTAMP,
    retired_at TIMESTAMP
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

-- Failed sign-in counters keyed by subject (`email:<addr>`, `addr:<ip>`).
CREATE TABLE login_throttle (
    subject TEXT PRIMARY KEY NOT NULL,
    window_start TIMESTAMP NOT NULL,
    failures INTEGER NOT NULL
);

-- Append-only record of changes and security events.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    client_addr TEXT,
    outcome TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

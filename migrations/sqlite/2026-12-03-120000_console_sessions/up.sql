-- Admin console sessions (actix-session state kept server-side, so that a
-- sign-out, a disabled admin or a changed password ends them). The cookie
-- holds the session key; the store keeps only its SHA-256.
CREATE TABLE console_sessions (
    key_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Secrets the server makes for itself once and keeps across restarts
-- (the console cookie key).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Sorting the user table by last sign-in stays a keyset scan.
CREATE INDEX users_last_login ON users (last_login_at DESC, id DESC);

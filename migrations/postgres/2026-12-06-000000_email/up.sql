-- Email: address verification, password-reset and verification tokens, and
-- the outbox of mail to send.
-- A token is kept as SHA-256, single use (its row is deleted when used),
-- short-lived, and bound to the address it was sent to: a token sent
-- before an email change opens nothing after it.
-- A mail row is written in the transaction of what causes it; the worker
-- sends it and marks it done (its bodies then cleared: they may hold a
-- link with a token). `next_attempt_at` is also the lease of a claimed
-- row: a worker that dies mid-send leaves it due again later.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
-- The admins there are were made by the operator (at start, at set-up, or
-- from the shell), who vouches for their addresses, as for later ones:
-- turning EMAIL_VERIFICATION=required on must not lock them out.
UPDATE users SET email_verified = TRUE WHERE role = 'admin';
CREATE TABLE email_tokens (
    token_hash TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose, created_at);
CREATE INDEX email_tokens_expiry ON email_tokens (expires_at);
CREATE TABLE mail_outbox (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id TEXT COLLATE "C" REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    done_at TIMESTAMP,
    outcome TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE done_at IS NULL;
CREATE INDEX mail_outbox_done ON mail_outbox (done_at) WHERE done_at IS NOT NULL;
CREATE INDEX mail_outbox_user ON mail_outbox (user_id);

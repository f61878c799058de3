-- Service clients: named credentials other services use to ask latchkey
-- about a token (RFC 7662 introspection). The secret is 256 random bits,
-- kept only as its SHA-256 (a fast hash is enough for a secret nobody
-- chose; Argon2 is for passwords). A revoked client keeps its row, for
-- the record, and authenticates no more.
CREATE TABLE service_clients (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX service_clients_newest_first ON service_clients (created_at DESC, id DESC);

-- Service clients, as migrations/sqlite: named credentials other services
-- use to ask latchkey about a token (RFC 7662 introspection). The secret
-- is kept only as its SHA-256; a revoked client keeps its row.
CREATE TABLE service_clients (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX service_clients_newest_first ON service_clients (created_at DESC, id DESC);

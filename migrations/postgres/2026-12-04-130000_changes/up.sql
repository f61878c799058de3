-- The change feed: one row per session revoked, user changed or key-ring
-- change, written in the transaction that made it. Every instance reads the
-- rows after the last id it saw (woken by NOTIFY latchkey_changes), so a
-- change made on one instance holds on all of them within a second.
-- Writers take an advisory lock before inserting, so ids become visible in
-- the order they were given out. Old rows are swept.
CREATE TABLE changes (
    id BIGSERIAL PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('session', 'user', 'keys')),
    subject TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX changes_at ON changes (at);

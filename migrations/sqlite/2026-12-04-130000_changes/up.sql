-- The change feed: one row per session revoked, user changed or key-ring
-- change, written in the transaction that made it. Every instance (and
-- this one) reads the rows after the last id it saw, so a change made
-- anywhere holds everywhere within a second. Old rows are swept.
CREATE TABLE changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('session', 'user', 'keys')),
    subject TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX changes_at ON changes (at);

-- The store watcher reads users changed by other processes every second.
CREATE INDEX users_updated_at ON users (updated_at);

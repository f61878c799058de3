DROP TABLE audit_log;
DROP TABLE login_throttle;
DROP TABLE signing_keys;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;

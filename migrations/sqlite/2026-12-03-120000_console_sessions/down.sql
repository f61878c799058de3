DROP INDEX users_last_login;
DROP TABLE server_secrets;
DROP TABLE console_sessions;

DROP TABLE mfa_challenges;
DROP TABLE mfa_recovery_codes;
DROP TABLE mfa_totp;
ALTER TABLE users DROP COLUMN mfa;

//! Authentication: password hashing, the key ring, access tokens and their
//! extractor, sessions with rotating refresh tokens, throttling, sign-in.

pub mod claims;
pub mod clients;
pub mod console_store;
pub mod keys;
pub mod password;
pub mod revocation;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod totp;
pub mod user_cache;
pub mod verified;

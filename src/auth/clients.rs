//! Service clients' secrets: 256 random bits, shown once, kept as SHA-256.
//!
//! A fast hash is enough here, unlike for passwords: nobody chose the
//! secret, so there is no dictionary to try, and 2^256 guesses is no
//! shortcut. It also keeps an introspection request (which every request to
//! the service that asks may cost) far from Argon2's 20 ms.

use super::password::fill_random;
use super::sessions::sha256_hex;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// What every secret begins with, so that a leaked one is recognisable
/// (secret scanners, logs).
pub const SECRET_PREFIX: &str = "lks_";

/// A new client id (UUID text, like every id of the API).
pub fn new_client_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new secret and the hash the store keeps of it.
pub fn new_secret() -> (String, String) {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = sha256_hex(&secret);
    (secret, hash)
}

/// Whether `presented` is the secret whose hash is `stored`, in time that
/// does not depend on where they differ.
pub fn secret_matches(presented: &str, stored: &str) -> bool {
    sha256_hex(presented)
        .as_bytes()
        .ct_eq(stored.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_its_hash_and_nothing_else() {
        let (secret, hash) = new_secret();
        assert!(secret.starts_with(SECRET_PREFIX));
        assert_eq!(secret.len(), SECRET_PREFIX.len() + 43);
        assert_ne!(secret, hash);
        assert!(secret_matches(&secret, &hash));
        assert!(!secret_matches(&secret[..secret.len() - 1], &hash));
        assert!(!secret_matches("", &hash));
        let (other, _) = new_secret();
        assert_ne!(secret, other);
        assert!(!secret_matches(&other, &hash));
    }
}

//! Time-based one-time passwords (RFC 6238: HMAC-SHA-1, 6 digits, 30 s
//! steps, one step of skew either way) through `totp-rs`, and the
//! recovery codes that stand in for a lost authenticator.

use super::password::fill_random;
use super::sessions::sha256_hex;
use crate::domain::{RECOVERY_ALPHABET, RecoveryCode, TotpCode};
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const DIGITS: u8 = 6;
pub const STEP_SECONDS: u64 = 30;
/// 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// How many recovery codes a user holds.
pub const RECOVERY_CODES: usize = 10;

/// A new shared secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    fill_random(&mut secret);
    secret
}

fn totp(secret: &[u8]) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret.to_vec())
        .build()
        .ok()
}

/// The secret as an authenticator app takes it typed in: base32.
pub fn base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// The `otpauth://` URL an authenticator app reads from a QR code.
pub fn otpauth_url(secret: &[u8], issuer: &str, account: &str) -> String {
    let label = format!("{}:{}", encode(issuer), encode(account));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        base32(secret),
        encode(issuer)
    )
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The code for the time `unix` (seconds).
pub fn code_at(secret: &[u8], unix: u64) -> Option<String> {
    Some(totp(secret)?.generate(unix).to_string())
}

/// The time step `code` is right for at `unix`, within one step either
/// way; the caller accepts a step once.
pub fn matching_step(secret: &[u8], code: &TotpCode, unix: u64) -> Option<i64> {
    let step = totp(secret)?.check(code.as_str(), unix)?;
    i64::try_from(step).ok()
}

/// Ten new recovery codes, `xxxxx-xxxxx` (50 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            fill_random(&mut bytes);
            let letters: String = bytes
                .iter()
                .map(|b| RECOVERY_ALPHABET[*b as usize % RECOVERY_ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &letters[..5], &letters[5..])
        })
        .collect()
}

/// What the store keeps of a recovery code.
pub fn hash_recovery_code(code: &RecoveryCode) -> String {
    sha256_hex(code.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1: the 8-digit values end in our 6 digits.
    #[test]
    fn the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(code_at(secret, time).unwrap(), &eight[2..], "T = {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side_only() {
        let secret = new_secret();
        let now = 1_800_000_015;
        let code = TotpCode::parse(&code_at(&secret, now).unwrap()).unwrap();
        let step = (now / STEP_SECONDS) as i64;
        assert_eq!(matching_step(&secret, &code, now), Some(step));
        assert_eq!(matching_step(&secret, &code, now + 30), Some(step));
        assert_eq!(matching_step(&secret, &code, now - 30), Some(step));
        assert_eq!(matching_step(&secret, &code, now + 60), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_read_back_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        for code in &codes {
            let typed = code.to_uppercase().replace('-', " ");
            assert_eq!(
                RecoveryCode::parse(&typed).unwrap().as_str(),
                code.replace('-', "")
            );
        }
    }

    #[test]
    fn the_otpauth_url_names_issuer_and_account() {
        let url = otpauth_url(b"12345678901234567890", "latchkey", "ada+1@example.com");
        assert_eq!(
            url,
            "otpauth://totp/latchkey:ada%2B1%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=latchkey&algorithm=SHA1&digits=6&period=30"
        );
    }
}

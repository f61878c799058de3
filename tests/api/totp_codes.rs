//! RFC 6238 codes computed by the tests themselves (HMAC-SHA-1 from the
//! `hmac` and `sha1` crates, base32 by hand), independent of the server's
//! `totp-rs`; shared by the API and browser suites.

use hmac::{Hmac, Mac};

/// RFC 4648 base32, no padding.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u32, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let index = ALPHABET.iter().position(|a| *a == c).expect("base32") as u32;
        value = (value << 5) | index;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 6238: HOTP (RFC 4226) of the 30-second step of `unix`, 6 digits.
pub fn code_at(secret: &[u8], unix: i64) -> String {
    let counter = (unix / 30) as u64;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes(digest[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", binary % 1_000_000)
}

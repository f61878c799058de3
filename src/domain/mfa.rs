//! What a user types in the second step of a sign-in: a 6-digit code from
//! an authenticator app, or one of their recovery codes.

/// The letters of a recovery code: no 0/o or 1/l/i to misread.
pub const RECOVERY_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// Six digits; spaces are dropped ("123 456" is typed as well).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpCode(String);

impl TotpCode {
    pub fn parse(input: &str) -> Result<Self, String> {
        let code: String = input.chars().filter(|c| *c != ' ').collect();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(code))
        } else {
            Err("must be the 6 digits the authenticator app shows".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A recovery code, normalised: ten letters of [`RECOVERY_ALPHABET`];
/// letter case, dashes and spaces do not matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl RecoveryCode {
    pub fn parse(input: &str) -> Result<Self, String> {
        let code: String = input
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if code.len() == 10 && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)) {
            Ok(Self(code))
        } else {
            Err("must be one of your recovery codes (like 7kq2m-x9hdp)".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_as_typed_and_anything_else_is_refused() {
        assert_eq!(TotpCode::parse("123 456").unwrap().as_str(), "123456");
        for bad in ["12345", "1234567", "12345a", "", "１２３４５６", "+12345"] {
            assert!(TotpCode::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            RecoveryCode::parse("7KQ2M-X9HDP").unwrap().as_str(),
            "7kq2mx9hdp"
        );
        for bad in ["7kq2m", "0000000000", "7kq2m-x9hdp-2", ""] {
            assert!(RecoveryCode::parse(bad).is_err(), "{bad:?}");
        }
    }
}

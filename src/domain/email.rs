use validator::ValidateEmail;

/// An email address, trimmed and lower-cased: the form that is stored,
/// compared and indexed as unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// RFC 5321's limit on a forward path.
const MAX_LEN: usize = 254;

impl Email {
    pub fn parse(input: &str) -> Result<Self, String> {
        let normalised = Self::normalise(input);
        if normalised.is_empty() {
            return Err("must not be empty".into());
        }
        if normalised.chars().count() > MAX_LEN {
            return Err(format!("must be at most {MAX_LEN} characters"));
        }
        if !normalised.validate_email() {
            return Err("is not a valid email address".into());
        }
        Ok(Self(normalised))
    }

    /// The trimmed, lower-cased form, without judging it: what a sign-in
    /// looks up, so that any typed address finds (or misses) the same row.
    pub fn normalise(input: &str) -> String {
        input.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn malformed_and_overlong_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "a b@example.com",
            "ada@@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert!(long.len() > MAX_LEN);
        assert!(Email::parse(&long).is_err());
    }
}

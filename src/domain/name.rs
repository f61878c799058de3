/// A first or last name: trimmed, then 1 to 100 characters, none of them a
/// control character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

const MAX_CHARS: usize = 100;

impl PersonName {
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err("must not be empty".into());
        }
        if trimmed.chars().count() > MAX_CHARS {
            return Err(format!("must be at most {MAX_CHARS} characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A service client's name: the rules of a person's name (1 to 100
/// characters once trimmed, no control characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(String);

impl ClientName {
    pub fn parse(input: &str) -> Result<Self, String> {
        PersonName::parse(input).map(|name| Self(name.into_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert!(PersonName::parse(" ").is_err());
        assert!(PersonName::parse(&"é".repeat(100)).is_ok());
        assert!(PersonName::parse(&"é".repeat(101)).is_err());
        assert!(PersonName::parse("Ada\u{0}Lovelace").is_err());
        assert!(PersonName::parse("Ada\nLovelace").is_err());
        assert_eq!(PersonName::parse("<script>").unwrap().as_str(), "<script>");
    }
}

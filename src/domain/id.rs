use std::fmt;

/// A user's id: a UUID in its lower-case hyphenated text form, the only
/// form the store holds. Parsing it is the one check a path's `{id}` gets,
/// whichever face it came through.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct UserId(String);

impl UserId {
    /// A new random (version 4) id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// Accepts exactly the form ids are stored in: 36 characters, lower-case
    /// hex in groups of 8-4-4-4-12.
    pub fn parse(input: &str) -> Option<Self> {
        let well_formed = input.len() == 36
            && input.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            });
        well_formed.then(|| Self(input.to_owned()))
    }

    /// An id read back from the store, which only ever holds parsed ids.
    pub(crate) fn from_stored(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for UserId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::UserId;

    #[test]
    fn only_the_stored_form_of_a_uuid_parses() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(id.as_str()), Some(id.clone()));
        for bad in [
            "",
            "me",
            "3F1C0A52-8A8E-4A55-9A0B-3B0B8F7A9C11",
            "3f1c0a528a8e4a559a0b3b0b8f7a9c11",
            "{3f1c0a52-8a8e-4a55-9a0b-3b0b8f7a9c11}",
            "3f1c0a52-8a8e-4a55-9a0b-3b0b8f7a9c1g",
            "3f1c0a52-8a8e-4a55-9a0b-3b0b8f7a9c111",
            "3f1c0a52-8a8e-4a55-9a0b-3b0b8f7a9c1é",
        ] {
            assert_eq!(UserId::parse(bad), None, "{bad}");
        }
        assert!(UserId::parse("3f1c0a52-8a8e-4a55-9a0b-3b0b8f7a9c11").is_some());
    }
}

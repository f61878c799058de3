use zxcvbn::{Score, zxcvbn};

/// A password that passed the policy. It is only ever hashed, never stored
/// or logged, so `Debug` hides it.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

/// The rules for a new password (ASVS 6.2): a length range counted in
/// characters, nothing trimmed or truncated, no composition rules, and a
/// strength estimate (zxcvbn) that refuses common and guessable ones.
pub struct PasswordPolicy;

impl PasswordPolicy {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;
    /// zxcvbn's "safely unguessable" level: about 10^10 guesses.
    const MIN_SCORE: Score = Score::Three;

    /// Checks a new password. `context` holds what the user typed elsewhere
    /// (email, names), which makes a password that repeats it weak.
    pub fn parse(input: &str, context: &[&str]) -> Result<Password, String> {
        let chars = input.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        if chars > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        let estimate = zxcvbn(input, context);
        if estimate.score() < Self::MIN_SCORE {
            let hint = estimate
                .feedback()
                .and_then(|feedback| feedback.warning())
                .map(|warning| {
                    // Inside our sentence: "…: this is a very common password".
                    let warning = warning.to_string();
                    let mut chars = warning.trim_end_matches('.').chars();
                    let warning: String = match chars.next() {
                        Some(first) => first.to_lowercase().chain(chars).collect(),
                        None => String::new(),
                    };
                    format!(": {warning}")
                })
                .unwrap_or_default();
            return Err(format!(
                "is too easy to guess{hint}; try a longer passphrase"
            ));
        }
        Ok(Password(input.to_owned()))
    }
}

impl Password {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_and_short_passwords_are_refused() {
        for weak in [
            "password",
            "12345678",
            "qwertyuiop",
            "Password1",
            "letmein!",
            "iloveyou",
        ] {
            assert!(PasswordPolicy::parse(weak, &[]).is_err(), "{weak}");
        }
        assert!(PasswordPolicy::parse("short", &[]).is_err());
    }

    #[test]
    fn a_passphrase_with_spaces_and_unicode_is_accepted_untrimmed() {
        let p = PasswordPolicy::parse(" correct horse battery staple ", &[]).unwrap();
        assert_eq!(p.expose(), " correct horse battery staple ");
        assert!(PasswordPolicy::parse("Grüße aus Köln, 北京 und Zürich", &[]).is_ok());
    }

    #[test]
    fn length_is_counted_in_characters() {
        let sentence = "Żółw jedzie rowerem przez Kraków, a wieloryb śpiewa fado w Lizbonie; \
                        tymczasem kot pisze kompilator o północy i pije herbatę z miodem 42 razy";
        let exactly_128: String = sentence.chars().take(128).collect();
        assert_eq!(exactly_128.chars().count(), 128);
        assert!(exactly_128.len() > 128, "multi-byte characters count once");
        assert!(PasswordPolicy::parse(&exactly_128, &[]).is_ok());
        assert!(PasswordPolicy::parse(&format!("{exactly_128}x"), &[]).is_err());
    }

    #[test]
    fn a_password_made_of_the_email_is_weak() {
        let email = "margaret.hamilton@apollo-guidance.example";
        assert!(PasswordPolicy::parse(email, &[email]).is_err());
    }
}

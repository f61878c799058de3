//! Parsed values: a value of one of these types is already valid, so the
//! JSON API and the admin console share one set of rules ("parse, don't
//! validate"). Each parser returns a message fit to show next to the field.

mod email;
mod id;
mod key_state;
mod mfa;
mod name;
mod password;
mod role;
mod user;

pub use email::Email;
pub use id::UserId;
pub use key_state::{KeyAlgorithm, KeyState};
pub use mfa::{RECOVERY_ALPHABET, RecoveryCode, TotpCode};
pub use name::{ClientName, PersonName};
pub use password::{Password, PasswordPolicy};
pub use role::Role;
pub use user::{FieldErrors, NewUser, NewUserInput, UserChanges};

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic_and_what_they_accept_is_normalised(input in "\\PC{0,300}") {
            if let Ok(email) = Email::parse(&input) {
                prop_assert_eq!(email.as_str(), Email::normalise(&input));
                prop_assert!(email.as_str().chars().count() <= 254);
            }
            if let Ok(name) = PersonName::parse(&input) {
                prop_assert_eq!(name.as_str(), input.trim());
                prop_assert!((1..=100).contains(&name.as_str().chars().count()));
            }
            let _ = Role::parse(&input);
        }

        #[test]
        fn any_password_of_the_wrong_length_is_refused(input in "\\PC{0,7}|\\PC{129,160}") {
            prop_assert!(PasswordPolicy::parse(&input, &[]).is_err());
        }
    }
}

//! Parsed values: a value of one of these types is already valid, so the
//! JSON API and the admin console share one set of rules ("parse, don't
//! validate"). Each parser returns a message fit to show next to the field.

mod email;
mod name;
mod password;
mod role;
mod user;

pub use email::Email;
pub use name::PersonName;
pub use password::{Password, PasswordPolicy};
pub use role::Role;
pub use user::{FieldErrors, NewUser, NewUserInput, UserChanges};

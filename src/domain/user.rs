use super::{Email, Password, PasswordPolicy, PersonName, Role};
use std::collections::BTreeMap;

/// Messages per field, as shown next to each field (API: the `errors`
/// member of a 422 problem; console: beside the input).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&[String]> {
        self.0.get(field).map(Vec::as_slice)
    }

    /// The field's messages as sentences a page can show on their own:
    /// `Password is too easy to guess: …`.
    pub fn sentences(&self, field: &str) -> Vec<String> {
        self.get(field)
            .unwrap_or_default()
            .iter()
            .map(|message| Self::sentence(field, message))
            .collect()
    }

    /// One message about `field` (`new_password`, `is too short`) as a
    /// sentence (`New password is too short.`).
    pub fn sentence(field: &str, message: &str) -> String {
        let label = field.replace('_', " ");
        let mut chars = label.chars();
        let label: String = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        };
        let end = if message.ends_with('.') { "" } else { "." };
        format!("{label} {message}{end}")
    }

    pub fn into_map(self) -> BTreeMap<String, Vec<String>> {
        self.0
    }

    /// Keeps the value when it parsed, records the message otherwise.
    fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|message| self.add(field, message)).ok()
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, FieldErrors> {
        match value {
            Some(value) if self.is_empty() => Ok(value),
            _ => Err(self),
        }
    }
}

/// A user about to be created, every field already valid.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub email: Email,
    pub password: Password,
    pub role: Role,
    pub disabled: bool,
}

/// The raw fields of a new user, as a form or a JSON body gives them.
pub struct NewUserInput<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub role: Role,
    pub disabled: bool,
}

impl NewUser {
    pub fn parse(input: NewUserInput<'_>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let first_name = errors.check("first_name", PersonName::parse(input.first_name));
        let last_name = errors.check("last_name", PersonName::parse(input.last_name));
        let email = errors.check("email", Email::parse(input.email));
        let context = [input.first_name, input.last_name, input.email];
        let password = errors.check("password", PasswordPolicy::parse(input.password, &context));
        let user = match (first_name, last_name, email, password) {
            (Some(first_name), Some(last_name), Some(email), Some(password)) => Some(NewUser {
                first_name,
                last_name,
                email,
                password,
                role: input.role,
                disabled: input.disabled,
            }),
            _ => None,
        };
        errors.finish(user)
    }
}

/// A change to a user's profile: each field present is already valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub email: Option<Email>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

impl UserChanges {
    pub fn parse(
        first_name: Option<&str>,
        last_name: Option<&str>,
        email: Option<&str>,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let changes = UserChanges {
            first_name: first_name.and_then(|v| errors.check("first_name", PersonName::parse(v))),
            last_name: last_name.and_then(|v| errors.check("last_name", PersonName::parse(v))),
            email: email.and_then(|v| errors.check("email", Email::parse(v))),
            role,
            disabled,
        };
        errors.finish(Some(changes))
    }

    /// Whether this change takes admin rights away from the user it targets
    /// (the last-admin rule cares about exactly this).
    pub fn removes_admin(&self) -> bool {
        self.role == Some(Role::User) || self.disabled == Some(true)
    }
}

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// What a user may do: `user` manages only themself, `admin` everything.
/// Stored as its name (`db::types` maps it to and from SQL text).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(input: &str) -> Result<Self, String> {
        match input {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            _ => Err("must be `user` or `admin`".into()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

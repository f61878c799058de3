//! How the domain's typed values are stored: each as SQL text. A value the
//! store gives back that no longer parses is an error, never a guess.

use crate::domain::{KeyState, Role, UserId};
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::{Sqlite, SqliteValue};

fn text(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<String> {
    <String as FromSql<Text, Sqlite>>::from_sql(value)
}

impl ToSql<Text, Sqlite> for UserId {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        <str as ToSql<Text, Sqlite>>::to_sql(self.as_str(), out)
    }
}

impl FromSql<Text, Sqlite> for UserId {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        Ok(UserId::from_stored(text(value)?))
    }
}

impl ToSql<Text, Sqlite> for Role {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        <str as ToSql<Text, Sqlite>>::to_sql(self.as_str(), out)
    }
}

impl FromSql<Text, Sqlite> for Role {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let raw = text(value)?;
        Role::parse(&raw).map_err(|_| format!("unknown role {raw:?} in the store").into())
    }
}

impl ToSql<Text, Sqlite> for KeyState {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        <str as ToSql<Text, Sqlite>>::to_sql(self.as_str(), out)
    }
}

impl FromSql<Text, Sqlite> for KeyState {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let raw = text(value)?;
        KeyState::parse(&raw)
            .ok_or_else(|| format!("unknown key state {raw:?} in the store").into())
    }
}

//! How the domain's typed values are stored: each as SQL text, on both
//! backends. A value the store gives back that no longer parses is an
//! error, never a guess.

use super::MultiBackend;
use crate::domain::{KeyAlgorithm, KeyState, Role, UserId};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;

/// A value stored as text: how to write it and how to read it back.
trait AsText: Sized {
    fn text(&self) -> &str;
    fn from_text(text: String) -> deserialize::Result<Self>;
}

impl AsText for UserId {
    fn text(&self) -> &str {
        self.as_str()
    }
    fn from_text(text: String) -> deserialize::Result<Self> {
        Ok(UserId::from_stored(text))
    }
}

impl AsText for Role {
    fn text(&self) -> &str {
        self.as_str()
    }
    fn from_text(text: String) -> deserialize::Result<Self> {
        Role::parse(&text).map_err(|_| format!("unknown role {text:?} in the store").into())
    }
}

impl AsText for KeyState {
    fn text(&self) -> &str {
        self.as_str()
    }
    fn from_text(text: String) -> deserialize::Result<Self> {
        KeyState::parse(&text)
            .ok_or_else(|| format!("unknown key state {text:?} in the store").into())
    }
}

impl AsText for KeyAlgorithm {
    fn text(&self) -> &str {
        self.as_str()
    }
    fn from_text(text: String) -> deserialize::Result<Self> {
        KeyAlgorithm::parse(&text)
            .ok_or_else(|| format!("unknown key algorithm {text:?} in the store").into())
    }
}

/// `ToSql`/`FromSql` as text on SQLite, PostgreSQL and both together.
macro_rules! stored_as_text {
    ($($t:ty),*) => {$(
        impl ToSql<Text, Sqlite> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                <str as ToSql<Text, Sqlite>>::to_sql(self.text(), out)
            }
        }

        impl FromSql<Text, Sqlite> for $t {
            fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                <$t>::from_text(<String as FromSql<Text, Sqlite>>::from_sql(value)?)
            }
        }

        impl ToSql<Text, Pg> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.text(), out)
            }
        }

        impl FromSql<Text, Pg> for $t {
            fn from_sql(value: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                <$t>::from_text(<String as FromSql<Text, Pg>>::from_sql(value)?)
            }
        }

        impl ToSql<Text, MultiBackend> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
                out.set_value((Text, self));
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, MultiBackend> for $t {
            fn from_sql(value: <MultiBackend as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                value.from_sql::<$t, Text>()
            }
        }
    )*};
}

stored_as_text!(UserId, Role, KeyState, KeyAlgorithm);

//! Queries on `server_secrets`: secrets the server makes once and keeps.

use super::schema::server_secrets;
use super::{DbConnection, per_backend};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// The secret called `name`, made by `make` and stored the first time.
pub fn get_or_create(
    conn: &mut DbConnection,
    name: &str,
    now: NaiveDateTime,
    make: impl FnOnce() -> Vec<u8>,
) -> QueryResult<Vec<u8>> {
    let value = make();
    let insert = diesel::insert_into(server_secrets::table)
        .values((
            server_secrets::name.eq(name),
            server_secrets::value.eq(&value),
            server_secrets::created_at.eq(now),
        ))
        .on_conflict_do_nothing();
    per_backend!(&mut *conn, |c| insert.execute(c))?;
    server_secrets::table
        .find(name)
        .select(server_secrets::value)
        .first(conn)
}

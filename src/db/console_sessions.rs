//! Queries on `console_sessions`: the admin console's server-side sessions.

use super::DbConnection;
use super::schema::console_sessions;
use crate::domain::UserId;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = console_sessions)]
pub struct ConsoleSessionRow {
    pub key_hash: String,
    pub user_id: Option<String>,
    pub state: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert(
    conn: &mut DbConnection,
    key_hash: &str,
    user_id: Option<&str>,
    state: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::insert_into(console_sessions::table)
        .values((
            console_sessions::key_hash.eq(key_hash),
            console_sessions::user_id.eq(user_id),
            console_sessions::state.eq(state),
            console_sessions::created_at.eq(now),
            console_sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)
}

/// A session that has not expired at `now`.
pub fn find_live(
    conn: &mut DbConnection,
    key_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<ConsoleSessionRow>> {
    console_sessions::table
        .find(key_hash)
        .filter(console_sessions::expires_at.gt(now))
        .select(ConsoleSessionRow::as_select())
        .first(conn)
        .optional()
}

/// Replaces a session's state; returns whether the session still exists.
pub fn update(
    conn: &mut DbConnection,
    key_hash: &str,
    user_id: Option<&str>,
    state: &str,
    expires_at: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(console_sessions::table.find(key_hash))
        .set((
            console_sessions::user_id.eq(user_id),
            console_sessions::state.eq(state),
            console_sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

pub fn extend(
    conn: &mut DbConnection,
    key_hash: &str,
    expires_at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(console_sessions::table.find(key_hash))
        .set(console_sessions::expires_at.eq(expires_at))
        .execute(conn)
}

pub fn delete(conn: &mut DbConnection, key_hash: &str) -> QueryResult<usize> {
    diesel::delete(console_sessions::table.find(key_hash)).execute(conn)
}

/// Ends every console session of a user (disabled, password changed).
pub fn delete_for_user(conn: &mut DbConnection, user_id: &UserId) -> QueryResult<usize> {
    diesel::delete(console_sessions::table.filter(console_sessions::user_id.eq(user_id)))
        .execute(conn)
}

pub fn sweep(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(console_sessions::table.filter(console_sessions::expires_at.le(now)))
        .execute(conn)
}

/// Ends every console session of everyone.
pub fn delete_all(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::delete(console_sessions::table).execute(conn)
}

//! Queries on `refresh_tokens` (stored by SHA-256 hash only).

use super::models::{NewRefreshTokenRow, RefreshTokenRow, SessionRow};
use super::schema::{refresh_tokens, sessions};
use super::{DbConnection, Prepare, per_backend};
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &NewRefreshTokenRow<'_>) -> QueryResult<usize> {
    per_backend!(conn, |c| diesel::insert_into(refresh_tokens::table)
        .values(row)
        .prepared()
        .execute(c))
}

/// The token with this hash and the session it belongs to.
pub fn find_with_session(
    conn: &mut DbConnection,
    token_hash: &str,
) -> QueryResult<Option<(RefreshTokenRow, SessionRow)>> {
    refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((RefreshTokenRow::as_select(), SessionRow::as_select()))
        .first(conn)
        .optional()
}

/// Marks the token spent only if it is still unspent: exactly one of any
/// number of concurrent refreshes of one token sees `true`.
pub fn spend(conn: &mut DbConnection, token_hash: &str, at: NaiveDateTime) -> QueryResult<bool> {
    let changed = per_backend!(conn, |c| diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .filter(refresh_tokens::spent_at.is_null()),
    )
    .set(refresh_tokens::spent_at.eq(at))
    .prepared()
    .execute(c))?;
    Ok(changed == 1)
}

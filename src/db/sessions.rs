//! Queries on `sessions`.

use super::models::{NewSessionRow, SessionRow};
use super::schema::sessions;
use super::{DbConnection, Prepare, per_backend};
use crate::domain::UserId;
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &NewSessionRow<'_>) -> QueryResult<SessionRow> {
    per_backend!(conn, |c| diesel::insert_into(sessions::table)
        .values(row)
        .returning(sessions::all_columns)
        .prepared()
        .get_result(c))
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()
}

/// Revokes one session if it is not revoked yet; returns whether it was live.
pub fn revoke(
    conn: &mut DbConnection,
    id: &str,
    at: NaiveDateTime,
    reason: &str,
) -> QueryResult<bool> {
    let changed = diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(at),
        sessions::revoked_reason.eq(reason),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Revokes every unrevoked session of a user, except `keep` when given;
/// returns the ids it revoked.
pub fn revoke_all_for_user(
    conn: &mut DbConnection,
    user_id: &UserId,
    keep: Option<&str>,
    at: NaiveDateTime,
    reason: &str,
) -> QueryResult<Vec<String>> {
    let targets = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::id.ne(keep.unwrap_or("")));
    diesel::update(targets)
        .set((
            sessions::revoked_at.eq(at),
            sessions::revoked_reason.eq(reason),
        ))
        .returning(sessions::id)
        .get_results(conn)
}

/// Sessions revoked at or after `since`, with when: what the in-memory
/// revocation set must hold at start.
pub fn revoked_since(
    conn: &mut DbConnection,
    since: NaiveDateTime,
) -> QueryResult<Vec<(String, NaiveDateTime)>> {
    sessions::table
        .filter(sessions::revoked_at.ge(since))
        .select((sessions::id, sessions::revoked_at.assume_not_null()))
        .load(conn)
}

/// Records a refresh: renews the idle expiry and the last-use time.
pub fn touch(
    conn: &mut DbConnection,
    id: &str,
    at: NaiveDateTime,
    idle_expires_at: NaiveDateTime,
) -> QueryResult<usize> {
    per_backend!(conn, |c| diesel::update(sessions::table.find(id))
        .set((
            sessions::last_used_at.eq(at),
            sessions::idle_expires_at.eq(idle_expires_at),
        ))
        .prepared()
        .execute(c))
}

/// The live sessions of a user, newest first.
pub fn live_for_user(
    conn: &mut DbConnection,
    user_id: &UserId,
    now: NaiveDateTime,
) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::idle_expires_at.gt(now))
        .filter(sessions::absolute_expires_at.gt(now))
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .select(SessionRow::as_select())
        .load(conn)
}

/// Deletes sessions that can no longer matter: expired, or revoked, before
/// `cutoff` (no access token of theirs can still be live). Their refresh
/// tokens go with them.
pub fn sweep(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        sessions::table.filter(
            sessions::revoked_at
                .lt(cutoff)
                .or(sessions::idle_expires_at.lt(cutoff))
                .or(sessions::absolute_expires_at.lt(cutoff)),
        ),
    )
    .execute(conn)
}

/// Sessions that are live at `now`.
pub fn count_live(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<i64> {
    sessions::table
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::idle_expires_at.gt(now))
        .filter(sessions::absolute_expires_at.gt(now))
        .count()
        .get_result(conn)
}

/// Revokes every unrevoked session of every user; returns their ids.
pub fn revoke_all(
    conn: &mut DbConnection,
    at: NaiveDateTime,
    reason: &str,
) -> QueryResult<Vec<String>> {
    diesel::update(sessions::table.filter(sessions::revoked_at.is_null()))
        .set((
            sessions::revoked_at.eq(at),
            sessions::revoked_reason.eq(reason),
        ))
        .returning(sessions::id)
        .get_results(conn)
}

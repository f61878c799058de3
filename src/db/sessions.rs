//! Queries on `sessions`.

use super::models::{NewRefreshTokenRow, NewSessionRow, SessionRow};
use super::schema::{refresh_tokens, sessions};
use super::{DbConnection, Prepare, per_backend};
use crate::domain::UserId;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamp};

/// Opens a session with its first refresh token and returns the session
/// as stored. On PostgreSQL it is one statement (the token's insert rides
/// in a `WITH`; its foreign key is checked at the end of the statement,
/// when the session is there): a sign-in costs the database mostly in
/// round trips. On SQLite, which has no writing `WITH`, two.
pub fn open(
    conn: &mut DbConnection,
    session: &NewSessionRow<'_>,
    first_token: &NewRefreshTokenRow<'_>,
) -> QueryResult<SessionRow> {
    match conn {
        DbConnection::Sqlite(c) => {
            diesel::insert_into(sessions::table)
                .values(session)
                .prepared()
                .execute(c)?;
            diesel::insert_into(refresh_tokens::table)
                .values(first_token)
                .prepared()
                .execute(c)?;
        }
        DbConnection::Postgres(c) => {
            diesel::sql_query(
                "WITH first_token AS (\
                     INSERT INTO refresh_tokens (token_hash, session_id, issued_at) \
                     VALUES ($9, $10, $11)) \
                 INSERT INTO sessions (id, user_id, created_at, last_used_at, \
                     idle_expires_at, absolute_expires_at, client_addr, user_agent) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind::<Text, _>(session.id)
            .bind::<Text, _>(session.user_id)
            .bind::<Timestamp, _>(session.created_at)
            .bind::<Timestamp, _>(session.last_used_at)
            .bind::<Timestamp, _>(session.idle_expires_at)
            .bind::<Timestamp, _>(session.absolute_expires_at)
            .bind::<Nullable<Text>, _>(session.client_addr)
            .bind::<Nullable<Text>, _>(session.user_agent)
            .bind::<Text, _>(first_token.token_hash)
            .bind::<Text, _>(first_token.session_id)
            .bind::<Timestamp, _>(first_token.issued_at)
            .prepared()
            .execute(c)?;
        }
    }
    Ok(SessionRow {
        id: session.id.to_owned(),
        user_id: Some(session.user_id.clone()),
        created_at: session.created_at,
        last_used_at: session.last_used_at,
        idle_expires_at: session.idle_expires_at,
        absolute_expires_at: session.absolute_expires_at,
        revoked_at: None,
        revoked_reason: None,
        client_addr: session.client_addr.map(str::to_owned),
        user_agent: session.user_agent.map(str::to_owned),
    })
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

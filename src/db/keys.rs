//! Queries on `signing_keys`, the key ring.

use super::DbConnection;
use super::models::SigningKeyRow;
use super::schema::signing_keys;
use crate::domain::KeyState;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Every key, newest first.
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .order((signing_keys::created_at.desc(), signing_keys::kid.desc()))
        .select(SigningKeyRow::as_select())
        .load(conn)
}

pub fn insert(conn: &mut DbConnection, row: &SigningKeyRow) -> QueryResult<usize> {
    diesel::insert_into(signing_keys::table)
        .values(row)
        .execute(conn)
}

/// Turns the active key into a verify-only one.
pub fn demote_active(conn: &mut DbConnection, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(signing_keys::table.filter(signing_keys::state.eq(KeyState::Active)))
        .set((
            signing_keys::state.eq(KeyState::Previous),
            signing_keys::deactivated_at.eq(at),
        ))
        .execute(conn)
}

/// Retires verify-only keys that stopped signing at or before `cutoff`
/// (all of them when `cutoff` is `None`).
pub fn retire_previous(
    conn: &mut DbConnection,
    cutoff: Option<NaiveDateTime>,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    let mut query = diesel::update(signing_keys::table)
        .filter(signing_keys::state.eq(KeyState::Previous))
        .into_boxed();
    if let Some(cutoff) = cutoff {
        query = query.filter(signing_keys::deactivated_at.le(cutoff));
    }
    query
        .set((
            signing_keys::state.eq(KeyState::Retired),
            signing_keys::retired_at.eq(at),
        ))
        .execute(conn)
}

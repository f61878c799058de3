//! Queries on `audit_log` (append-only).

use super::models::{AuditRow, NewAuditRow};
use super::schema::audit_log;
use super::{DbConnection, Prepare, per_backend};
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &NewAuditRow) -> QueryResult<usize> {
    per_backend!(conn, |c| diesel::insert_into(audit_log::table)
        .values(row)
        .prepared()
        .execute(c))
}

/// Which entries a reader wants; `before` is the last id of the page before.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Entries by any of these actors (user ids, `system`, `cli`, …).
    pub actors: Option<Vec<String>>,
    /// Entries about any of these targets.
    pub targets: Option<Vec<String>>,
    pub action: Option<String>,
    /// `ok`, `failed` or `denied`.
    pub outcome: Option<String>,
    /// Entries at or after this time…
    pub from: Option<NaiveDateTime>,
    /// …and before this one.
    pub to: Option<NaiveDateTime>,
    pub before: Option<i32>,
    pub limit: i64,
}

/// How long an entry's write may take from reading its time to its
/// insert (milliseconds, in practice; a write waits seconds at most for
/// the store's lock): an entry timed before `t - SLACK` got its id before
/// any entry timed at `t` or later did.
const WRITE_SLACK: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Newest first. A time range also bounds the ids (each bound one read of
/// the time index), so that a page of an old range starts where the range
/// does instead of reading every newer entry on the way: every entry at or
/// after `from` has a larger id than the last entry timed before
/// `from - WRITE_SLACK`, and every entry before `to` a smaller id than the
/// first timed at `to + WRITE_SLACK` or later. The times themselves then
/// filter exactly.
pub fn list(conn: &mut DbConnection, filter: &AuditFilter) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_log::table.select(AuditRow::as_select()).into_boxed();
    if let Some(from) = filter.from {
        let before: Option<i32> = audit_log::table
            .filter(audit_log::at.lt(from - WRITE_SLACK))
            .order(audit_log::at.desc())
            .select(audit_log::id)
            .first(conn)
            .optional()?;
        if let Some(before) = before {
            query = query.filter(audit_log::id.gt(before));
        }
        query = query.filter(audit_log::at.ge(from));
    }
    if let Some(to) = filter.to {
        let after: Option<i32> = audit_log::table
            .filter(audit_log::at.ge(to + WRITE_SLACK))
            .order(audit_log::at.asc())
            .select(audit_log::id)
            .first(conn)
            .optional()?;
        if let Some(after) = after {
            query = query.filter(audit_log::id.lt(after));
        }
        query = query.filter(audit_log::at.lt(to));
    }
    if let Some(actors) = &filter.actors {
        query = query.filter(audit_log::actor.eq_any(actors.clone()));
    }
    if let Some(targets) = &filter.targets {
        query = query.filter(audit_log::target.eq_any(targets.clone()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(outcome) = &filter.outcome {
        query = query.filter(audit_log::outcome.eq(outcome.clone()));
    }
    if let Some(before) = filter.before {
        query = query.filter(audit_log::id.lt(before));
    }
    query
        .order(audit_log::id.desc())
        .limit(filter.limit)
        .load(conn)
}

/// Entries of `action` with `outcome` since `since`.
pub fn count_since(
    conn: &mut DbConnection,
    action: &str,
    outcome: &str,
    since: chrono::NaiveDateTime,
) -> QueryResult<i64> {
    audit_log::table
        .filter(audit_log::action.eq(action))
        .filter(audit_log::outcome.eq(outcome))
        .filter(audit_log::at.ge(since))
        .count()
        .get_result(conn)
}

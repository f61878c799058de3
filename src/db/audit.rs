//! Queries on `audit_log` (append-only).

use super::DbConnection;
use super::models::{AuditRow, NewAuditRow};
use super::schema::audit_log;
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &NewAuditRow) -> QueryResult<usize> {
    diesel::insert_into(audit_log::table)
        .values(row)
        .execute(conn)
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

/// Newest first. A time range is also turned into a range of ids (the
/// first entry at or after `from`, the last before `to`, each one read of
/// the time index), so that a page of an old range starts where the range
/// does instead of reading every newer entry on the way.
pub fn list(conn: &mut DbConnection, filter: &AuditFilter) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_log::table.select(AuditRow::as_select()).into_boxed();
    if let Some(from) = filter.from {
        let first: Option<i32> = audit_log::table
            .filter(audit_log::at.ge(from))
            .select(diesel::dsl::min(audit_log::id))
            .first(conn)?;
        let Some(first) = first else {
            return Ok(Vec::new());
        };
        query = query
            .filter(audit_log::id.ge(first))
            .filter(audit_log::at.ge(from));
    }
    if let Some(to) = filter.to {
        let last: Option<i32> = audit_log::table
            .filter(audit_log::at.lt(to))
            .select(diesel::dsl::max(audit_log::id))
            .first(conn)?;
        let Some(last) = last else {
            return Ok(Vec::new());
        };
        query = query
            .filter(audit_log::id.le(last))
            .filter(audit_log::at.lt(to));
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

//! Queries on `audit_log` (append-only).

use super::DbConnection;
use super::models::{AuditRow, NewAuditRow};
use super::schema::audit_log;
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &NewAuditRow) -> QueryResult<usize> {
    diesel::insert_into(audit_log::table)
        .values(row)
        .execute(conn)
}

/// Which entries a reader wants; `before` is the last id of the page before.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub before: Option<i32>,
    pub limit: i64,
}

/// Newest first.
pub fn list(conn: &mut DbConnection, filter: &AuditFilter) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_log::table.select(AuditRow::as_select()).into_boxed();
    if let Some(actor) = &filter.actor {
        query = query.filter(audit_log::actor.eq(actor.clone()));
    }
    if let Some(target) = &filter.target {
        query = query.filter(audit_log::target.eq(target.clone()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::action.eq(action.clone()));
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

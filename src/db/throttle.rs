//! Queries on `login_throttle`: failure counters per subject.

use super::schema::login_throttle;
use super::{DbConnection, per_backend};
use chrono::NaiveDateTime;
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::Integer;
use diesel::upsert::excluded;

/// Counts one more attempt for `subject` in one statement, starting a new
/// window when the current one began before `window_cutoff`; returns the
/// count and the window's start. Being a single upsert, two parallel
/// attempts can never both read the same count.
pub fn count_attempt(
    conn: &mut DbConnection,
    subject: &str,
    now: NaiveDateTime,
    window_cutoff: NaiveDateTime,
) -> QueryResult<(i32, NaiveDateTime)> {
    let expired = login_throttle::window_start.le(window_cutoff);
    let upsert = diesel::insert_into(login_throttle::table)
        .values((
            login_throttle::subject.eq(subject),
            login_throttle::window_start.eq(now),
            login_throttle::failures.eq(1),
        ))
        .on_conflict(login_throttle::subject)
        .do_update()
        .set((
            login_throttle::failures
                .eq(case_when(expired, 1.into_sql::<Integer>())
                    .otherwise(login_throttle::failures + 1)),
            login_throttle::window_start.eq(case_when(
                login_throttle::window_start.le(window_cutoff),
                excluded(login_throttle::window_start),
            )
            .otherwise(login_throttle::window_start)),
        ))
        .returning((login_throttle::failures, login_throttle::window_start));
    // `ON CONFLICT` is not in what both backends share to Diesel; the
    // statement is the same on each.
    per_backend!(conn, |c| upsert.get_result(c))
}

/// Takes back one counted attempt (it turned out not to be a failure, or
/// was refused before it was tried), unless its window has been replaced.
pub fn uncount_attempt(
    conn: &mut DbConnection,
    subject: &str,
    window_start: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        login_throttle::table
            .filter(login_throttle::subject.eq(subject))
            .filter(login_throttle::window_start.eq(window_start))
            .filter(login_throttle::failures.gt(0)),
    )
    .set(login_throttle::failures.eq(login_throttle::failures - 1))
    .execute(conn)
}

/// Clears a subject's counter (a successful sign-in, or an admin's unlock).
pub fn clear(conn: &mut DbConnection, subject: &str) -> QueryResult<usize> {
    diesel::delete(login_throttle::table.filter(login_throttle::subject.eq(subject))).execute(conn)
}

/// The current count and window start of a subject, if it has one.
pub fn get(conn: &mut DbConnection, subject: &str) -> QueryResult<Option<(i32, NaiveDateTime)>> {
    login_throttle::table
        .filter(login_throttle::subject.eq(subject))
        .select((login_throttle::failures, login_throttle::window_start))
        .first(conn)
        .optional()
}

/// The counters of several subjects in one read: (subject, count, window
/// start) for each that has one.
pub fn get_all(
    conn: &mut DbConnection,
    subjects: &[&str],
) -> QueryResult<Vec<(String, i32, NaiveDateTime)>> {
    login_throttle::table
        .filter(login_throttle::subject.eq_any(subjects))
        .select((
            login_throttle::subject,
            login_throttle::failures,
            login_throttle::window_start,
        ))
        .load(conn)
}

/// Deletes counters whose window began before `cutoff`: they count nothing.
pub fn sweep(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(login_throttle::table.filter(login_throttle::window_start.lt(cutoff)))
        .execute(conn)
}

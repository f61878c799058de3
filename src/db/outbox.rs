//! Queries on `mail_outbox`: mail written in the transaction of what
//! caused it, claimed by one worker at a time, and marked done.

use super::schema::mail_outbox;
use super::{DbConnection, per_backend};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mail_outbox)]
pub struct MailRow {
    pub id: String,
    pub user_id: Option<String>,
    pub kind: String,
    pub recipient: String,
    pub recipient_name: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// When it is due; while a worker holds it, when the worker's claim
    /// lapses.
    pub next_attempt_at: NaiveDateTime,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub done_at: Option<NaiveDateTime>,
    /// `sent`, or `expired` (dropped unsent).
    pub outcome: Option<String>,
}

/// The kind of row that is not a mail yet: a forgotten-password request
/// for the address in `recipient`, which the worker turns into a mail if
/// the address is a user's. The request itself does the same work
/// whoever the address belongs to.
pub const FORGOT_REQUEST: &str = "password_reset_request";

/// Queues a mail (a new row: due, no attempt yet, not done).
pub fn enqueue(conn: &mut DbConnection, mail: &MailRow) -> QueryResult<()> {
    diesel::insert_into(mail_outbox::table)
        .values(mail)
        .execute(conn)
        .map(|_| ())
}

/// Claims up to `limit` due mails for this worker until `lease_until`
/// (their next attempt moves there, and their attempt count up), so that
/// no other worker takes them meanwhile; a worker that dies leaves them
/// due again when the lease lapses. On PostgreSQL, rows another worker is
/// claiming are skipped (`FOR UPDATE SKIP LOCKED`); SQLite has one writer.
/// Run inside a write transaction.
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<MailRow>> {
    let due = mail_outbox::table
        .filter(mail_outbox::done_at.is_null())
        .filter(mail_outbox::next_attempt_at.le(now))
        .order((mail_outbox::next_attempt_at, mail_outbox::id))
        .select(mail_outbox::id)
        .limit(limit);
    let ids: Vec<String> = match conn {
        DbConnection::Sqlite(c) => due.load(c)?,
        DbConnection::Postgres(c) => due.for_update().skip_locked().load(c)?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let claim = diesel::update(mail_outbox::table.filter(mail_outbox::id.eq_any(&ids))).set((
        mail_outbox::next_attempt_at.eq(lease_until),
        mail_outbox::attempts.eq(mail_outbox::attempts + 1),
    ));
    // RETURNING's selection is typed by backend: one body per backend.
    per_backend!(conn, |c| claim
        .clone()
        .returning(MailRow::as_returning())
        .get_results(c))
}

/// Whether any mail is due: a read, so that a worker with nothing to do
/// takes no write lock.
pub fn any_due(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        mail_outbox::table
            .filter(mail_outbox::done_at.is_null())
            .filter(mail_outbox::next_attempt_at.le(now)),
    ))
    .get_result(conn)
}

/// A claimed mail, as long as this worker's claim (`lease`, the
/// `next_attempt_at` its claim wrote) still holds it.
fn claimed(id: &str, lease: NaiveDateTime) -> ClaimedBy<'_> {
    mail_outbox::table
        .filter(mail_outbox::id.eq(id))
        .filter(mail_outbox::done_at.is_null())
        .filter(mail_outbox::next_attempt_at.eq(lease))
}

type ClaimedBy<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<mail_outbox::table, diesel::dsl::Eq<mail_outbox::id, &'a str>>,
        diesel::dsl::IsNull<mail_outbox::done_at>,
    >,
    diesel::dsl::Eq<mail_outbox::next_attempt_at, NaiveDateTime>,
>;

/// Marks a claimed mail done (`sent`, `expired`, `unsendable`,
/// `resolved`) and clears its bodies: they may hold a link with a token.
/// Nothing happens if the claim `lease` lapsed and another worker took it.
pub fn finish(
    conn: &mut DbConnection,
    id: &str,
    lease: NaiveDateTime,
    outcome: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(claimed(id, lease))
        .set((
            mail_outbox::done_at.eq(at),
            mail_outbox::outcome.eq(outcome),
            mail_outbox::body_text.eq(""),
            mail_outbox::body_html.eq(""),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A failed attempt: due again at `next_attempt_at` (if the claim
/// `lease` still holds).
pub fn retry_later(
    conn: &mut DbConnection,
    id: &str,
    lease: NaiveDateTime,
    error: &str,
    next_attempt_at: NaiveDateTime,
) -> QueryResult<()> {
    let error: String = error.chars().take(500).collect();
    diesel::update(claimed(id, lease))
        .set((
            mail_outbox::next_attempt_at.eq(next_attempt_at),
            mail_outbox::last_error.eq(error),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Drops the user's unsent mail of `kind`: a newer one replaces it (its
/// link no longer works), or the address it goes to changed.
pub fn replace_pending(
    conn: &mut DbConnection,
    user_id: &str,
    kind: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        mail_outbox::table
            .filter(mail_outbox::user_id.eq(user_id))
            .filter(mail_outbox::kind.eq(kind))
            .filter(mail_outbox::done_at.is_null()),
    )
    .set((
        mail_outbox::done_at.eq(at),
        mail_outbox::outcome.eq("replaced"),
        mail_outbox::body_text.eq(""),
        mail_outbox::body_html.eq(""),
    ))
    .execute(conn)
}

/// Mails not yet sent (nor dropped).
pub fn pending(conn: &mut DbConnection) -> QueryResult<i64> {
    mail_outbox::table
        .filter(mail_outbox::done_at.is_null())
        .count()
        .get_result(conn)
}

/// The mails to one user, newest first (the console's user page).
pub fn of_user(conn: &mut DbConnection, user_id: &str, limit: i64) -> QueryResult<Vec<MailRow>> {
    mail_outbox::table
        .filter(mail_outbox::user_id.eq(user_id))
        .order((mail_outbox::created_at.desc(), mail_outbox::id.desc()))
        .limit(limit)
        .select(MailRow::as_select())
        .load(conn)
}

/// Deletes mails done before `cutoff`.
pub fn sweep(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(mail_outbox::table.filter(mail_outbox::done_at.lt(cutoff))).execute(conn)
}

//! Queries on `users`.

use super::models::{NewUserRow, UserChangeset, UserRow, search_text};
use super::schema::users;
use super::{DbConnection, Prepare, per_backend};
use crate::domain::{Role, UserId};
use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::sqlite::Sqlite;

pub fn insert(conn: &mut DbConnection, row: &NewUserRow<'_>) -> QueryResult<UserRow> {
    diesel::insert_into(users::table)
        .values(row)
        .returning(users::all_columns)
        .get_result(conn)
}

pub fn find(conn: &mut DbConnection, id: &UserId) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// The emails of those of `ids` that are users (the audit log shows
/// people by their address).
pub fn emails_of(
    conn: &mut DbConnection,
    ids: &[String],
) -> QueryResult<std::collections::HashMap<String, String>> {
    let rows: Vec<(String, String)> = users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::email))
        .load::<(UserId, String)>(conn)?
        .into_iter()
        .map(|(id, email)| (id.into_string(), email))
        .collect();
    Ok(rows.into_iter().collect())
}

/// [`find`] inside a write transaction that goes on to act on the row: on
/// PostgreSQL the row is locked to the commit (`FOR UPDATE`), so a disable
/// or a password change committed meanwhile is waited for and then seen;
/// SQLite's write transactions are serial already.
pub fn find_for_update(conn: &mut DbConnection, id: &UserId) -> QueryResult<Option<UserRow>> {
    match conn {
        DbConnection::Sqlite(_) => find(conn, id),
        DbConnection::Postgres(c) => users::table
            .find(id)
            .select(UserRow::as_select())
            .for_update()
            .first(c)
            .optional(),
    }
}

/// Looks a user up by an already normalised email.
pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn email_taken(conn: &mut DbConnection, email: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::email.eq(email)),
    ))
    .get_result(conn)
}

/// Applies a profile change and keeps the search column in step with it.
pub fn update(
    conn: &mut DbConnection,
    id: &UserId,
    mut changes: UserChangeset,
) -> QueryResult<Option<UserRow>> {
    let Some(current) = find(conn, id)? else {
        return Ok(None);
    };
    changes.search_text = Some(search_text(
        changes.email.as_deref().unwrap_or(&current.email),
        changes.first_name.as_deref().unwrap_or(&current.first_name),
        changes.last_name.as_deref().unwrap_or(&current.last_name),
    ));
    diesel::update(users::table.find(id))
        .set(&changes)
        .returning(users::all_columns)
        .get_result(conn)
        .optional()
}

pub fn set_password_hash(
    conn: &mut DbConnection,
    id: &UserId,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
        .execute(conn)
}

/// Marks the user's address verified, if it is still `email` (the address
/// the link went to); false when it is not.
pub fn set_email_verified(
    conn: &mut DbConnection,
    id: &UserId,
    email: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(users::table.find(id).filter(users::email.eq(email)))
        .set((users::email_verified.eq(true), users::updated_at.eq(now)))
        .execute(conn)
        .map(|n| n == 1)
}

/// Replaces a hash only if it is still the one that was verified, so a
/// re-hash at sign-in never overwrites a password changed meanwhile.
pub fn upgrade_password_hash(
    conn: &mut DbConnection,
    id: &UserId,
    old_hash: &str,
    new_hash: &str,
) -> QueryResult<usize> {
    diesel::update(
        users::table
            .find(id)
            .filter(users::password_hash.eq(old_hash)),
    )
    .set(users::password_hash.eq(new_hash))
    .execute(conn)
}

/// Sets `last_login_at` of an enabled user and returns the row as it now
/// is, or `None` if the user is disabled or gone. On PostgreSQL the row
/// stays locked to the commit, and a disable or password change committed
/// meanwhile is waited for and then seen, as with [`find_for_update`]: a
/// sign-in's transaction reads and locks its user in this one statement.
pub fn record_sign_in(
    conn: &mut DbConnection,
    id: &UserId,
    at: NaiveDateTime,
) -> QueryResult<Option<UserRow>> {
    per_backend!(conn, |c| diesel::update(
        users::table.find(id).filter(users::disabled.eq(false))
    )
    .set(users::last_login_at.eq(at))
    .returning(users::all_columns)
    .prepared()
    .get_result(c)
    .optional())
}

pub fn delete(conn: &mut DbConnection, id: &UserId) -> QueryResult<usize> {
    diesel::delete(users::table.find(id)).execute(conn)
}

/// Enabled admins other than `id`: zero means `id` is the last one.
pub fn count_other_enabled_admins(conn: &mut DbConnection, id: &UserId) -> QueryResult<i64> {
    users::table
        .filter(users::role.eq(Role::Admin))
        .filter(users::disabled.eq(false))
        .filter(users::id.ne(id))
        .count()
        .get_result(conn)
}

pub fn any_admin(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::role.eq(Role::Admin)),
    ))
    .get_result(conn)
}

/// The orders a user listing can come in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum UserSort {
    /// Newest first, ties by id (descending).
    #[default]
    Newest,
    /// By email, A to Z.
    Email,
    /// Most recent sign-in first; never signed in last.
    LastLogin,
}

/// Where the next page starts: the sort key of the last row shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Newest(NaiveDateTime, UserId),
    Email(String),
    LastLogin(Option<NaiveDateTime>, UserId),
}

impl After {
    /// The position of `row` in the order `sort`.
    pub fn of(sort: UserSort, row: &UserRow) -> Self {
        match sort {
            UserSort::Newest => After::Newest(row.created_at, row.id.clone()),
            UserSort::Email => After::Email(row.email.clone()),
            UserSort::LastLogin => After::LastLogin(row.last_login_at, row.id.clone()),
        }
    }
}

/// Which users a listing wants.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Case-insensitive substring of email, first or last name.
    pub q: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub sort: UserSort,
    /// The last row of the page before, in the same sort.
    pub after: Option<After>,
    pub limit: i64,
}

/// One page by keyset: the cost of a page does not grow with how deep it
/// is, in any of the sorts (each has an index).
///
/// A search (`q`) is a LIKE on `search_text` and exact in every case; what
/// changes is how many rows it reads. On PostgreSQL a trigram index
/// (`pg_trgm`) serves the LIKE, and the planner chooses between it and the
/// listing's order. On SQLite, see [`sqlite_search`].
pub fn list(conn: &mut DbConnection, filter: &UserFilter) -> QueryResult<Vec<UserRow>> {
    let pattern = filter
        .q
        .as_ref()
        .map(|q| format!("%{}%", escape_like(&q.to_lowercase())));
    match conn {
        DbConnection::Postgres(conn) => match pattern {
            Some(pattern) => postgres_search(conn, filter, pattern),
            None => ordered!(filter, None, Pg, postgres)
                .select(UserRow::as_select())
                .limit(filter.limit)
                .load(conn),
        },
        DbConnection::Sqlite(conn) => match (&filter.q, pattern) {
            (Some(q), Some(pattern)) => sqlite_search(conn, filter, &q.to_lowercase(), pattern),
            _ => ordered!(filter, None, Sqlite, sqlite)
                .select(UserRow::as_select())
                .limit(filter.limit)
                .load(conn),
        },
    }
}

/// Up to `limit` users whose email or name holds `q` (any letter case), in
/// no order: who an audit filter stands for. It reads no more matches than
/// it returns (a common term stops early; on SQLite the trigram index
/// drives it), where [`list`] must sort every match.
pub fn ids_matching(conn: &mut DbConnection, q: &str, limit: i64) -> QueryResult<Vec<String>> {
    let needle = q.to_lowercase();
    let pattern = format!("%{}%", escape_like(&needle));
    let ids: Vec<UserId> = match conn {
        DbConnection::Sqlite(c) => match trigram_phrase(&needle) {
            Some(phrase) => diesel::sql_query(
                "SELECT users.id AS id FROM users_search \
                 JOIN users ON users.rowid = users_search.rowid \
                 WHERE users_search MATCH ? AND users.search_text LIKE ? ESCAPE '\\' LIMIT ?",
            )
            .bind::<Text, _>(phrase)
            .bind::<Text, _>(pattern)
            .bind::<BigInt, _>(limit)
            .load::<MatchedId>(c)?
            .into_iter()
            .map(|row| row.id)
            .collect(),
            None => users::table
                .filter(users::search_text.like(pattern).escape('\\'))
                .select(users::id)
                .limit(limit)
                .load(c)?,
        },
        DbConnection::Postgres(c) => users::table
            .filter(users::search_text.like(pattern).escape('\\'))
            .select(users::id)
            .limit(limit)
            .load(c)?,
    };
    Ok(ids.into_iter().map(UserId::into_string).collect())
}

#[derive(QueryableByName)]
struct MatchedId {
    #[diesel(sql_type = Text)]
    id: UserId,
}

/// A search on PostgreSQL. Its planner assumes matches are spread evenly
/// through the listing's order, so it walks that order's index and keeps
/// the rows that match: a page at once for a common term, but a million
/// rows read for one whose few matches all lie far down the list. So the
/// walk gets [`PG_WALK_BUDGET_MS`]; past it, the matching ids are read in
/// no order (the trigram index serves that), then up to [`PG_FEW_MATCHES`]
/// rows by key, sorted here. A term with more matches than that walks
/// without a limit (the worst case left: very many matches, all far down).
fn postgres_search(
    conn: &mut PgConnection,
    filter: &UserFilter,
    pattern: String,
) -> QueryResult<Vec<UserRow>> {
    let walked = conn.transaction(|conn| {
        diesel::sql_query("SELECT set_config('statement_timeout', $1, true)")
            .bind::<Text, _>(PG_WALK_BUDGET_MS.to_string())
            .execute(conn)?;
        ordered!(filter, Some(pattern.clone()), Pg, postgres)
            .select(UserRow::as_select())
            .limit(filter.limit)
            .load(conn)
    });
    match walked {
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("statement timeout") => {}
        done => return done,
    }
    let ids: Vec<UserId> = filtered!(filter, Some(pattern.clone()), Pg)
        .select(users::id)
        .limit(PG_FEW_MATCHES + 1)
        .load(conn)?;
    if ids.len() as i64 > PG_FEW_MATCHES {
        return ordered!(filter, Some(pattern), Pg, postgres)
            .select(UserRow::as_select())
            .limit(filter.limit)
            .load(conn);
    }
    // By primary key, in no order: nothing for the planner to walk.
    let mut matches: Vec<UserRow> = users::table
        .filter(users::id.eq_any(&ids))
        .select(UserRow::as_select())
        .load(conn)?;
    matches.sort_by(|a, b| listing_order(filter.sort, a, b));
    matches.truncate(usize::try_from(filter.limit).unwrap_or(0));
    Ok(matches)
}

/// How long the ordered walk of a PostgreSQL search may take, in
/// milliseconds, before the search reads its matches the other way.
const PG_WALK_BUDGET_MS: u32 = 50;

/// Up to this many matches, a PostgreSQL search that gave up walking
/// reads them all (ids first, then the rows by key) and sorts them here.
const PG_FEW_MATCHES: i64 = 20_000;

/// The listing's order, as the SQL of `ordered!` sorts (ids and emails byte
/// by byte, as their `COLLATE "C"` columns compare).
fn listing_order(sort: UserSort, a: &UserRow, b: &UserRow) -> std::cmp::Ordering {
    match sort {
        UserSort::Newest => (b.created_at, &b.id).cmp(&(a.created_at, &a.id)),
        UserSort::Email => a.email.cmp(&b.email),
        // Most recent first, never signed in last; ties newest id first.
        UserSort::LastLogin => match (a.last_login_at, b.last_login_at) {
            (Some(x), Some(y)) => (y, &b.id).cmp(&(x, &a.id)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => b.id.cmp(&a.id),
        },
    }
}

/// A search on SQLite. From three characters on, the trigram index
/// (`users_search`, FTS5) counts the matches first:
/// - at most [`FEW_MATCHES`]: only those rows are read, then sorted;
/// - more: the first [`WALK_BUDGET`] rows of the listing's own order
///   usually hold a page already (one row in 200 matches). When they do
///   not (the matches all lie further down), every match is read and
///   sorted, in time proportional to their number.
///
/// Shorter searches walk the listing's order until the page is full.
fn sqlite_search(
    conn: &mut SqliteConnection,
    filter: &UserFilter,
    needle: &str,
    pattern: String,
) -> QueryResult<Vec<UserRow>> {
    let page = |conn: &mut SqliteConnection, within: Option<i64>, phrase: Option<&str>| {
        let mut query =
            ordered!(filter, Some(pattern.clone()), Sqlite, sqlite).select(UserRow::as_select());
        if let Some(budget) = within {
            let window = ordered!(filter, None, Sqlite, sqlite)
                .select(sql::<BigInt>("users.rowid"))
                .limit(budget);
            query = query.filter(sql::<BigInt>("users.rowid").eq_any(window));
        }
        if let Some(phrase) = phrase {
            query = query.filter(in_search_index(phrase));
        }
        query.limit(filter.limit).load(conn)
    };
    let Some(phrase) = trigram_phrase(needle) else {
        return page(conn, None, None);
    };
    if few_matches(conn, &phrase)? {
        return page(conn, None, Some(&phrase));
    }
    let first = page(conn, Some(WALK_BUDGET), None)?;
    if first.len() as i64 >= filter.limit {
        return Ok(first);
    }
    page(conn, None, Some(&phrase))
}

/// The listing in its order, from its cursor, with its filters and, when
/// given, the LIKE `pattern` on `search_text`: a boxed query for the
/// backend `$db` (a macro, so that each backend's query is its own type).
macro_rules! ordered {
    ($filter:expr, $pattern:expr, $db:ty, $backend:ident) => {{
        let filter: &UserFilter = $filter;
        let query = filtered!(filter, $pattern, $db);
        match filter.sort {
            UserSort::Newest => query.order((users::created_at.desc(), users::id.desc())),
            UserSort::Email => query.order(users::email.asc()),
            UserSort::LastLogin => last_login_order!(query, $backend),
        }
    }};
}
use ordered;

/// The listing's filters and cursor, in no order: a boxed query for `$db`.
macro_rules! filtered {
    ($filter:expr, $pattern:expr, $db:ty) => {{
        let filter: &UserFilter = $filter;
        let pattern: Option<String> = $pattern;
        let mut query = users::table.into_boxed::<$db>();
        if let Some(pattern) = pattern {
            query = query.filter(users::search_text.like(pattern).escape('\\'));
        }
        if let Some(role) = filter.role {
            query = query.filter(users::role.eq(role));
        }
        if let Some(disabled) = filter.disabled {
            query = query.filter(users::disabled.eq(disabled));
        }
        query = match &filter.after {
            None => query,
            Some(After::Newest(created_at, id)) => query.filter(
                users::created_at.lt(*created_at).or(users::created_at
                    .eq(*created_at)
                    .and(users::id.lt(id.clone()))),
            ),
            Some(After::Email(email)) => query.filter(users::email.gt(email.clone())),
            Some(After::LastLogin(Some(at), id)) => query.filter(
                users::last_login_at
                    .lt(*at)
                    .or(users::last_login_at.eq(*at).and(users::id.lt(id.clone())))
                    .or(users::last_login_at.is_null()),
            ),
            Some(After::LastLogin(None, id)) => {
                query.filter(users::last_login_at.is_null().and(users::id.lt(id.clone())))
            }
        };
        query
    }};
}
use filtered;

/// "Never signed in" last, as the keyset condition of `ordered!` expects:
/// SQLite sorts NULL lowest, so DESC does it; PostgreSQL sorts it highest
/// and is told (its index is in this order).
macro_rules! last_login_order {
    ($query:expr, sqlite) => {
        $query.order((users::last_login_at.desc(), users::id.desc()))
    };
    ($query:expr, postgres) => {
        $query.order((users::last_login_at.desc().nulls_last(), users::id.desc()))
    };
}
use last_login_order;

/// The users whose `search_text` holds the FTS5 `phrase`.
fn in_search_index(
    phrase: &str,
) -> Box<dyn BoxableExpression<users::table, Sqlite, SqlType = Bool>> {
    Box::new(
        sql::<Bool>("users.rowid IN (SELECT rowid FROM users_search WHERE users_search MATCH ")
            .bind::<Text, _>(phrase.to_owned())
            .sql(")"),
    )
}

/// Above this many trigram matches, a search first looks at the first
/// [`WALK_BUDGET`] rows of the listing's order.
const FEW_MATCHES: i64 = 5_000;

/// How many rows of the listing's order a search with many matches reads
/// before it reads every match instead.
const WALK_BUDGET: i64 = 10_000;

/// The FTS5 phrase that finds `needle` as a substring in `users_search`,
/// if it is long enough for trigrams (shorter ones fall back to the scan).
fn trigram_phrase(needle: &str) -> Option<String> {
    (needle.chars().count() >= 3).then(|| format!("\"{}\"", needle.replace('"', "\"\"")))
}

/// Whether `phrase` matches at most [`FEW_MATCHES`] users.
fn few_matches(conn: &mut SqliteConnection, phrase: &str) -> QueryResult<bool> {
    let matches: i64 = diesel::select(
        sql::<BigInt>(
            "(SELECT count(*) FROM (SELECT rowid FROM users_search WHERE users_search MATCH ",
        )
        .bind::<Text, _>(phrase)
        .sql(" LIMIT ")
        .bind::<BigInt, _>(FEW_MATCHES + 1)
        .sql("))"),
    )
    .get_result(conn)?;
    Ok(matches <= FEW_MATCHES)
}

/// Makes `%`, `_` and `\` in a search match themselves.
fn escape_like(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Users, admins and disabled users, for the dashboard.
pub fn counts(conn: &mut DbConnection) -> QueryResult<(i64, i64, i64)> {
    let total = users::table.count().get_result(conn)?;
    let admins = users::table
        .filter(users::role.eq(Role::Admin))
        .count()
        .get_result(conn)?;
    let disabled = users::table
        .filter(users::disabled.eq(true))
        .count()
        .get_result(conn)?;
    Ok((total, admins, disabled))
}

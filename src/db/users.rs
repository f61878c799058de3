//! Queries on `users`.

use super::models::{NewUserRow, UserChangeset, UserRow, search_text};
use super::schema::users;
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub fn insert(conn: &mut SqliteConnection, row: &NewUserRow<'_>) -> QueryResult<UserRow> {
    diesel::insert_into(users::table)
        .values(row)
        .returning(UserRow::as_returning())
        .get_result(conn)
}

pub fn find(conn: &mut SqliteConnection, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// Looks a user up by an already normalised email.
pub fn find_by_email(conn: &mut SqliteConnection, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn email_taken(conn: &mut SqliteConnection, email: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::email.eq(email)),
    ))
    .get_result(conn)
}

/// Applies a profile change and keeps the search column in step with it.
pub fn update(
    conn: &mut SqliteConnection,
    id: &str,
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
        .returning(UserRow::as_returning())
        .get_result(conn)
        .optional()
}

pub fn set_password_hash(
    conn: &mut SqliteConnection,
    id: &str,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
        .execute(conn)
}

/// Replaces a hash only if it is still the one that was verified, so a
/// re-hash at sign-in never overwrites a password changed meanwhile.
pub fn upgrade_password_hash(
    conn: &mut SqliteConnection,
    id: &str,
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

pub fn set_last_login(
    conn: &mut SqliteConnection,
    id: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(at))
        .execute(conn)
}

pub fn delete(conn: &mut SqliteConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(users::table.find(id)).execute(conn)
}

/// Enabled admins other than `id`: zero means `id` is the last one.
pub fn count_other_enabled_admins(conn: &mut SqliteConnection, id: &str) -> QueryResult<i64> {
    users::table
        .filter(users::role.eq("admin"))
        .filter(users::disabled.eq(false))
        .filter(users::id.ne(id))
        .count()
        .get_result(conn)
}

pub fn any_admin(conn: &mut SqliteConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::role.eq("admin")),
    ))
    .get_result(conn)
}

/// Which users a listing wants; `after` is the last row of the page before.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Case-insensitive substring of email, first or last name.
    pub q: Option<String>,
    pub role: Option<&'static str>,
    pub disabled: Option<bool>,
    pub after: Option<(NaiveDateTime, String)>,
    pub limit: i64,
}

/// Newest first, ties broken by id (descending), one page by keyset: the
/// cost of a page does not grow with how deep it is.
pub fn list(conn: &mut SqliteConnection, filter: &UserFilter) -> QueryResult<Vec<UserRow>> {
    let mut query = users::table.select(UserRow::as_select()).into_boxed();
    if let Some(q) = &filter.q {
        let pattern = format!("%{}%", escape_like(&q.to_lowercase()));
        query = query.filter(users::search_text.like(pattern).escape('\\'));
    }
    if let Some(role) = filter.role {
        query = query.filter(users::role.eq(role));
    }
    if let Some(disabled) = filter.disabled {
        query = query.filter(users::disabled.eq(disabled));
    }
    if let Some((created_at, id)) = &filter.after {
        query = query.filter(
            users::created_at.lt(*created_at).or(users::created_at
                .eq(*created_at)
                .and(users::id.lt(id.clone()))),
        );
    }
    query
        .order((users::created_at.desc(), users::id.desc()))
        .limit(filter.limit)
        .load(conn)
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

//! Queries on `email_tokens`: the password-reset and verification tokens
//! sent by mail, kept as SHA-256, each bound to its user, its purpose and
//! the address it was sent to. Using one deletes it.

use super::DbConnection;
use super::schema::email_tokens;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// What a token is for.
pub mod purpose {
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const VERIFY_EMAIL: &str = "verify_email";
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = email_tokens)]
pub struct EmailTokenRow {
    pub token_hash: String,
    pub user_id: String,
    pub purpose: String,
    pub email: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Issues `row`, voiding the user's earlier tokens of the same purpose.
pub fn issue(conn: &mut DbConnection, row: &EmailTokenRow) -> QueryResult<()> {
    diesel::delete(
        email_tokens::table
            .filter(email_tokens::user_id.eq(&row.user_id))
            .filter(email_tokens::purpose.eq(&row.purpose)),
    )
    .execute(conn)?;
    diesel::insert_into(email_tokens::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// When the user's newest token of `purpose` was issued, if one is left.
pub fn last_issued(
    conn: &mut DbConnection,
    user_id: &str,
    purpose: &str,
) -> QueryResult<Option<NaiveDateTime>> {
    email_tokens::table
        .filter(email_tokens::user_id.eq(user_id))
        .filter(email_tokens::purpose.eq(purpose))
        .select(diesel::dsl::max(email_tokens::created_at))
        .first(conn)
}

/// The token with this hash and purpose, if it exists (expired or not).
pub fn find(
    conn: &mut DbConnection,
    token_hash: &str,
    purpose: &str,
) -> QueryResult<Option<EmailTokenRow>> {
    email_tokens::table
        .filter(email_tokens::token_hash.eq(token_hash))
        .filter(email_tokens::purpose.eq(purpose))
        .select(EmailTokenRow::as_select())
        .first(conn)
        .optional()
}

/// Spends the token: true when this call deleted it (so of two requests
/// racing with one token, exactly one gets true).
pub fn spend(conn: &mut DbConnection, token_hash: &str) -> QueryResult<bool> {
    diesel::delete(email_tokens::table.find(token_hash))
        .execute(conn)
        .map(|n| n == 1)
}

/// Voids every token of the user of `purpose` (a password set, an email
/// changed).
pub fn void(conn: &mut DbConnection, user_id: &str, purpose: &str) -> QueryResult<usize> {
    diesel::delete(
        email_tokens::table
            .filter(email_tokens::user_id.eq(user_id))
            .filter(email_tokens::purpose.eq(purpose)),
    )
    .execute(conn)
}

/// Deletes tokens that expired before `cutoff`.
pub fn sweep(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(email_tokens::table.filter(email_tokens::expires_at.lt(cutoff))).execute(conn)
}

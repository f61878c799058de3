//! Copying a whole store into another, of either backend: what
//! `latchkey migrate-store` does to move a SQLite store to PostgreSQL (or
//! back). The source is read in one snapshot; the target is written in one
//! transaction, so a copy that fails half-way leaves the target as it was.
//! Rows keep their keys (user and session ids, audit entry ids), so tokens,
//! refresh chains, console cookies and audit cursors stay valid.
//!
//! The change feed is not copied: it only tells running instances what
//! others did, and instances of the new store start after its end. Nor are
//! sign-ins waiting for their second factor (five minutes at most).

use super::console_sessions::ConsoleSessionRow;
use super::email_tokens::EmailTokenRow;
use super::mfa::{RecoveryCodeRow, TotpRow};
use super::models::{
    AuditRow, RefreshTokenRow, ServiceClientRow, SessionRow, SigningKeyRow, UserRow,
};
use super::outbox::MailRow;
use super::schema::{
    audit_log, console_sessions, email_tokens, login_throttle, mail_outbox, mfa_recovery_codes,
    mfa_totp, refresh_tokens, server_secrets, service_clients, sessions, signing_keys, users,
};
use super::{DbConnection, StoreError, per_backend};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Rows read and written per statement: well under both backends' limits
/// on bound parameters (15 columns × 500).
const BATCH: i64 = 500;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_throttle)]
struct ThrottleRow {
    subject: String,
    window_start: NaiveDateTime,
    failures: i32,
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = server_secrets)]
struct SecretRow {
    name: String,
    value: Vec<u8>,
    created_at: NaiveDateTime,
}

/// How many rows of each kind were copied.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    pub users: usize,
    pub sessions: usize,
    pub refresh_tokens: usize,
    pub signing_keys: usize,
    pub server_secrets: usize,
    pub console_sessions: usize,
    pub service_clients: usize,
    pub totp_secrets: usize,
    pub recovery_codes: usize,
    pub email_tokens: usize,
    pub outbox_mails: usize,
    pub throttle_counters: usize,
    pub audit_entries: usize,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        write!(
            f,
            "{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {} and {}",
            count(self.users, "user", "users"),
            count(self.sessions, "session", "sessions"),
            count(self.refresh_tokens, "refresh token", "refresh tokens"),
            count(self.signing_keys, "signing key", "signing keys"),
            count(self.console_sessions, "console session", "console sessions"),
            count(self.service_clients, "service client", "service clients"),
            count(self.totp_secrets, "TOTP secret", "TOTP secrets"),
            count(self.recovery_codes, "recovery code", "recovery codes"),
            count(self.email_tokens, "email token", "email tokens"),
            count(self.outbox_mails, "mail", "mails"),
            count(
                self.throttle_counters,
                "throttle counter",
                "throttle counters"
            ),
            count(self.audit_entries, "audit entry", "audit entries"),
        )
    }
}

/// Why a copy did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target holds data already; nothing was written.
    #[error(
        "the target already holds {users} users, {keys} signing keys and {audit} audit \
         entries: migrate-store copies into a new, empty database, before any latchkey \
         serves on it"
    )]
    NotEmpty { users: i64, keys: i64, audit: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for CopyError {
    fn from(err: diesel::result::Error) -> Self {
        CopyError::Store(err.into())
    }
}

/// Pages through `$table` by its key `$key` (ascending) on `$from` and
/// inserts every page into `$to`; evaluates to the number of rows.
macro_rules! copy_table {
    ($from:expr, $to:expr, $table:ident, $key:ident, $row:ty) => {{
        let mut copied = 0usize;
        let mut after = None;
        loop {
            let mut page = $table::table
                .order($table::$key.asc())
                .limit(BATCH)
                .select(<$row>::as_select())
                .into_boxed();
            if let Some(last) = &after {
                page = page.filter($table::$key.gt(last));
            }
            let rows: Vec<$row> = page.load(&mut *$from)?;
            let Some(last) = rows.last() else { break };
            after = Some(last.$key.clone());
            // A batch insert is one statement per backend.
            per_backend!(&mut *$to, |c| diesel::insert_into($table::table)
                .values(&rows)
                .execute(c))?;
            copied += rows.len();
        }
        copied
    }};
}

/// Copies every row of `from` into `to` (both migrated), which must hold
/// no users, keys or audit entries. `finish` runs last in the target's
/// transaction (the caller records the copy in the new audit log there).
pub fn copy_store(
    from: &mut DbConnection,
    to: &mut DbConnection,
    finish: impl FnOnce(&mut DbConnection, &Copied) -> QueryResult<()>,
) -> Result<Copied, CopyError> {
    super::snapshot(from, |from| {
        super::write(to, |to| {
            let (users, keys, audit) = (
                users::table.count().get_result::<i64>(to)?,
                signing_keys::table.count().get_result::<i64>(to)?,
                audit_log::table.count().get_result::<i64>(to)?,
            );
            if users + keys + audit > 0 {
                return Err(CopyError::NotEmpty { users, keys, audit });
            }
            // Parents before children: sessions refer to users, refresh
            // tokens to sessions, console sessions to users.
            let copied = Copied {
                users: copy_table!(from, to, users, id, UserRow),
                sessions: copy_table!(from, to, sessions, id, SessionRow),
                refresh_tokens: copy_table!(from, to, refresh_tokens, token_hash, RefreshTokenRow),
                signing_keys: copy_table!(from, to, signing_keys, kid, SigningKeyRow),
                server_secrets: copy_table!(from, to, server_secrets, name, SecretRow),
                console_sessions: copy_table!(
                    from,
                    to,
                    console_sessions,
                    key_hash,
                    ConsoleSessionRow
                ),
                service_clients: copy_table!(from, to, service_clients, id, ServiceClientRow),
                totp_secrets: copy_table!(from, to, mfa_totp, user_id, TotpRow),
                recovery_codes: copy_table!(
                    from,
                    to,
                    mfa_recovery_codes,
                    code_hash,
                    RecoveryCodeRow
                ),
                email_tokens: copy_table!(from, to, email_tokens, token_hash, EmailTokenRow),
                outbox_mails: copy_table!(from, to, mail_outbox, id, MailRow),
                throttle_counters: copy_table!(from, to, login_throttle, subject, ThrottleRow),
                audit_entries: copy_table!(from, to, audit_log, id, AuditRow),
            };
            // Rows came with their ids: PostgreSQL's sequence must go on
            // after the last one (SQLite's rowid does so by itself).
            if let DbConnection::Postgres(c) = to {
                diesel::sql_query(
                    "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), \
                     COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM audit_log",
                )
                .execute(c)?;
            }
            finish(to, &copied)?;
            Ok(copied)
        })
    })
}

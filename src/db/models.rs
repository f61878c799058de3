//! Rows as the store holds them, the structs that insert them and the
//! changesets that update them. None of these is ever serialised to a
//! client: the API has its own views (see `routes::api`), so a row holding
//! `password_hash` or a key's secret cannot leak by accident.
//!
//! Times are UTC, stored as SQL `TIMESTAMP` (`NaiveDateTime` in UTC).

use super::schema::{audit_log, refresh_tokens, service_clients, sessions, signing_keys, users};
use crate::domain::{KeyAlgorithm, KeyState, Role, UserId};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
    pub search_text: String,
    /// Two-factor sign-in (TOTP) is on.
    pub mfa: bool,
    /// The user proved the address receives mail (a verification link),
    /// or an operator vouched for it.
    pub email_verified: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUserRow<'a> {
    pub id: &'a UserId,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub search_text: String,
    pub email_verified: bool,
}

/// A profile change; `None` leaves a column as it is.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChangeset {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub updated_at: NaiveDateTime,
    pub search_text: Option<String>,
    /// Set to false when the email changes.
    pub email_verified: Option<bool>,
}

/// What the user search matches: email and names, lower-cased.
pub fn search_text(email: &str, first_name: &str, last_name: &str) -> String {
    format!("{}\u{1f}{}\u{1f}{}", email, first_name, last_name).to_lowercase()
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub user_id: Option<UserId>,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub idle_expires_at: NaiveDateTime,
    pub absolute_expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_reason: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionRow {
    /// Live: not revoked and inside both its idle and absolute lifetimes.
    pub fn is_live(&self, now: NaiveDateTime) -> bool {
        self.revoked_at.is_none() && now < self.idle_expires_at && now < self.absolute_expires_at
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSessionRow<'a> {
    pub id: &'a str,
    pub user_id: &'a UserId,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub idle_expires_at: NaiveDateTime,
    pub absolute_expires_at: NaiveDateTime,
    pub client_addr: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub session_id: String,
    pub issued_at: NaiveDateTime,
    pub spent_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshTokenRow<'a> {
    pub token_hash: &'a str,
    pub session_id: &'a str,
    pub issued_at: NaiveDateTime,
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub secret: Vec<u8>,
    pub state: KeyState,
    pub created_at: NaiveDateTime,
    pub deactivated_at: Option<NaiveDateTime>,
    pub retired_at: Option<NaiveDateTime>,
    pub algorithm: KeyAlgorithm,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: i32,
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub client_addr: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_log)]
pub struct NewAuditRow {
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub client_addr: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

/// A service client: credentials another service uses to introspect
/// tokens. The secret itself is never stored, only its SHA-256.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_clients)]
pub struct ServiceClientRow {
    pub id: String,
    pub name: String,
    pub secret_hash: String,
    pub created_at: NaiveDateTime,
    /// Who created it, as the audit log names actors.
    pub created_by: String,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for ServiceClientRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClientRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

//! What the JSON API sends: views built from store rows, never the rows
//! themselves (a row holds a password hash or a key's secret).

use crate::db::models::{ServiceClientRow, SigningKeyRow, UserRow};
use crate::domain::Role;
use crate::rfc3339::format as rfc3339;
use serde::Serialize;
use utoipa::ToSchema;

/// A user, as every endpoint returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Opaque id (UUID text).
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime)]
    pub last_login_at: Option<String>,
    /// Two-factor sign-in (TOTP) is on.
    pub mfa: bool,
    /// The user followed a verification link sent to `email` (or an
    /// operator created them).
    pub email_verified: bool,
}

impl From<&UserRow> for UserView {
    fn from(row: &UserRow) -> Self {
        Self {
            id: row.id.as_str().to_owned(),
            first_name: row.first_name.clone(),
            last_name: row.last_name.clone(),
            email: row.email.clone(),
            role: row.role,
            disabled: row.disabled,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
            last_login_at: row.last_login_at.map(rfc3339),
            mfa: row.mfa,
            email_verified: row.email_verified,
        }
    }
}

/// One page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The answer to a sign-in or a refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Seconds the refresh token stays usable, rounded down.
    pub refresh_expires_in: i64,
}

/// A key of the ring, never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    /// `active`, `previous` or `retired`.
    pub state: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub retired_at: Option<String>,
}

impl From<&SigningKeyRow> for KeyView {
    fn from(row: &SigningKeyRow) -> Self {
        Self {
            kid: row.kid.clone(),
            state: row.state.to_string(),
            created_at: rfc3339(row.created_at),
            retired_at: row.retired_at.map(rfc3339),
        }
    }
}

/// A service client, never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    /// The HTTP Basic user name of the client (UUID text).
    pub id: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Who created it: a user id, or `cli`.
    pub created_by: String,
    /// When it last authenticated (to the minute); `null` if never.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    /// `null` while the client works.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

impl From<&ServiceClientRow> for ClientView {
    fn from(row: &ServiceClientRow) -> Self {
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            created_at: rfc3339(row.created_at),
            created_by: row.created_by.clone(),
            last_used_at: row.last_used_at.map(rfc3339),
            revoked_at: row.revoked_at.map(rfc3339),
        }
    }
}

/// A client just created: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewClientView {
    pub id: String,
    pub name: String,
    /// The HTTP Basic password of the client. Shown this once; latchkey
    /// keeps only its hash.
    pub secret: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

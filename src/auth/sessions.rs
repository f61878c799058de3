//! Sessions and their refresh tokens.
//!
//! A session is one sign-in. Its refresh tokens form a chain: each refresh
//! spends the presented token and issues its successor in one write
//! transaction, and the answer leaves only after the commit. A spent token
//! presented again is theft (RFC 9700 §4.14.2) unless it comes within the
//! grace window of its first use, when it is an eager client refreshing
//! twice.

use crate::audit::{self, Event, Outcome};
use crate::auth::password::fill_random;
use crate::client::ClientInfo;
use crate::config::Settings;
use crate::db::DbConnection;
use crate::db::models::{NewRefreshTokenRow, NewSessionRow, SessionRow, UserRow};
use crate::db::{refresh_tokens, sessions, users};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::QueryResult;
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// Why a session ended, as stored in `revoked_reason`.
pub mod reason {
    pub const LOGOUT: &str = "logout";
    pub const LOGOUT_ALL: &str = "logout_all";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const USER_DISABLED: &str = "user_disabled";
    pub const USER_DELETED: &str = "user_deleted";
    pub const REFRESH_REUSE: &str = "refresh_token_reuse";
    pub const ADMIN: &str = "revoked_by_admin";
    pub const MFA_RESET: &str = "mfa_reset";
}

/// A new opaque refresh token: 256 bits from the OS generator, base64url.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a refresh token: SHA-256, hex.
pub fn hash_refresh_token(token: &str) -> String {
    sha256_hex(token)
}

/// SHA-256 of a string, lower-case hex.
pub fn sha256_hex(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    digest
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Lifetimes from the settings, as time deltas.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: TimeDelta,
    pub absolute: TimeDelta,
    pub reuse_grace: TimeDelta,
}

impl Lifetimes {
    pub fn new(settings: &Settings) -> Self {
        let delta = |d: std::time::Duration| TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
        Self {
            idle: delta(settings.refresh_token_ttl),
            absolute: delta(settings.session_max_age),
            reuse_grace: delta(settings.refresh_reuse_grace),
        }
    }
}

/// When a session stops being usable if nobody refreshes it.
pub fn ends_at(session: &SessionRow) -> DateTime<Utc> {
    session
        .idle_expires_at
        .min(session.absolute_expires_at)
        .and_utc()
}

/// Whole seconds, rounded down, that the newest refresh token works, as of
/// its issue (the session's last use).
pub fn refresh_expires_in(session: &SessionRow) -> i64 {
    (ends_at(session) - session.last_used_at.and_utc())
        .num_seconds()
        .max(0)
}

/// Opens a session for `user` and issues its first refresh token.
pub fn open(
    conn: &mut DbConnection,
    user: &UserRow,
    client: &ClientInfo,
    lifetimes: Lifetimes,
    now: NaiveDateTime,
) -> QueryResult<(SessionRow, String)> {
    let id = uuid::Uuid::new_v4().to_string();
    let absolute = now + lifetimes.absolute;
    let token = new_refresh_token();
    let hash = hash_refresh_token(&token);
    let session = sessions::open(
        conn,
        &NewSessionRow {
            id: &id,
            user_id: &user.id,
            created_at: now,
            last_used_at: now,
            idle_expires_at: (now + lifetimes.idle).min(absolute),
            absolute_expires_at: absolute,
            client_addr: client.addr.as_deref(),
            user_agent: client.user_agent.as_deref(),
        },
        &NewRefreshTokenRow {
            token_hash: &hash,
            session_id: &id,
            issued_at: now,
        },
    )?;
    Ok((session, token))
}

/// A successful rotation: the session renewed and its new refresh token.
pub struct Rotated {
    pub user: UserRow,
    pub session: SessionRow,
    pub refresh_token: String,
}

/// How a refresh went.
pub enum Refresh {
    /// The token was spent and a successor issued.
    Rotated(Box<Rotated>),
    /// Refused without consequence (unknown, expired, revoked, or a second
    /// use inside the grace window).
    Refused(&'static str),
    /// A spent token came back after the grace window: the session was
    /// revoked; its id must enter the revocation set.
    Reused { session_id: String },
}

/// Spends `presented` and issues its successor, inside the caller's write
/// transaction.
pub fn rotate(
    conn: &mut DbConnection,
    presented: &str,
    client: &ClientInfo,
    lifetimes: Lifetimes,
    now: NaiveDateTime,
) -> QueryResult<Refresh> {
    let hash = hash_refresh_token(presented);
    let Some((token, session)) = refresh_tokens::find_with_session(conn, &hash)? else {
        return Ok(Refresh::Refused("unknown refresh token"));
    };
    if let Some(spent_at) = token.spent_at {
        if session.revoked_at.is_some() {
            return Ok(Refresh::Refused("spent token of a revoked session"));
        }
        if now - spent_at < lifetimes.reuse_grace {
            return Ok(Refresh::Refused(
                "spent token reused within the grace window",
            ));
        }
        sessions::revoke(conn, &session.id, now, reason::REFRESH_REUSE)?;
        let actor = session
            .user_id
            .as_ref()
            .map_or(audit::ANONYMOUS, |id| id.as_str());
        Event::new(actor, "refresh.reuse", Outcome::Denied)
            .target(&session.id)
            .client(client)
            .detail(serde_json::json!({ "session_id": session.id }))
            .write(conn, now)?;
        return Ok(Refresh::Reused {
            session_id: session.id,
        });
    }
    if !session.is_live(now) {
        return Ok(Refresh::Refused("session revoked or expired"));
    }
    let Some(user) = session
        .user_id
        .as_ref()
        .map(|id| users::find(conn, id))
        .transpose()?
        .flatten()
    else {
        return Ok(Refresh::Refused("user deleted"));
    };
    if user.disabled {
        return Ok(Refresh::Refused("user disabled"));
    }
    if !refresh_tokens::spend(conn, &hash, now)? {
        return Ok(Refresh::Refused("token spent by a concurrent refresh"));
    }
    let refresh_token = new_refresh_token();
    let successor = hash_refresh_token(&refresh_token);
    refresh_tokens::insert(
        conn,
        &NewRefreshTokenRow {
            token_hash: &successor,
            session_id: &session.id,
            issued_at: now,
        },
    )?;
    let idle_expires_at = (now + lifetimes.idle).min(session.absolute_expires_at);
    sessions::touch(conn, &session.id, now, idle_expires_at)?;
    let session = SessionRow {
        idle_expires_at,
        last_used_at: now,
        ..session
    };
    Ok(Refresh::Rotated(Box::new(Rotated {
        user,
        session,
        refresh_token,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_carry_256_bits_and_are_stored_hashed() {
        let token = new_refresh_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_ne!(token, new_refresh_token());
        let hash = hash_refresh_token(&token);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&token));
    }
}

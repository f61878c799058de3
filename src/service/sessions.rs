//! Sessions: signing in for the API, refreshing, signing out, and ending
//! sessions for someone else. [`end_all_of_user`] is the one place that
//! ends all of a user's sessions, API and console alike.

use super::signin;
use super::{Actor, ServiceError};
use crate::audit::{self, Event, Outcome};
use crate::auth::sessions::{self as chain, Refresh};
use crate::client::ClientInfo;
use crate::db::DbConnection;
use crate::db::models::{SessionRow, UserRow};
use crate::db::{console_sessions, refresh_tokens, sessions, users};
use crate::domain::UserId;
use crate::state::{AppState, Revoked};
use chrono::NaiveDateTime;
use diesel::QueryResult;
use serde_json::json;

pub use crate::auth::sessions::reason;

/// Ends every session of `user`, inside the caller's write transaction:
/// the API sessions (revoked, except `keep`, the caller's own when a
/// password change keeps it) and every console session. Their ids enter
/// the revocation set once the transaction commits. Returns how many API
/// sessions ended.
pub fn end_all_of_user(
    conn: &mut DbConnection,
    revoked: &mut Revoked,
    user: &UserId,
    keep: Option<&str>,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    console_sessions::delete_for_user(conn, user)?;
    let ids = sessions::revoke_all_for_user(conn, user, keep, now, reason)?;
    let count = ids.len();
    revoked.extend(ids);
    Ok(count)
}

/// A signed-in session's tokens, as the API hands them out.
pub struct Tokens {
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Seconds the refresh token works, as of now.
    pub refresh_expires_in: i64,
}

/// A fresh access token for `session` beside its newest refresh token.
fn tokens(
    state: &AppState,
    user: &UserRow,
    session: &SessionRow,
    refresh_token: String,
) -> Result<Tokens, ServiceError> {
    let access = state.tokens.issue(
        &state.keys,
        user.id.as_str(),
        &session.id,
        user.role,
        chain::ends_at(session),
        state.now(),
    )?;
    Ok(Tokens {
        access_token: access.token,
        expires_in: access.expires_in,
        refresh_token,
        refresh_expires_in: chain::refresh_expires_in(session),
    })
}

/// Signs in with an email and password and opens an API session.
pub async fn log_in(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
    password: &str,
) -> Result<Tokens, ServiceError> {
    let (lifetimes, now, session_client) = (state.lifetimes, state.now_naive(), client.clone());
    let (user, (session, refresh_token)) =
        signin::sign_in(state, client, email, password, move |conn, user| {
            Ok(chain::open(conn, user, &session_client, lifetimes, now)?)
        })
        .await?;
    tokens(state, &user, &session, refresh_token)
}

/// The second step of a sign-in with two-factor sign-in on: the
/// `mfa_token` and a code open an API session.
pub async fn log_in_second_step(
    state: &AppState,
    client: &ClientInfo,
    mfa_token: &str,
    proof: signin::Proof,
) -> Result<Tokens, ServiceError> {
    let (lifetimes, now, session_client) = (state.lifetimes, state.now_naive(), client.clone());
    let (user, (session, refresh_token)) =
        signin::complete_mfa(state, client, mfa_token, proof, move |conn, user| {
            Ok(chain::open(conn, user, &session_client, lifetimes, now)?)
        })
        .await?;
    tokens(state, &user, &session, refresh_token)
}

/// Spends a refresh token and issues its successor. A spent token
/// presented after the grace window revokes its session.
pub async fn refresh(
    state: &AppState,
    client: &ClientInfo,
    presented: String,
) -> Result<Tokens, ServiceError> {
    let (lifetimes, now, client) = (state.lifetimes, state.now_naive(), client.clone());
    let outcome = state
        .write_revoking(move |conn, revoked| {
            let outcome = chain::rotate(conn, &presented, &client, lifetimes, now)?;
            if let Refresh::Reused { session_id } = &outcome {
                revoked.add(session_id.clone());
            }
            Ok::<_, ServiceError>(outcome)
        })
        .await?;
    match outcome {
        Refresh::Rotated(rotated) => {
            state.metrics.refresh("ok");
            tokens(
                state,
                &rotated.user,
                &rotated.session,
                rotated.refresh_token,
            )
        }
        Refresh::Refused(why) => {
            log::info!("refresh refused: {why}");
            state.metrics.refresh("failed");
            Err(ServiceError::RefreshRefused)
        }
        Refresh::Reused { session_id } => {
            log::warn!("refresh token reuse detected: session {session_id} revoked");
            state.metrics.refresh("reuse");
            Err(ServiceError::RefreshRefused)
        }
    }
}

/// Which session a sign-out ends.
pub enum SignOut {
    /// The session of this refresh token.
    RefreshToken(String),
    /// The session an access token named.
    Session { id: String, user: UserId },
}

/// Ends one session. An unknown one is no error: the answer is the same.
pub async fn log_out(
    state: &AppState,
    client: &ClientInfo,
    which: SignOut,
) -> Result<(), ServiceError> {
    let (now, client) = (state.now_naive(), client.clone());
    state
        .write_revoking(move |conn, revoked| {
            let (session_id, user_id) = match which {
                SignOut::RefreshToken(token) => {
                    let hash = chain::hash_refresh_token(&token);
                    match refresh_tokens::find_with_session(conn, &hash)? {
                        Some((_, session)) => (session.id, session.user_id),
                        None => return Ok(()),
                    }
                }
                SignOut::Session { id, user } => (id, Some(user)),
            };
            if sessions::revoke(conn, &session_id, now, reason::LOGOUT)? {
                revoked.add(session_id.clone());
                let actor = user_id.as_ref().map_or(audit::ANONYMOUS, UserId::as_str);
                Event::new(actor, "session.logout", Outcome::Ok)
                    .target(&session_id)
                    .client(&client)
                    .write(conn, now)?;
            }
            Ok::<_, ServiceError>(())
        })
        .await
}

/// A user signs out everywhere.
pub async fn log_out_everywhere(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
) -> Result<(), ServiceError> {
    let (now, client) = (state.now_naive(), client.clone());
    state
        .write_revoking(move |conn, revoked| {
            let count = end_all_of_user(conn, revoked, &user, None, reason::LOGOUT_ALL, now)?;
            Event::new(user.as_str(), "session.logout_all", Outcome::Ok)
                .target(user.as_str())
                .client(&client)
                .detail(json!({ "sessions": count }))
                .write(conn, now)?;
            Ok::<_, ServiceError>(())
        })
        .await
}

/// An admin ends one session of `user`; `NotFound` unless it is theirs.
pub async fn revoke(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    user: UserId,
    session_id: String,
) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let (actor_id, client, now) = (actor.audit_name(), client.clone(), state.now_naive());
    state
        .write_revoking(move |conn, revoked| {
            let session = sessions::find(conn, &session_id)?
                .filter(|s| s.user_id.as_ref() == Some(&user))
                .ok_or(ServiceError::NotFound)?;
            if sessions::revoke(conn, &session.id, now, reason::ADMIN)? {
                revoked.add(session.id.clone());
                Event::new(&actor_id, "session.revoke", Outcome::Ok)
                    .target(user.as_str())
                    .client(&client)
                    .detail(json!({ "session_id": session.id }))
                    .write(conn, now)?;
            }
            Ok(())
        })
        .await
}

/// Whose sessions an operator ends.
pub enum Whose {
    /// One user's.
    User(UserId),
    /// Everyone's (after a leak of the store).
    Everyone,
}

/// Ends every session, API and console, of one user or of everyone (the
/// console's "end all sessions", the CLI's `sessions revoke-all`). Returns
/// how many API sessions ended.
pub async fn revoke_all(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    whose: Whose,
) -> Result<usize, ServiceError> {
    actor.require_admin()?;
    let (actor_id, client, now) = (actor.audit_name(), client.clone(), state.now_naive());
    state
        .write_revoking(move |conn, revoked| {
            let (count, event) = match &whose {
                Whose::User(id) => {
                    let user = users::find(conn, id)?.ok_or(ServiceError::NotFound)?;
                    let count = end_all_of_user(conn, revoked, id, None, reason::ADMIN, now)?;
                    let event = Event::new(&actor_id, "session.revoke_all", Outcome::Ok)
                        .target(id.as_str())
                        .detail(json!({ "email": user.email, "sessions": count }));
                    (count, event)
                }
                Whose::Everyone => {
                    console_sessions::delete_all(conn)?;
                    let ids = sessions::revoke_all(conn, now, reason::ADMIN)?;
                    let count = ids.len();
                    revoked.extend(ids);
                    let event = Event::new(&actor_id, "session.revoke_all", Outcome::Ok)
                        .detail(json!({ "email": null, "sessions": count }));
                    (count, event)
                }
            };
            event.client(&client).write(conn, now)?;
            Ok(count)
        })
        .await
}

//! Passwords: a user changes their own, an admin (or the operator) sets
//! one. Either way the user's other sessions end.

use super::mailroom::void_reset_links;
use super::sessions::{end_all_of_user, reason};
use super::signin;
use super::{Actor, ServiceError};
use crate::audit::{Event, Outcome};
use crate::client::ClientInfo;
use crate::db::models::UserRow;
use crate::db::users;
use crate::domain::{Password, PasswordPolicy};
use crate::state::AppState;

/// `input` as a new password for `user`: the policy, with the user's own
/// email and names counting as easy guesses.
pub fn check_new(user: &UserRow, input: &str) -> Result<Password, String> {
    PasswordPolicy::parse(input, &[&user.email, &user.first_name, &user.last_name])
}

/// The actor changes their own password, proving the current one (which
/// counts toward the sign-in throttle). Every other session of theirs
/// ends, console sessions included; `keep` is the session asking.
pub async fn change_own(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    keep: Option<String>,
    current: &str,
    new: &str,
) -> Result<(), ServiceError> {
    let user = actor.row()?;
    let new = check_new(user, new).map_err(|m| ServiceError::field("new_password", m))?;
    let verified =
        signin::check_password(state, client, &user.email, current, "password.change").await?;
    let hash = state.hasher.hash(&new).await?;
    let (now, throttle, client) = (state.now_naive(), state.throttle.clone(), client.clone());
    state
        .write_revoking(move |conn, revoked| {
            let id = &verified.user.id;
            revoked.user_changed(id);
            verified.settle(&throttle, conn)?;
            users::set_password_hash(conn, id, &hash, now)?;
            void_reset_links(conn, id.as_str(), now)?;
            end_all_of_user(
                conn,
                revoked,
                id,
                keep.as_deref(),
                reason::PASSWORD_CHANGED,
                now,
            )?;
            Event::new(id.as_str(), "user.password_change", Outcome::Ok)
                .target(id.as_str())
                .client(&client)
                .write(conn, now)?;
            Ok(())
        })
        .await
}

/// An admin (or the operator) sets `user`'s password: every session of
/// theirs ends and the account's sign-in lock is cleared.
pub async fn set(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    user: &UserRow,
    new: Password,
) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let hash = state.hasher.hash(&new).await?;
    let (now, throttle, client) = (state.now_naive(), state.throttle.clone(), client.clone());
    let (actor_id, id) = (actor.audit_name(), user.id.clone());
    state
        .write_revoking(move |conn, revoked| {
            let user = users::find(conn, &id)?.ok_or(ServiceError::NotFound)?;
            revoked.user_changed(&user.id);
            users::set_password_hash(conn, &user.id, &hash, now)?;
            void_reset_links(conn, user.id.as_str(), now)?;
            end_all_of_user(conn, revoked, &user.id, None, reason::PASSWORD_RESET, now)?;
            throttle.unlock(conn, &user.email)?;
            Event::new(&actor_id, "user.password_set", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .write(conn, now)?;
            Ok(())
        })
        .await
}

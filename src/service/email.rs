//! Email: the forgotten password, address verification, the notice of an
//! email change. Every mail goes through the outbox: written in the
//! transaction of what causes it, sent by the outbox worker
//! (`background::mail`), so a request never waits for (or fails with) the
//! SMTP server. Tokens are random, kept as SHA-256, single use, short-lived
//! and bound to the address they were sent to.

use super::mailroom::{self, Mailroom, too_soon};
use super::sessions::{end_all_of_user, reason};
use super::{Actor, ServiceError, passwords};
use crate::audit::{self, Event, Outcome};
use crate::auth::sessions::sha256_hex;
use crate::client::ClientInfo;
use crate::db::DbConnection;
use crate::db::email_tokens::{self, EmailTokenRow, purpose};
use crate::db::models::UserRow;
use crate::db::outbox::{self, MailRow};
use crate::db::users;
use crate::domain::{Email, UserId};
use crate::state::AppState;
use chrono::NaiveDateTime;
use serde_json::json;

/// Forgotten-password requests one client address may make in the sign-in
/// window (`LOGIN_WINDOW`) before they stop sending mail (the answer stays
/// 202).
const REQUESTS_PER_CLIENT: i32 = 10;

/// `POST /api/user/password/forgot`: the caller answers 202 whatever the
/// address, and in the same time: the request does the same work for any
/// address (the client's counter, the request queued in the outbox, the
/// audit entry); the outbox worker then mails a reset link if the address
/// is an enabled user's and none went to it in the last two minutes
/// ([`fulfil_forgot`]). Past [`REQUESTS_PER_CLIENT`] requests from one
/// client address in the sign-in window, nothing is queued.
pub async fn forgot_password(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
) -> Result<(), ServiceError> {
    Mailroom::of(state)?;
    let email = Email::parse(email).map_err(|why| ServiceError::field("email", why))?;
    let (now, throttle, client) = (state.now_naive(), state.throttle.clone(), client.clone());
    let queued = state
        .write(move |conn| {
            let requests = match &client.addr {
                Some(addr) => throttle.count_mail_request(conn, addr, now)?,
                None => 0,
            };
            if requests > REQUESTS_PER_CLIENT {
                if requests == REQUESTS_PER_CLIENT + 1 {
                    Event::new(audit::ANONYMOUS, "password.forgot", Outcome::Denied)
                        .client(&client)
                        .detail(json!({ "reason": "too many requests from this address" }))
                        .write(conn, now)?;
                }
                return Ok::<_, ServiceError>(false);
            }
            outbox::enqueue(conn, &mailroom::forgot_request(email.as_str(), now))?;
            Event::new(audit::ANONYMOUS, "password.forgot", Outcome::Ok)
                .client(&client)
                .detail(json!({ "email": email.as_str() }))
                .write(conn, now)?;
            Ok(true)
        })
        .await?;
    if queued {
        state.mail_queued.notify_one();
    }
    Ok(())
}

/// The outbox worker's half of a forgotten password: the request `job`
/// (claimed by the worker) is resolved, and a reset link queued if its
/// address is an enabled user's with none sent in the last two minutes.
pub async fn fulfil_forgot(state: &AppState, job: &MailRow) -> Result<(), ServiceError> {
    let mailroom = Mailroom::of(state)?;
    let (now, job) = (state.now_naive(), job.clone());
    let queued = state
        .write(move |conn| {
            outbox::finish(conn, &job.id, job.next_attempt_at, "resolved", now)?;
            let user = match users::find_by_email(conn, &job.recipient)? {
                Some(user) => users::find_for_update(conn, &user.id)?,
                None => None,
            };
            let Some(user) = user.filter(|user| !user.disabled) else {
                return Ok::<_, ServiceError>(false);
            };
            if job.expires_at <= now
                || too_soon(conn, &user, purpose::PASSWORD_RESET, now)?.is_some()
            {
                return Ok(false);
            }
            mailroom.send_token(conn, &user, purpose::PASSWORD_RESET, now)?;
            Ok(true)
        })
        .await?;
    if queued {
        state.mail_queued.notify_one();
    }
    Ok(())
}

/// A token's row, if it is of `purpose`, unexpired, and its user still
/// has the address it was sent to.
fn live_token(
    conn: &mut DbConnection,
    token: &str,
    purpose: &str,
    now: NaiveDateTime,
) -> Result<(EmailTokenRow, UserRow), ServiceError> {
    let row = email_tokens::find(conn, &sha256_hex(token), purpose)?
        .filter(|row| row.expires_at > now)
        .ok_or(ServiceError::EmailTokenInvalid)?;
    let user = UserId::parse(&row.user_id)
        .map(|id| users::find(conn, &id))
        .transpose()?
        .flatten()
        .filter(|user| user.email == row.email)
        .ok_or(ServiceError::EmailTokenInvalid)?;
    Ok((row, user))
}

/// Whether a reset token works now (the page checks before asking for a
/// new password); nothing is spent.
pub async fn check_reset_token(state: &AppState, token: &str) -> Result<(), ServiceError> {
    reset_token_user(state, token).await.map(|_| ())
}

/// The user a reset token would set the password of, if it works now.
async fn reset_token_user(state: &AppState, token: &str) -> Result<UserRow, ServiceError> {
    Mailroom::of(state)?;
    let (now, token) = (state.now_naive(), token.to_owned());
    let (_, user) = state
        .read(move |conn| live_token(conn, &token, purpose::PASSWORD_RESET, now))
        .await?;
    if user.disabled {
        return Err(ServiceError::Disabled);
    }
    Ok(user)
}

/// `POST /api/user/password/reset`: the token from the mail and a new
/// password. Every session of the user ends; the account's sign-in lock is
/// cleared; the address is verified (the link reached it).
pub async fn reset_password(
    state: &AppState,
    client: &ClientInfo,
    token: &str,
    new_password: &str,
) -> Result<(), ServiceError> {
    // Checked before hashing, and again in the transaction that spends it.
    let user = reset_token_user(state, token).await?;
    let token = token.to_owned();
    let new = passwords::check_new(&user, new_password)
        .map_err(|why| ServiceError::field("new_password", why))?;
    let hash = state.hasher.hash(&new).await?;
    let (now, throttle, client) = (state.now_naive(), state.throttle.clone(), client.clone());
    state
        .write_revoking(move |conn, revoked| {
            let (row, user) = live_token(conn, &token, purpose::PASSWORD_RESET, now)?;
            if user.disabled {
                return Err(ServiceError::Disabled);
            }
            if !email_tokens::spend(conn, &row.token_hash)? {
                return Err(ServiceError::EmailTokenInvalid);
            }
            revoked.user_changed(&user.id);
            users::set_password_hash(conn, &user.id, &hash, now)?;
            users::set_email_verified(conn, &user.id, &row.email, now)?;
            end_all_of_user(conn, revoked, &user.id, None, reason::PASSWORD_RESET, now)?;
            throttle.unlock(conn, &user.email)?;
            Event::new(user.id.as_str(), "password.reset", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .write(conn, now)?;
            Ok(())
        })
        .await
}

/// `POST /api/user/email/verify`: the token from a verification mail.
pub async fn verify_email(
    state: &AppState,
    client: &ClientInfo,
    token: &str,
) -> Result<(), ServiceError> {
    Mailroom::of(state)?;
    let (now, client, token) = (state.now_naive(), client.clone(), token.to_owned());
    state
        .write_revoking(move |conn, revoked| {
            let (row, user) = live_token(conn, &token, purpose::VERIFY_EMAIL, now)?;
            if !email_tokens::spend(conn, &row.token_hash)? {
                return Err(ServiceError::EmailTokenInvalid);
            }
            revoked.user_changed(&user.id);
            users::set_email_verified(conn, &user.id, &row.email, now)?;
            Event::new(user.id.as_str(), "email.verify", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .detail(json!({ "email": row.email }))
                .write(conn, now)?;
            Ok(())
        })
        .await
}

/// `POST /api/user/me/email/verify`: the signed-in user asks for a new
/// verification link.
pub async fn resend_verification(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
) -> Result<(), ServiceError> {
    let mailroom = Mailroom::of(state)?;
    if !mailroom.verifies() {
        return Err(ServiceError::VerificationOff);
    }
    let id = actor.row()?.id.clone();
    let (now, client) = (state.now_naive(), client.clone());
    state
        .write(move |conn| {
            // Locked to the commit: parallel requests take turns, and the
            // second sees the first one's link.
            let user = users::find_for_update(conn, &id)?.ok_or(ServiceError::NotSignedIn)?;
            if user.email_verified {
                return Err(ServiceError::AlreadyVerified);
            }
            if let Some(retry_after) = too_soon(conn, &user, purpose::VERIFY_EMAIL, now)? {
                return Err(ServiceError::MailTooSoon { retry_after });
            }
            mailroom.send_token(conn, &user, purpose::VERIFY_EMAIL, now)?;
            Event::new(user.id.as_str(), "email.verify_request", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .write(conn, now)?;
            Ok(())
        })
        .await?;
    state.mail_queued.notify_one();
    Ok(())
}

/// The console's "send a password reset": an admin sends `user` a reset
/// link (voiding any earlier one).
pub async fn send_password_reset(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    id: UserId,
) -> Result<UserRow, ServiceError> {
    actor.require_admin()?;
    let mailroom = Mailroom::of(state)?;
    let (now, client, actor_id) = (state.now_naive(), client.clone(), actor.audit_name());
    let user = state
        .write(move |conn| {
            let user = users::find_for_update(conn, &id)?.ok_or(ServiceError::NotFound)?;
            if user.disabled {
                return Err(ServiceError::Disabled);
            }
            mailroom.send_token(conn, &user, purpose::PASSWORD_RESET, now)?;
            Event::new(&actor_id, "password.reset_link", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .write(conn, now)?;
            Ok(user)
        })
        .await?;
    state.mail_queued.notify_one();
    Ok(user)
}

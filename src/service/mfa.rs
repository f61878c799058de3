//! Two-factor sign-in (TOTP) for a user's own account: enrol, confirm with
//! a first code (which turns it on and hands out recovery codes), replace
//! the recovery codes, turn it off; and an admin's reset. The sign-in's
//! second step is in `signin`.

use super::sessions::{end_all_of_user, reason};
use super::signin;
use super::{Actor, ServiceError};
use crate::audit::{Event, Outcome};
use crate::auth::throttle::Account;
use crate::auth::totp;
use crate::client::ClientInfo;
use crate::db::mfa::{self, TotpRow};
use crate::db::models::UserRow;
use crate::db::users;
use crate::domain::{RecoveryCode, TotpCode, UserId};
use crate::state::AppState;
use serde_json::json;

/// What an authenticator app needs: the secret typed in, or the URL read
/// from a QR code.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub secret: String,
    pub otpauth_url: String,
}

/// Starts (or starts over) an enrolment of the actor's own account. Nothing
/// changes for sign-in until [`confirm`].
pub async fn enrol(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
) -> Result<Enrolment, ServiceError> {
    let user = actor.row()?.clone();
    let secret = totp::new_secret();
    let enrolment = Enrolment {
        secret: totp::base32(&secret),
        otpauth_url: totp::otpauth_url(&secret, &state.settings.jwt_issuer, &user.email),
    };
    let (client, now) = (client.clone(), state.now_naive());
    state
        .write(move |conn| {
            if mfa::totp(conn, &user.id)?.is_some_and(|row| row.confirmed_at.is_some()) {
                return Err(ServiceError::MfaAlreadyOn);
            }
            mfa::start_enrolment(
                conn,
                &TotpRow {
                    user_id: user.id.as_str().to_owned(),
                    secret,
                    created_at: now,
                    confirmed_at: None,
                    last_step: None,
                },
            )?;
            Event::new(user.id.as_str(), "mfa.enrol", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .write(conn, now)?;
            Ok(())
        })
        .await?;
    Ok(enrolment)
}

/// The actor's enrolment waiting for its first code, if any: what the
/// authenticator app needs, again.
pub async fn pending(state: &AppState, actor: &Actor) -> Result<Option<Enrolment>, ServiceError> {
    let user = actor.row()?.clone();
    let id = user.id.clone();
    let row = state
        .read(move |conn| Ok::<_, ServiceError>(mfa::totp(conn, &id)?))
        .await?;
    Ok(row
        .filter(|row| row.confirmed_at.is_none())
        .map(|row| Enrolment {
            secret: totp::base32(&row.secret),
            otpauth_url: totp::otpauth_url(&row.secret, &state.settings.jwt_issuer, &user.email),
        }))
}

/// New recovery codes, and what the store keeps of them.
fn recovery_codes() -> (Vec<String>, Vec<String>) {
    let codes = totp::new_recovery_codes();
    let hashes = codes
        .iter()
        .filter_map(|code| RecoveryCode::parse(code).ok())
        .map(|code| totp::hash_recovery_code(&code))
        .collect();
    (codes, hashes)
}

/// Turns two-factor sign-in on with the enrolment's first right code;
/// the answer is the recovery codes, shown this once.
pub async fn confirm(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    code: TotpCode,
) -> Result<Vec<String>, ServiceError> {
    let user = actor.row()?.clone();
    let (codes, hashes) = recovery_codes();
    let (client, now, unix) = (client.clone(), state.now_naive(), unix_now(state));
    state
        .write_revoking(move |conn, revoked| {
            let row = match mfa::totp(conn, &user.id)? {
                None => return Err(ServiceError::NoEnrolment),
                Some(row) if row.confirmed_at.is_some() => return Err(ServiceError::MfaAlreadyOn),
                Some(row) => row,
            };
            let step = totp::matching_step(&row.secret, &code, unix).ok_or_else(|| {
                ServiceError::field("code", "is not the code the authenticator app shows now")
            })?;
            if !mfa::confirm(conn, &user.id, step, now)? {
                return Err(ServiceError::NoEnrolment);
            }
            mfa::replace_recovery_codes(conn, &user.id, &hashes)?;
            Event::new(user.id.as_str(), "mfa.enable", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .write(conn, now)?;
            revoked.user_changed(&user.id);
            Ok(())
        })
        .await?;
    log::info!(
        "two-factor sign-in turned on for user {}",
        actor.audit_name()
    );
    Ok(codes)
}

fn unix_now(state: &AppState) -> u64 {
    state.now().timestamp().max(0) as u64
}

/// Checks a code of the actor's authenticator for an action on their own
/// account: a wrong one counts toward the account's throttle like a wrong
/// password, and a right one's time step is spent.
async fn check_code(
    state: &AppState,
    client: &ClientInfo,
    user: &UserRow,
    code: &TotpCode,
    action: &'static str,
) -> Result<(), ServiceError> {
    let (id, email, addr, throttle) = (
        user.id.clone(),
        user.email.clone(),
        client.addr.clone(),
        state.throttle.clone(),
    );
    let now = state.now_naive();
    let (row, check) = state
        .read(move |conn| {
            let row = mfa::totp(conn, &id)?;
            let check = throttle.check(conn, Account::Email(&email), addr.as_deref(), now)?;
            Ok::<_, ServiceError>((row, check))
        })
        .await?;
    let Some(row) = row.filter(|row| row.confirmed_at.is_some()) else {
        return Err(ServiceError::MfaNotOn);
    };
    if let Some(retry_after) = check.locked {
        return Err(ServiceError::Throttled { retry_after });
    }
    let step = totp::matching_step(&row.secret, code, unix_now(state));
    if let Some(step) = step {
        let id = user.id.clone();
        let accepted = state
            .write(move |conn| Ok::<_, ServiceError>(mfa::accept_step(conn, &id, step)?))
            .await?;
        if accepted {
            return Ok(());
        }
    }
    let (target, detail) = (Some(user.id.to_string()), json!({ "reason": "wrong_code" }));
    match signin::count_failure(state, client, &user.email, action, target, detail).await? {
        Some(retry_after) => Err(ServiceError::Throttled { retry_after }),
        None => Err(ServiceError::BadMfaCode),
    }
}

/// How many of the actor's recovery codes are left unused.
pub async fn recovery_codes_left(state: &AppState, actor: &Actor) -> Result<i64, ServiceError> {
    let id = actor.row()?.id.clone();
    state
        .read(move |conn| Ok::<_, ServiceError>(mfa::recovery_codes_left(conn, &id)?))
        .await
}

/// Replaces the actor's recovery codes (all of them; the old ones stop
/// working), proven by a current code.
pub async fn replace_recovery_codes(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    code: TotpCode,
) -> Result<Vec<String>, ServiceError> {
    let user = actor.row()?.clone();
    check_code(state, client, &user, &code, "mfa.recovery_codes").await?;
    let (codes, hashes) = recovery_codes();
    let (client, now) = (client.clone(), state.now_naive());
    state
        .write(move |conn| {
            mfa::replace_recovery_codes(conn, &user.id, &hashes)?;
            Event::new(user.id.as_str(), "mfa.recovery_codes", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .write(conn, now)?;
            Ok::<_, ServiceError>(())
        })
        .await?;
    Ok(codes)
}

/// Turns the actor's two-factor sign-in off, proven by their password and a
/// current code.
pub async fn turn_off(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    password: &str,
    code: TotpCode,
) -> Result<(), ServiceError> {
    let user = actor.row()?.clone();
    if !user.mfa {
        return Err(ServiceError::MfaNotOn);
    }
    signin::check_password(state, client, &user.email, password, "mfa.disable").await?;
    check_code(state, client, &user, &code, "mfa.disable").await?;
    let (client, now) = (client.clone(), state.now_naive());
    state
        .write_revoking(move |conn, revoked| {
            mfa::remove(conn, &user.id, now)?;
            Event::new(user.id.as_str(), "mfa.disable", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .write(conn, now)?;
            revoked.user_changed(&user.id);
            Ok::<_, ServiceError>(())
        })
        .await?;
    log::info!("two-factor sign-in turned off by its user");
    Ok(())
}

/// An admin turns a user's two-factor sign-in off (a lost phone and lost
/// recovery codes): every session of the user ends, so whoever holds one
/// signs in again, with the password only until they enrol again.
pub async fn reset(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    target: &str,
) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let id = UserId::parse(target).ok_or(ServiceError::NotFound)?;
    let (actor_id, client, now) = (actor.audit_name(), client.clone(), state.now_naive());
    state
        .write_revoking(move |conn, revoked| {
            let user = users::find(conn, &id)?.ok_or(ServiceError::NotFound)?;
            if !user.mfa {
                return Err(ServiceError::MfaNotOn);
            }
            mfa::remove(conn, &id, now)?;
            let ended = end_all_of_user(conn, revoked, &id, None, reason::MFA_RESET, now)?;
            Event::new(&actor_id, "mfa.reset", Outcome::Ok)
                .target(id.as_str())
                .client(&client)
                .detail(json!({ "sessions_ended": ended }))
                .write(conn, now)?;
            revoked.user_changed(&id);
            Ok(())
        })
        .await?;
    log::info!("two-factor sign-in reset by an admin");
    Ok(())
}

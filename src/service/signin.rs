//! Checking an email and password: the throttle first, then one Argon2id
//! verification (against a dummy hash for an unknown email, so the answer
//! and its timing are the same), then the audit entry. Used by the API's
//! sign-in, its password change and the console's sign-in.

use super::ServiceError;
use crate::audit::{self, Event, Outcome};
use crate::auth::password;
use crate::auth::sessions::{new_refresh_token, sha256_hex};
use crate::auth::throttle::{Account, Throttle};
use crate::auth::totp;
use crate::client::ClientInfo;
use crate::config::EmailVerification;
use crate::db::DbConnection;
use crate::db::mfa::{self, ChallengeRow};
use crate::db::models::UserRow;
use crate::db::{changes, users};
use crate::domain::{Email, RecoveryCode, TotpCode, UserId};
use crate::state::AppState;
use serde_json::json;

/// A password that matched; [`Verified::settle`] clears the account's
/// failures in the caller's success transaction.
pub struct Verified {
    pub user: UserRow,
    email: String,
    /// The account had failures counted when the sign-in began. (One
    /// counted while its password was being checked is left to expire.)
    had_failures: bool,
}

impl Verified {
    pub fn settle(&self, throttle: &Throttle, conn: &mut DbConnection) -> diesel::QueryResult<()> {
        if self.had_failures {
            throttle.succeeded(conn, Account::Email(&self.email))?;
        }
        Ok(())
    }
}

/// Who the audit log names as the actor of a refused attempt on `user`'s
/// account: nobody known for a sign-in (whoever typed the password is not
/// signed in; the account is the target), the signed-in user for an
/// action that re-checks their password or code.
fn who_tried<'a>(action: &str, user: Option<&'a str>) -> &'a str {
    match (action, user) {
        ("login", _) | (_, None) => audit::ANONYMOUS,
        (_, Some(user)) => user,
    }
}

/// Writes the audit entry of a refusal for throttling.
fn audit_throttled(
    conn: &mut DbConnection,
    client: &ClientInfo,
    email: &str,
    action: &str,
    retry_after: u64,
    now: chrono::NaiveDateTime,
) -> diesel::QueryResult<()> {
    Event::new(audit::ANONYMOUS, "login.throttled", Outcome::Denied)
        .client(client)
        .detail(json!({ "email": email, "during": action, "retry_after": retry_after }))
        .write(conn, now)
}

/// Checks `password` for the account `email` (as typed; it is normalised
/// here). `action` names the audit entries (`login`, `password.change`).
pub async fn check_password(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
    password: &str,
    action: &'static str,
) -> Result<Verified, ServiceError> {
    let email = Email::normalise(email);
    let now = state.now_naive();
    let (lookup, addr, throttle) = (email.clone(), client.addr.clone(), state.throttle.clone());
    // Reads only: a sign-in takes no write lock before its password is
    // checked, unless it is refused here.
    let (check, user) = state
        .read(move |conn| {
            let check = throttle.check(conn, Account::Email(&lookup), addr.as_deref(), now)?;
            let user = match check.locked {
                Some(_) => None,
                None => users::find_by_email(conn, &lookup)?,
            };
            Ok::<_, ServiceError>((check, user))
        })
        .await?;
    if let Some(retry_after) = check.locked {
        let (email, client) = (email.clone(), client.clone());
        state
            .write(move |conn| {
                audit_throttled(conn, &client, &email, action, retry_after, now)?;
                Ok::<_, ServiceError>(())
            })
            .await?;
        log::info!("sign-in throttled (retry after {retry_after} s)");
        state.metrics.login("throttled");
        return Err(ServiceError::Throttled { retry_after });
    }
    // An unknown email is verified against the dummy hash: same time.
    let matched = state
        .hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    match user {
        Some(user) if matched && user.disabled => {
            let (client, id) = (client.clone(), user.id.clone());
            state
                .write(move |conn| {
                    Event::new(
                        who_tried(action, Some(id.as_str())),
                        action,
                        Outcome::Denied,
                    )
                    .target(id.as_str())
                    .client(&client)
                    .detail(json!({ "reason": "disabled" }))
                    .write(conn, now)?;
                    Ok::<_, ServiceError>(())
                })
                .await?;
            log::info!("sign-in refused: user {} is disabled", user.id);
            Err(ServiceError::Disabled)
        }
        Some(user) if matched => Ok(Verified {
            user,
            email,
            had_failures: check.account_has_failures,
        }),
        user => {
            let target = user.map(|u| u.id.into_string());
            let detail = json!({ "email": email });
            if let Some(retry_after) =
                count_failure(state, client, &email, action, target, detail).await?
            {
                return Err(ServiceError::Throttled { retry_after });
            }
            log::info!("sign-in failed: wrong email or password");
            Err(ServiceError::BadCredentials)
        }
    }
}

/// A wrong password or code for the account `email`: one failure counted
/// for the account and for the client's address, and the audit entry
/// (`action` failed, by the account's user when there is one, with
/// `detail`). Past the limit the failure is not counted and the answer is
/// `Some(retry_after)`: throttled, and audited as such.
pub async fn count_failure(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
    action: &'static str,
    target: Option<String>,
    detail: serde_json::Value,
) -> Result<Option<u64>, ServiceError> {
    let now = state.now_naive();
    let (client, throttle, email) = (client.clone(), state.throttle.clone(), email.to_owned());
    let refused = state
        .write(move |conn| {
            let refused = throttle.record_failure(
                conn,
                Account::Email(&email),
                client.addr.as_deref(),
                now,
            )?;
            if let Some(retry_after) = refused {
                audit_throttled(conn, &client, &email, action, retry_after, now)?;
                return Ok::<_, ServiceError>(refused);
            }
            let mut event = Event::new(
                who_tried(action, target.as_deref()),
                action,
                Outcome::Failed,
            )
            .client(&client)
            .detail(detail);
            if let Some(target) = target.as_deref() {
                event = event.target(target);
            }
            event.write(conn, now)?;
            Ok(None)
        })
        .await?;
    match refused {
        Some(retry_after) => {
            log::info!("sign-in throttled (retry after {retry_after} s)");
            state.metrics.login("throttled");
        }
        None => state.metrics.login("failed"),
    }
    Ok(refused)
}

/// A full sign-in: the password check, then one transaction that settles
/// the throttle, upgrades an outdated hash, sets `last_login_at`, writes the
/// audit entry and runs `open` (which opens the API or console session).
/// A user with two-factor sign-in on gets [`ServiceError::MfaRequired`]
/// instead, with the `mfa_token` that [`complete_mfa`] takes.
pub async fn sign_in<T, F>(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
    password: &str,
    open: F,
) -> Result<(UserRow, T), ServiceError>
where
    F: FnOnce(&mut DbConnection, &UserRow) -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    let verified = check_password(state, client, email, password, "login").await?;
    if state.settings.email_verification == EmailVerification::Required
        && !verified.user.email_verified
    {
        return Err(super::mailroom::refuse_unverified(state, client, &verified.user).await?);
    }
    let upgraded = if password::needs_rehash(&verified.user.password_hash) {
        Some(state.hasher.rehash(password).await?)
    } else {
        None
    };
    if verified.user.mfa {
        let mfa_token = challenge(state, client, &verified, upgraded).await?;
        return Err(ServiceError::MfaRequired { mfa_token });
    }
    finish(
        state,
        client,
        verified,
        upgraded,
        "password",
        |_, _| Ok(()),
        open,
    )
    .await
}

/// The second step's proof.
#[derive(Debug, Clone)]
pub enum Proof {
    Code(TotpCode),
    RecoveryCode(RecoveryCode),
}

/// A sign-in whose password was right, waiting for its code: a random
/// token (kept hashed, single use, five minutes) that opens nothing but
/// [`complete_mfa`]. An outdated password hash is upgraded now, while
/// the password is at hand.
async fn challenge(
    state: &AppState,
    client: &ClientInfo,
    verified: &Verified,
    upgraded: Option<String>,
) -> Result<String, ServiceError> {
    let token = new_refresh_token();
    let now = state.now_naive();
    let row = ChallengeRow {
        token_hash: sha256_hex(&token),
        user_id: verified.user.id.as_str().to_owned(),
        created_at: now,
        expires_at: now + MFA_TOKEN_LIFETIME,
        used_at: None,
    };
    let (client, user) = (client.clone(), verified.user.clone());
    state
        .write(move |conn| {
            mfa::insert_challenge(conn, &row)?;
            if let Some(hash) = &upgraded {
                users::upgrade_password_hash(conn, &user.id, &user.password_hash, hash)?;
            }
            Event::new(user.id.as_str(), "login.mfa_required", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .write(conn, now)?;
            Ok::<_, ServiceError>(())
        })
        .await?;
    log::info!("sign-in waits for a second factor");
    Ok(token)
}

/// How long an `mfa_token` stays usable.
pub const MFA_TOKEN_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The second step: the `mfa_token` of [`sign_in`] and a code (or a
/// recovery code). A wrong code counts toward the account's throttle like
/// a wrong password; a code's time step and a recovery code are accepted
/// once; the token is spent by the sign-in it completes.
pub async fn complete_mfa<T, F>(
    state: &AppState,
    client: &ClientInfo,
    mfa_token: &str,
    proof: Proof,
    open: F,
) -> Result<(UserRow, T), ServiceError>
where
    F: FnOnce(&mut DbConnection, &UserRow) -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    let token_hash = sha256_hex(mfa_token);
    let now = state.now_naive();
    let (lookup, addr, throttle) = (
        token_hash.clone(),
        client.addr.clone(),
        state.throttle.clone(),
    );
    let recovery_hash = match &proof {
        Proof::RecoveryCode(code) => Some(totp::hash_recovery_code(code)),
        Proof::Code(_) => None,
    };
    let recovery = recovery_hash.clone();
    let found = state
        .read(move |conn| {
            let Some(challenge) = mfa::challenge(conn, &lookup)? else {
                return Ok::<_, ServiceError>(None);
            };
            if challenge.used_at.is_some() || challenge.expires_at <= now {
                return Ok(None);
            }
            let id = UserId::from_stored(challenge.user_id);
            let (Some(user), Some(secret)) = (users::find(conn, &id)?, mfa::totp(conn, &id)?)
            else {
                return Ok(None);
            };
            let check = throttle.check(conn, Account::Email(&user.email), addr.as_deref(), now)?;
            let recovery_unused = match &recovery {
                Some(hash) => mfa::recovery_code_unused(conn, &id, hash)?,
                None => false,
            };
            Ok(Some((user, secret, check, recovery_unused)))
        })
        .await?;
    let Some((user, secret, check, recovery_unused)) = found else {
        return Err(ServiceError::MfaTokenInvalid);
    };
    if !user.mfa || secret.confirmed_at.is_none() {
        return Err(ServiceError::MfaTokenInvalid);
    }
    let email = user.email.clone();
    if let Some(retry_after) = check.locked {
        let client = client.clone();
        state
            .write(move |conn| {
                audit_throttled(conn, &client, &email, "login", retry_after, now)?;
                Ok::<_, ServiceError>(())
            })
            .await?;
        state.metrics.login("throttled");
        return Err(ServiceError::Throttled { retry_after });
    }
    let unix = state.now().timestamp().max(0) as u64;
    // A code of a step accepted before (a replay) is a wrong code.
    let step = match &proof {
        Proof::Code(code) => totp::matching_step(&secret.secret, code, unix)
            .filter(|step| secret.last_step.is_none_or(|last| *step > last)),
        Proof::RecoveryCode(_) => None,
    };
    let right = step.is_some() || recovery_unused;
    if !right {
        let (target, detail) = (
            Some(user.id.to_string()),
            json!({ "reason": "wrong_second_factor" }),
        );
        if let Some(retry_after) =
            count_failure(state, client, &email, "login", target, detail).await?
        {
            return Err(ServiceError::Throttled { retry_after });
        }
        log::info!("sign-in failed: wrong second factor");
        return Err(ServiceError::BadMfaCode);
    }
    let verified = Verified {
        email: user.email.clone(),
        user,
        had_failures: check.account_has_failures,
    };
    let method = if step.is_some() {
        "totp"
    } else {
        "recovery_code"
    };
    finish(
        state,
        client,
        verified,
        None,
        method,
        move |conn, user| {
            // Each once: the code's step (or the recovery code), then the
            // token. Either refused rolls the whole sign-in back.
            let accepted = match (step, &recovery_hash) {
                (Some(step), _) => mfa::accept_step(conn, &user.id, step)?,
                (None, Some(hash)) => mfa::use_recovery_code(conn, &user.id, hash, now)?,
                (None, None) => false,
            };
            if !accepted {
                return Err(ServiceError::BadMfaCode);
            }
            if !mfa::spend_challenge(conn, &token_hash, now)? {
                return Err(ServiceError::MfaTokenInvalid);
            }
            Ok(())
        },
        open,
    )
    .await
}

/// The success transaction of a sign-in, once every factor is right:
/// `prove` runs first in it (spending what the second factor used), then
/// the throttle is settled, an upgraded hash stored, `last_login_at` set,
/// the audit entry written and `open` run.
async fn finish<T, F, P>(
    state: &AppState,
    client: &ClientInfo,
    verified: Verified,
    upgraded: Option<String>,
    method: &'static str,
    prove: P,
    open: F,
) -> Result<(UserRow, T), ServiceError>
where
    F: FnOnce(&mut DbConnection, &UserRow) -> Result<T, ServiceError> + Send + 'static,
    P: FnOnce(&mut DbConnection, &UserRow) -> Result<(), ServiceError> + Send + 'static,
    T: Send + 'static,
{
    let now = state.now_naive();
    let client = client.clone();
    let throttle = state.throttle.clone();
    let result = state
        .write(move |conn| {
            let Some(user) = users::record_sign_in(conn, &verified.user.id, now)? else {
                // Disabled (or deleted) since the password was checked.
                let refused = match users::find(conn, &verified.user.id)? {
                    Some(_) => ServiceError::Disabled,
                    None => ServiceError::BadCredentials,
                };
                return Ok::<_, ServiceError>(Err(refused));
            };
            prove(conn, &user)?;
            verified.settle(&throttle, conn)?;
            if let Some(hash) = &upgraded {
                users::upgrade_password_hash(conn, &user.id, &verified.user.password_hash, hash)?;
            }
            let mut event = Event::new(user.id.as_str(), "login", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client);
            if method != "password" {
                event = event.detail(json!({ "second_factor": method }));
            }
            event.write(conn, now)?;
            let opened = open(conn, &user)?;
            // Last, as in every transaction that writes the change feed:
            // its lock is then held only to the commit. Only the row's
            // `last_login_at` changed (and maybe its hash, which a sign-in
            // always reads from the store): other instances may learn it at
            // their next poll.
            changes::record_for_next_poll(conn, changes::Kind::User, &[user.id.as_str()], now)?;
            Ok(Ok((user, opened)))
        })
        .await?;
    // The sign-in changed the row (last_login_at, maybe the hash).
    if let Ok((user, _)) = &result {
        state.users.forget(user.id.as_str());
    }
    if result.is_ok() {
        log::info!("sign-in ok");
        state.metrics.login("ok");
    }
    result
}

//! Checking an email and password: the throttle first, then one Argon2id
//! verification (against a dummy hash for an unknown email, so the answer
//! and its timing are the same), then the audit entry. Used by the API's
//! sign-in, its password change and the console's sign-in.

use super::ServiceError;
use crate::audit::{self, Event, Outcome};
use crate::auth::password;
use crate::auth::throttle::{Account, Throttle};
use crate::client::ClientInfo;
use crate::db::DbConnection;
use crate::db::models::UserRow;
use crate::db::{changes, users};
use crate::domain::Email;
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
                    Event::new(id.as_str(), action, Outcome::Denied)
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
            let (client, throttle) = (client.clone(), state.throttle.clone());
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
                    let actor = target.as_deref().unwrap_or(audit::ANONYMOUS);
                    let mut event = Event::new(actor, action, Outcome::Failed)
                        .client(&client)
                        .detail(json!({ "email": email }));
                    if let Some(target) = target.as_deref() {
                        event = event.target(target);
                    }
                    event.write(conn, now)?;
                    Ok(None)
                })
                .await?;
            if let Some(retry_after) = refused {
                log::info!("sign-in throttled (retry after {retry_after} s)");
                state.metrics.login("throttled");
                return Err(ServiceError::Throttled { retry_after });
            }
            log::info!("sign-in failed: wrong email or password");
            state.metrics.login("failed");
            Err(ServiceError::BadCredentials)
        }
    }
}

/// A full sign-in: the password check, then one transaction that settles
/// the throttle, upgrades an outdated hash, sets `last_login_at`, writes the
/// audit entry and runs `open` (which opens the API or console session).
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
    let upgraded = if password::needs_rehash(&verified.user.password_hash) {
        Some(state.hasher.rehash(password).await?)
    } else {
        None
    };
    let now = state.now_naive();
    let client = client.clone();
    let throttle = state.throttle.clone();
    let result = state
        .write(move |conn| {
            let user = users::find_for_update(conn, &verified.user.id)?;
            let user = match user {
                Some(user) if !user.disabled => user,
                Some(_) => return Ok::<_, ServiceError>(Err(ServiceError::Disabled)),
                None => return Ok(Err(ServiceError::BadCredentials)),
            };
            verified.settle(&throttle, conn)?;
            if let Some(hash) = &upgraded {
                users::upgrade_password_hash(conn, &user.id, &verified.user.password_hash, hash)?;
            }
            users::set_last_login(conn, &user.id, now)?;
            Event::new(user.id.as_str(), "login", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .write(conn, now)?;
            let opened = open(conn, &user)?;
            // Last, as in every transaction that writes the change feed:
            // its lock is then held only to the commit. Only the row's
            // `last_login_at` changed (and maybe its hash, which a sign-in
            // always reads from the store): other instances may learn it at
            // their next poll.
            changes::record_for_next_poll(conn, changes::Kind::User, &[user.id.as_str()], now)?;
            let user = UserRow {
                last_login_at: Some(now),
                ..user
            };
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

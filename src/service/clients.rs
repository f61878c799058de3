//! Service clients and token introspection (RFC 7662): an admin creates a
//! named client and hands its secret to another service, which then asks
//! latchkey whether an access token is active and whose it is.
//!
//! A client's secret is checked like a password is: the throttle first
//! (per client and per address, the sign-in limits), a constant-time
//! comparison, every failure counted and audited.

use super::{Actor, ServiceError};
use crate::audit::{self, Event, Outcome};
use crate::auth::claims::AccessClaims;
use crate::auth::clients::{new_client_id, new_secret, secret_matches};
use crate::auth::throttle::Account;
use crate::client::ClientInfo;
use crate::db::clients as store;
use crate::db::models::{ServiceClientRow, UserRow};
use crate::domain::{ClientName, UserId};
use crate::state::AppState;
use chrono::TimeDelta;
use serde_json::json;

/// How stale a client's "last used" may get before a use rewrites it.
const LAST_USED_GRANULARITY: TimeDelta = TimeDelta::minutes(1);

/// Creates a client; its secret is in the answer and nowhere else.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    name: ClientName,
) -> Result<(ServiceClientRow, String), ServiceError> {
    actor.require_admin()?;
    let (secret, secret_hash) = new_secret();
    let row = ServiceClientRow {
        id: new_client_id(),
        name: name.as_str().to_owned(),
        secret_hash,
        created_at: state.now_naive(),
        created_by: actor.audit_name(),
        last_used_at: None,
        revoked_at: None,
    };
    let (inserted, client) = (row.clone(), client.clone());
    state
        .write(move |conn| {
            store::insert(conn, &inserted)?;
            Event::new(&inserted.created_by, "client.create", Outcome::Ok)
                .target(&inserted.id)
                .client(&client)
                .detail(json!({ "name": inserted.name }))
                .write(conn, inserted.created_at)?;
            Ok::<_, ServiceError>(())
        })
        .await?;
    log::info!("service client {} created", row.id);
    Ok((row, secret))
}

/// Every client, revoked ones too, newest first.
pub async fn list(state: &AppState, actor: &Actor) -> Result<Vec<ServiceClientRow>, ServiceError> {
    actor.require_admin()?;
    state
        .read(|conn| Ok::<_, ServiceError>(store::all(conn)?))
        .await
}

/// Revokes a client: its secret stops working at once, on every instance
/// (each request reads the client from the store).
pub async fn revoke(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    id: &str,
) -> Result<ServiceClientRow, ServiceError> {
    actor.require_admin()?;
    let (actor_id, client, id, now) = (
        actor.audit_name(),
        client.clone(),
        id.to_owned(),
        state.now_naive(),
    );
    let revoked = state
        .write(move |conn| {
            let Some(row) = store::revoke(conn, &id, now)? else {
                return Err(ServiceError::NoSuchClient);
            };
            Event::new(&actor_id, "client.revoke", Outcome::Ok)
                .target(&row.id)
                .client(&client)
                .detail(json!({ "name": row.name }))
                .write(conn, now)?;
            Ok(row)
        })
        .await?;
    log::info!("service client {} revoked", revoked.id);
    Ok(revoked)
}

/// Checks a client's credentials (HTTP Basic: the id and the secret).
pub async fn authenticate(
    state: &AppState,
    client: &ClientInfo,
    id: &str,
    secret: &str,
) -> Result<ServiceClientRow, ServiceError> {
    let now = state.now_naive();
    let (lookup, addr, throttle) = (id.to_owned(), client.addr.clone(), state.throttle.clone());
    let (check, row) = state
        .read(move |conn| {
            let check =
                throttle.check(conn, Account::ServiceClient(&lookup), addr.as_deref(), now)?;
            Ok::<_, ServiceError>((check, store::find(conn, &lookup)?))
        })
        .await?;
    let (id, client, throttle) = (id.to_owned(), client.clone(), state.throttle.clone());
    if let Some(retry_after) = check.locked {
        state
            .write(move |conn| {
                audit_throttled(conn, &client, &id, retry_after, now)?;
                Ok::<_, ServiceError>(())
            })
            .await?;
        return Err(ServiceError::Throttled { retry_after });
    }
    // An unknown id is compared with a hash all the same: the answer
    // takes as long as for a known one.
    let stored = row.as_ref().map_or("", |row| row.secret_hash.as_str());
    let matched = secret_matches(secret, stored);
    match row {
        Some(row) if matched && row.revoked_at.is_none() => {
            let had_failures = check.account_has_failures;
            let stale = row
                .last_used_at
                .is_none_or(|at| at < now - LAST_USED_GRANULARITY);
            if had_failures || stale {
                state
                    .write(move |conn| {
                        if had_failures {
                            throttle.succeeded(conn, Account::ServiceClient(&id))?;
                        }
                        store::touch(conn, &id, now, now - LAST_USED_GRANULARITY)?;
                        Ok::<_, ServiceError>(())
                    })
                    .await?;
            }
            Ok(row)
        }
        row => {
            let revoked = row.as_ref().is_some_and(|row| row.revoked_at.is_some());
            let known = row.is_some();
            let refused = state
                .write(move |conn| {
                    let refused = throttle.record_failure(
                        conn,
                        Account::ServiceClient(&id),
                        client.addr.as_deref(),
                        now,
                    )?;
                    if let Some(retry_after) = refused {
                        audit_throttled(conn, &client, &id, retry_after, now)?;
                        return Ok::<_, ServiceError>(refused);
                    }
                    let mut event = Event::new(audit::ANONYMOUS, "client.auth", Outcome::Failed)
                        .client(&client)
                        .detail(json!({
                            "client_id": id,
                            "reason": if revoked { "revoked" } else { "bad_credentials" },
                        }));
                    if known {
                        event = event.target(&id);
                    }
                    event.write(conn, now)?;
                    Ok(None)
                })
                .await?;
            match refused {
                Some(retry_after) => Err(ServiceError::Throttled { retry_after }),
                None => {
                    log::info!("a service client failed to authenticate");
                    Err(ServiceError::BadClientCredentials)
                }
            }
        }
    }
}

fn audit_throttled(
    conn: &mut crate::db::DbConnection,
    client: &ClientInfo,
    id: &str,
    retry_after: u64,
    now: chrono::NaiveDateTime,
) -> diesel::QueryResult<()> {
    Event::new(audit::ANONYMOUS, "client.throttled", Outcome::Denied)
        .client(client)
        .detail(json!({ "client_id": id, "retry_after": retry_after }))
        .write(conn, now)
}

/// What introspection found: an access token the guarded API would accept
/// now, and its user as the store knows them.
pub struct Introspected {
    pub claims: AccessClaims,
    pub user: UserRow,
}

/// Looks at `token` as the guarded API would: `None` for anything it would
/// refuse (garbled, expired, revoked, a refresh token, a disabled or
/// deleted user).
pub async fn introspect(
    state: &AppState,
    _client: &ServiceClientRow,
    token: &str,
) -> Result<Option<Introspected>, ServiceError> {
    let Ok(claims) = state.verify_access_token(token) else {
        return Ok(None);
    };
    let Some(id) = UserId::parse(&claims.sub) else {
        return Ok(None);
    };
    match Actor::load(state, &id).await {
        Ok(actor) => {
            let user = actor.row()?.clone();
            Ok(Some(Introspected { claims, user }))
        }
        Err(ServiceError::NotSignedIn) => Ok(None),
        Err(err) => Err(err),
    }
}

//! The work a server does besides answering: it watches the store for
//! what other processes changed, and cleans up what expired.

use crate::auth::keys;
use crate::db::{console_sessions, keys as key_store, sessions, users};
use crate::service::ServiceError;
use crate::state::AppState;
use actix_web::web;
use chrono::TimeDelta;
use std::time::Duration;

/// How often expired state is cleaned up (revocation set, keys, sessions).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);

/// Starts both loops on the current runtime.
pub fn spawn(state: &web::Data<AppState>) {
    tokio::spawn(maintain(state.clone()));
    tokio::spawn(watch_store(state.clone()));
}

/// How often the store is read for changes made by other processes.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Another process (the command line; later, another instance) may revoke
/// sessions, change users or the key ring in the store: read them every second,
/// so such a change holds here within a second. Revocations are read with
/// a margin, because a transaction may commit after a later one.
async fn watch_store(state: web::Data<AppState>) {
    let mut ticker = tokio::time::interval(WATCH_EVERY);
    let mut since = state.now() - TimeDelta::seconds(5);
    loop {
        ticker.tick().await;
        let checked_at = state.now();
        let from = since.naive_utc() - TimeDelta::seconds(5);
        let result = state
            .read(move |conn| {
                Ok::<_, ServiceError>((
                    sessions::revoked_since(conn, from)?,
                    key_store::all(conn)?,
                    users::changed_since(conn, from)?,
                ))
            })
            .await;
        let (revoked, rows, changed) = match result {
            Ok(found) => found,
            Err(e) => {
                log::warn!("watching the store failed ({e}); will retry");
                continue;
            }
        };
        for id in changed
            .iter()
            .filter(|id| state.users.get(id.as_str()).is_some())
        {
            state.users.forget(id.as_str());
        }
        for (id, at) in revoked {
            if !state.revocations.is_revoked(&id) {
                state.revocations.insert_all([id], at.and_utc());
            }
        }
        if !state.keys.is_current(&rows) {
            let _ring = state.key_updates.lock().await;
            let rows = match state
                .read(|conn| Ok::<_, ServiceError>(key_store::all(conn)?))
                .await
            {
                Ok(rows) => rows,
                Err(_) => continue,
            };
            match state.keys.replace(&rows) {
                Ok(()) => log::info!("the key ring changed in the store; reloaded"),
                Err(e) => log::error!("the key ring in the store is unusable: {e}"),
            }
        }
        since = checked_at;
    }
}

/// Periodic clean-up: revocations whose tokens all expired leave the set,
/// verify-only keys past their window retire, dead sessions are deleted.
async fn maintain(state: web::Data<AppState>) {
    let mut ticker = tokio::time::interval(MAINTENANCE_EVERY);
    loop {
        ticker.tick().await;
        let now = state.now();
        state.revocations.prune(now);
        let window = state.keys.verify_window();
        let throttle = state.throttle.clone();
        let _ring = state.key_updates.lock().await;
        let result = state
            .write(move |conn| {
                let retired = keys::retire_expired(conn, now.naive_utc(), window)?;
                // A margin past the window, so a row outlives its last token.
                let swept =
                    sessions::sweep(conn, (now - window - TimeDelta::minutes(1)).naive_utc())?;
                console_sessions::sweep(conn, now.naive_utc())?;
                throttle.sweep(conn, now.naive_utc())?;
                let rows = if retired > 0 {
                    Some(key_store::all(conn)?)
                } else {
                    None
                };
                Ok::<_, ServiceError>((rows, swept))
            })
            .await;
        match result {
            Ok((rows, swept)) => {
                if let Some(Err(e)) = rows.map(|rows| state.keys.replace(&rows)) {
                    log::error!("key ring maintenance: {e}");
                }
                if swept > 0 {
                    log::debug!("swept {swept} expired sessions");
                }
            }
            Err(e) => log::warn!("maintenance failed ({}); will retry", e),
        }
    }
}

//! The work a server does besides answering: it watches the store for
//! what other processes changed, and cleans up what expired.

mod mail;

use crate::auth::keys;
use crate::db::changes::{self, Kind};
use crate::db::{console_sessions, email_tokens, keys as key_store, outbox, sessions};
use crate::mail::smtp::Mailer;
use crate::service::ServiceError;
use crate::state::AppState;
use actix_web::web;
use chrono::TimeDelta;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long the change feed keeps a row: far longer than any instance
/// takes to read it (a second), short enough to stay small.
const FEED_KEPT: TimeDelta = TimeDelta::minutes(10);

/// An instance that has not read the feed for this long (it was paused,
/// or cut off from the store while others went on) may have missed rows
/// that the sweep deleted meanwhile: it reloads, from the store itself,
/// everything the feed tells (revocations, users, keys).
const RESYNC_AFTER: TimeDelta = TimeDelta::minutes(5);

/// How long a sent (or dropped) mail's row is kept, bodies cleared.
const MAIL_KEPT: TimeDelta = TimeDelta::days(7);

/// How often expired state is cleaned up (revocation set, keys, sessions).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);

/// Starts both loops on the current runtime (and, on PostgreSQL, the
/// listener that wakes the store watcher), and the outbox worker when
/// there is a `mailer`.
pub fn spawn(state: &web::Data<AppState>, mailer: Option<Mailer>) {
    tokio::spawn(maintain(state.clone()));
    if let Some(mailer) = mailer {
        mail::spawn(state, mailer);
    }
    let wake = Arc::new(Notify::new());
    let listener = Arc::downgrade(&wake);
    changes::listen(&state.settings.database, move |news| {
        // Stops once the watcher (and its wake-up) is gone.
        let Some(wake) = listener.upgrade() else {
            return false;
        };
        if news {
            wake.notify_one();
        }
        true
    });
    tokio::spawn(watch_store(state.clone(), wake));
}

/// How often the change feed is read when nothing woke the watcher.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How many changes one read takes at most.
const WATCH_BATCH: i64 = 10_000;

/// Other instances (and the command line) revoke sessions, change users
/// and rotate keys in the store, and record each in the change feed
/// (`db::changes`): read it after the last change seen, every second and
/// whenever the PostgreSQL listener hears a commit, so such a change holds
/// here within a second (usually within a few milliseconds on
/// PostgreSQL). The key ring is also compared with the store every second.
async fn watch_store(state: web::Data<AppState>, wake: Arc<Notify>) {
    let mut ticker = tokio::time::interval(WATCH_EVERY);
    let mut last = state.feed_start;
    let mut last_read = state.now();
    loop {
        let ticked = tokio::select! {
            _ = ticker.tick() => true,
            _ = wake.notified() => false,
        };
        let mut keys_changed = false;
        let away = state.now() - last_read;
        if away > RESYNC_AFTER {
            match resync(&state).await {
                Ok(latest) => {
                    log::warn!(
                        "the change feed was not read for {} s; reloaded revocations, users \
                         and keys from the store",
                        away.num_seconds()
                    );
                    (last, last_read, keys_changed) = (latest, state.now(), true);
                }
                Err(e) => {
                    log::warn!("reloading from the store failed ({e}); will retry");
                    continue;
                }
            }
        }
        loop {
            let after = last;
            let read = state
                .read(move |conn| Ok::<_, ServiceError>(changes::after(conn, after, WATCH_BATCH)?))
                .await;
            let rows = match read {
                Ok(rows) => rows,
                Err(e) => {
                    log::warn!("reading the change feed failed ({e}); will retry");
                    break;
                }
            };
            last_read = state.now();
            let Some(newest) = rows.last().map(|row| row.id) else {
                break;
            };
            last = newest;
            keys_changed |= apply(&state, &rows);
            if (rows.len() as i64) < WATCH_BATCH {
                break;
            }
        }
        // The ring is also compared with the store once a second, not on
        // every wake-up: under load those come at every commit.
        if keys_changed || ticked {
            reload_keys(&state, keys_changed).await;
        }
    }
}

/// What a start does, again: the feed's end, then every revocation still
/// in force, and no cached user. Changes committed after the end is read
/// come through the feed. Returns the feed's end.
async fn resync(state: &AppState) -> Result<i64, ServiceError> {
    let since = state.revocations.since(state.now()).naive_utc();
    let (latest, revoked) = state
        .read(move |conn| {
            let latest = changes::latest(conn)?;
            Ok::<_, ServiceError>((latest, sessions::revoked_since(conn, since)?))
        })
        .await?;
    for (id, at) in revoked {
        state.revocations.insert_all([id], at.and_utc());
    }
    state.users.forget_all();
    Ok(latest)
}

/// Applies changes read from the feed to this instance's memory; whether
/// the key ring changed.
fn apply(state: &AppState, rows: &[changes::ChangeRow]) -> bool {
    let mut keys_changed = false;
    let now = state.now();
    for row in rows {
        match row.kind() {
            Some(Kind::Session) => {
                if !state.revocations.is_revoked(&row.subject) {
                    state.revocations.insert_all([row.subject.clone()], now);
                }
            }
            // Forgotten whether cached or not: forgetting also tells a
            // read of the old row that is still under way not to cache it.
            Some(Kind::User) => state.users.forget(&row.subject),
            Some(Kind::Keys) => keys_changed = true,
            None => log::warn!("unknown change kind {:?} in the feed", row.kind),
        }
    }
    keys_changed
}

/// Reloads the key ring when the feed said it changed or the store's ring
/// is not the one in memory.
async fn reload_keys(state: &AppState, changed: bool) {
    let rows = match state
        .read(|conn| Ok::<_, ServiceError>(key_store::all(conn)?))
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            log::warn!("reading the key ring failed ({e}); will retry");
            return;
        }
    };
    if !changed && state.keys.is_current(&rows) {
        return;
    }
    let _ring = state.key_updates.lock().await;
    let rows = match state
        .read(|conn| Ok::<_, ServiceError>(key_store::all(conn)?))
        .await
    {
        Ok(rows) => rows,
        Err(_) => return,
    };
    if state.keys.is_current(&rows) {
        return;
    }
    match state.keys.replace(&rows) {
        Ok(()) => log::info!("the key ring changed in the store; reloaded"),
        Err(e) => log::error!("the key ring in the store is unusable: {e}"),
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
        // The key ring first, in a transaction of its own: a retirement
        // goes into the change feed, whose lock no sweep should hold.
        let retired = state
            .write(move |conn| {
                let retired = keys::retire_expired(conn, now.naive_utc(), window)?;
                let rows = if retired > 0 {
                    Some(key_store::all(conn)?)
                } else {
                    None
                };
                Ok::<_, ServiceError>(rows)
            })
            .await;
        let result = match retired {
            Ok(rows) => {
                state
                    .write(move |conn| {
                        // A margin past the window, so a row outlives its last token.
                        let swept = sessions::sweep(
                            conn,
                            (now - window - TimeDelta::minutes(1)).naive_utc(),
                        )?;
                        console_sessions::sweep(conn, now.naive_utc())?;
                        throttle.sweep(conn, now.naive_utc())?;
                        crate::db::mfa::sweep_challenges(conn, now.naive_utc())?;
                        email_tokens::sweep(conn, now.naive_utc())?;
                        outbox::sweep(conn, (now - MAIL_KEPT).naive_utc())?;
                        // Every instance has read a change long before this
                        // (or reloads everything: see RESYNC_AFTER).
                        changes::sweep(conn, now.naive_utc(), FEED_KEPT)?;
                        Ok::<_, ServiceError>((rows, swept))
                    })
                    .await
            }
            Err(e) => Err(e),
        };
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

//! The outbox worker: sends the mail the service wrote into the outbox.
//! It looks every second (a read), and at once when this instance queued
//! mail; claims due mail for a while (on PostgreSQL, skipping what another
//! instance is claiming), sends each while its claim holds, and marks it
//! sent, or due again after a backoff that doubles from 2 s to 10 min. A
//! mail whose link has expired is dropped unsent, and so is one the SMTP
//! server refuses for good (a 5xx answer). A forgotten-password request
//! becomes a mail here, if its address is a user's. An SMTP server that
//! is down delays mail, never loses it; an instance that dies between
//! sending and marking may send a mail twice, never zero times.

use crate::db::outbox::{self, FORGOT_REQUEST, MailRow};
use crate::mail::smtp::{Mailer, Outgoing, SendError};
use crate::service::{ServiceError, email};
use crate::state::AppState;
use actix_web::web;
use chrono::TimeDelta;
use std::sync::Arc;
use std::time::Duration;

/// How often the outbox is read when nothing woke the worker.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Mails claimed at a time.
const BATCH: i64 = 5;
/// How long a claimed mail is this worker's: past it, another may send it.
/// Far longer than sending a batch takes (a send gives up after a minute
/// or two with a server that stalls); a mail whose claim is within
/// [`MARGIN`] of lapsing is left for the next claim.
const LEASE: TimeDelta = TimeDelta::minutes(10);
const MARGIN: TimeDelta = TimeDelta::minutes(3);
/// The wait after the first failed attempt; it doubles up to [`LAST_WAIT`].
const FIRST_WAIT: i64 = 2;
const LAST_WAIT: i64 = 600;

pub fn spawn(state: &web::Data<AppState>, mailer: Mailer) {
    tokio::spawn(run(state.clone(), Arc::new(mailer)));
}

/// The wait before attempt `attempts + 1`.
fn backoff(attempts: i32) -> TimeDelta {
    let doublings = attempts.clamp(1, 20) as u32 - 1;
    TimeDelta::seconds((FIRST_WAIT << doublings).min(LAST_WAIT))
}

async fn run(state: web::Data<AppState>, mailer: Arc<Mailer>) {
    let mut ticker = tokio::time::interval(LOOK_EVERY);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = state.mail_queued.notified() => {}
        }
        loop {
            let now = state.now_naive();
            let due = state
                .read(move |conn| Ok::<_, ServiceError>(outbox::any_due(conn, now)?))
                .await;
            if !due.unwrap_or(true) {
                break;
            }
            let claimed = state
                .write(move |conn| {
                    Ok::<_, ServiceError>(outbox::claim_due(conn, now, now + LEASE, BATCH)?)
                })
                .await;
            let mails = match claimed {
                Ok(mails) => mails,
                Err(e) => {
                    log::warn!("reading the mail outbox failed ({e}); will retry");
                    break;
                }
            };
            if mails.is_empty() {
                break;
            }
            for mail in mails {
                deliver(&state, &mailer, mail).await;
            }
        }
    }
}

/// Sends one claimed mail and records what happened.
async fn deliver(state: &AppState, mailer: &Arc<Mailer>, mail: MailRow) {
    let now = state.now_naive();
    let (id, kind, lease) = (mail.id.clone(), mail.kind.clone(), mail.next_attempt_at);
    if now >= lease - MARGIN {
        return;
    }
    if kind == FORGOT_REQUEST {
        if let Err(e) = email::fulfil_forgot(state, &mail).await {
            log::warn!("a forgotten-password request failed ({e}); will retry");
        }
        return;
    }
    if mail.expires_at <= now {
        log::warn!(
            "mail {id} ({kind}) expired after {} attempts unsent: dropped",
            mail.attempts - 1
        );
        record(state, &id, lease, Done::Finished("expired")).await;
        state.metrics.mail("expired");
        return;
    }
    let sender = mailer.clone();
    let attempts = mail.attempts;
    let sent = tokio::task::spawn_blocking(move || {
        sender.send(&Outgoing {
            to: &mail.recipient,
            to_name: &mail.recipient_name,
            subject: &mail.subject,
            text: &mail.body_text,
            html: &mail.body_html,
        })
    })
    .await
    .unwrap_or_else(|e| Err(SendError::Failed(format!("the sending thread failed: {e}"))));
    match sent {
        Ok(()) => {
            log::info!("mail {id} ({kind}) sent");
            record(state, &id, lease, Done::Finished("sent")).await;
            state.metrics.mail("sent");
        }
        Err(SendError::Unsendable(why)) => {
            log::error!("mail {id} ({kind}) cannot be sent: {why}; dropped");
            record(state, &id, lease, Done::Finished("unsendable")).await;
            state.metrics.mail("unsendable");
        }
        Err(SendError::Failed(why)) => {
            let wait = backoff(attempts);
            log::warn!(
                "mail {id} ({kind}) not sent (attempt {attempts}): {why}; next attempt in {} s",
                wait.num_seconds()
            );
            record(state, &id, lease, Done::Retry(why, now + wait)).await;
            state.metrics.mail("failed");
        }
    }
}

enum Done {
    Finished(&'static str),
    Retry(String, chrono::NaiveDateTime),
}

async fn record(state: &AppState, id: &str, lease: chrono::NaiveDateTime, done: Done) {
    let (id, now) = (id.to_owned(), state.now_naive());
    let written = state
        .write(move |conn| {
            match &done {
                Done::Finished(outcome) => outbox::finish(conn, &id, lease, outcome, now)?,
                Done::Retry(why, at) => outbox::retry_later(conn, &id, lease, why, *at)?,
            }
            Ok::<_, ServiceError>(())
        })
        .await;
    if let Err(e) = written {
        // The claim lapses and the mail is tried again: sent twice at
        // worst, never lost.
        log::warn!("recording a mail delivery failed ({e})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_two_seconds_to_ten_minutes() {
        let waits: Vec<i64> = (1..=12).map(|n| backoff(n).num_seconds()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]);
        assert_eq!(backoff(0).num_seconds(), 2);
        assert_eq!(backoff(i32::MAX).num_seconds(), 600);
    }
}

//! The mailroom: what every operation that sends mail shares. A token is
//! issued (random, kept as SHA-256, voiding the user's earlier ones of its
//! purpose) and its mail written to the outbox in the caller's
//! transaction; at most one mail of a kind per address per two minutes.

use super::ServiceError;
use crate::audit::{Event, Outcome};
use crate::auth::sessions::{new_refresh_token, sha256_hex};
use crate::client::ClientInfo;
use crate::config::EmailVerification;
use crate::db::DbConnection;
use crate::db::email_tokens::{self, EmailTokenRow, purpose};
use crate::db::models::UserRow;
use crate::db::{outbox, users};
use crate::mail::{self, Recipient};
use crate::state::AppState;
use chrono::{NaiveDateTime, TimeDelta};
use serde_json::json;

/// How long a password-reset link works.
pub const RESET_TTL: TimeDelta = TimeDelta::minutes(30);
/// How long a verification link works.
pub const VERIFY_TTL: TimeDelta = TimeDelta::hours(24);
/// At most one mail of a kind per address in this time.
pub const RESEND_AFTER: TimeDelta = TimeDelta::minutes(2);
/// A notice (an email change) not sent by then is dropped.
const NOTICE_TTL: TimeDelta = TimeDelta::days(3);

/// What a transaction needs to queue mail: the public address for links.
#[derive(Debug, Clone)]
pub struct Mailroom {
    public_url: String,
    verification: EmailVerification,
}

impl Mailroom {
    /// Mail as configured, or [`ServiceError::MailNotConfigured`].
    pub fn of(state: &AppState) -> Result<Self, ServiceError> {
        Self::configured(state).ok_or(ServiceError::MailNotConfigured)
    }

    /// Mail as configured, if it is.
    pub fn configured(state: &AppState) -> Option<Self> {
        state.settings.mail.as_ref().map(|mail| Mailroom {
            public_url: mail.public_url.clone(),
            verification: state.settings.email_verification,
        })
    }

    /// Whether registrations and email changes send a verification link.
    pub fn verifies(&self) -> bool {
        self.verification != EmailVerification::Off
    }

    /// Issues a token for `user` (voiding their earlier ones of the same
    /// purpose) and queues its mail. Returns nothing: the token lives only
    /// in the mail.
    pub fn send_token(
        &self,
        conn: &mut DbConnection,
        user: &UserRow,
        purpose: &str,
        now: NaiveDateTime,
    ) -> diesel::QueryResult<()> {
        let token = new_refresh_token();
        let ttl = match purpose {
            purpose::PASSWORD_RESET => RESET_TTL,
            _ => VERIFY_TTL,
        };
        // The link in an unsent mail of the same kind stops working now.
        outbox::replace_pending(conn, user.id.as_str(), kind_of(purpose), now)?;
        email_tokens::issue(
            conn,
            &EmailTokenRow {
                token_hash: sha256_hex(&token),
                user_id: user.id.as_str().to_owned(),
                purpose: purpose.to_owned(),
                email: user.email.clone(),
                created_at: now,
                expires_at: now + ttl,
            },
        )?;
        let to = recipient(user);
        let letter = match purpose {
            purpose::PASSWORD_RESET => {
                mail::password_reset(&self.public_url, &to, &token, ttl.num_minutes())
            }
            _ => mail::verify_email(&self.public_url, &to, &token, ttl.num_hours()),
        };
        outbox::enqueue(
            conn,
            &letter.into_row(Some(user.id.as_str().to_owned()), now, now + ttl),
        )
    }

    /// Queues a verification link for a new user or a new address, when
    /// verification is on.
    pub fn verification(
        &self,
        conn: &mut DbConnection,
        user: &UserRow,
        now: NaiveDateTime,
    ) -> diesel::QueryResult<()> {
        if self.verifies() {
            self.send_token(conn, user, purpose::VERIFY_EMAIL, now)?;
        }
        Ok(())
    }

    /// After an email change (in its transaction): the old address is told,
    /// the new one gets a verification link, and tokens sent before are
    /// void.
    pub fn email_changed(
        &self,
        conn: &mut DbConnection,
        before: &UserRow,
        after: &UserRow,
        now: NaiveDateTime,
    ) -> diesel::QueryResult<()> {
        void_links(conn, after.id.as_str(), now)?;
        let notice = mail::email_changed(&self.public_url, &recipient(before), &after.email, now);
        outbox::enqueue(
            conn,
            &notice.into_row(Some(after.id.as_str().to_owned()), now, now + NOTICE_TTL),
        )?;
        self.verification(conn, after, now)
    }
}

/// Voids the user's reset and verification links and drops the unsent
/// mail that carries one (their address changed).
pub fn void_links(
    conn: &mut DbConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    void(conn, user_id, purpose::VERIFY_EMAIL, now)?;
    void_reset_links(conn, user_id, now)
}

/// Voids the user's password-reset links and drops the unsent mail that
/// carries one: their password was set, or their account disabled, so a
/// link sent before must not undo it.
pub fn void_reset_links(
    conn: &mut DbConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    void(conn, user_id, purpose::PASSWORD_RESET, now)
}

fn void(
    conn: &mut DbConnection,
    user_id: &str,
    purpose: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    email_tokens::void(conn, user_id, purpose)?;
    outbox::replace_pending(conn, user_id, kind_of(purpose), now).map(|_| ())
}

/// The kind of mail that carries a token of `purpose`.
fn kind_of(purpose: &str) -> &'static str {
    match purpose {
        purpose::PASSWORD_RESET => mail::PASSWORD_RESET,
        _ => mail::VERIFY_EMAIL,
    }
}

/// A forgotten-password request for `email`, for the outbox worker to
/// resolve; it holds no token and no body.
pub fn forgot_request(email: &str, now: NaiveDateTime) -> outbox::MailRow {
    mail::Letter {
        kind: outbox::FORGOT_REQUEST,
        to: email.to_owned(),
        to_name: String::new(),
        subject: String::new(),
        text: String::new(),
        html: String::new(),
    }
    .into_row(None, now, now + RESET_TTL)
}

fn recipient(user: &UserRow) -> Recipient<'_> {
    Recipient {
        email: &user.email,
        first_name: &user.first_name,
        last_name: &user.last_name,
    }
}

/// Whether a mail of `purpose` went to `user` less than [`RESEND_AFTER`]
/// ago: the seconds until another may go.
pub fn too_soon(
    conn: &mut DbConnection,
    user: &UserRow,
    purpose: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<Option<u64>> {
    let last = email_tokens::last_issued(conn, user.id.as_str(), purpose)?;
    Ok(last
        .map(|at| at + RESEND_AFTER - now)
        .filter(|left| *left > TimeDelta::zero())
        .map(|left| left.num_seconds().max(1) as u64))
}

/// A sign-in with the right password by a user whose address is not
/// verified where `EMAIL_VERIFICATION=required`: a new link is sent (at
/// most one per two minutes), the refusal audited.
pub async fn refuse_unverified(
    state: &AppState,
    client: &ClientInfo,
    user: &UserRow,
) -> Result<ServiceError, ServiceError> {
    let mailroom = Mailroom::of(state)?;
    let (now, client, id) = (state.now_naive(), client.clone(), user.id.clone());
    let sent = state
        .write(move |conn| {
            let user = users::find_for_update(conn, &id)?.ok_or(ServiceError::BadCredentials)?;
            let sent = too_soon(conn, &user, purpose::VERIFY_EMAIL, now)?.is_none();
            if sent {
                mailroom.send_token(conn, &user, purpose::VERIFY_EMAIL, now)?;
            }
            Event::new(crate::audit::ANONYMOUS, "login", Outcome::Denied)
                .target(user.id.as_str())
                .client(&client)
                .detail(json!({ "reason": "email_unverified", "link_sent": sent }))
                .write(conn, now)?;
            Ok::<_, ServiceError>(sent)
        })
        .await?;
    if sent {
        state.mail_queued.notify_one();
    }
    Ok(ServiceError::EmailUnverified)
}

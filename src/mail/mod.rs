//! Mail: what latchkey writes (askama templates, plain text and HTML, in
//! the user's words; no token in a subject line) and how it reaches the
//! SMTP server ([`smtp::Mailer`]). Nothing here is sent at once: the
//! service writes a [`Letter`] into the outbox (`db::outbox`) in the
//! transaction of what caused it, and the outbox worker sends it.

pub mod smtp;

use crate::db::outbox::MailRow;
use askama::Template;
use chrono::NaiveDateTime;

/// The kinds of mail.
pub const PASSWORD_RESET: &str = "password_reset";
pub const VERIFY_EMAIL: &str = "verify_email";
pub const EMAIL_CHANGED: &str = "email_changed";

/// A mail ready for the outbox.
#[derive(Debug, Clone)]
pub struct Letter {
    /// What it is for: `password_reset`, `verify_email`, `email_changed`.
    pub kind: &'static str,
    pub to: String,
    pub to_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Letter {
    /// The outbox row: due now, dropped unsent after `expires_at` (a link
    /// that no longer works is not worth delivering).
    pub fn into_row(
        self,
        user_id: Option<String>,
        now: NaiveDateTime,
        expires_at: NaiveDateTime,
    ) -> MailRow {
        MailRow {
            id: uuid::Uuid::new_v4().to_string(),
            user_id,
            kind: self.kind.to_owned(),
            recipient: self.to,
            recipient_name: self.to_name,
            subject: self.subject,
            body_text: self.text,
            body_html: self.html,
            created_at: now,
            expires_at,
            next_attempt_at: now,
            attempts: 0,
            last_error: None,
            done_at: None,
            outcome: None,
        }
    }
}

/// Who a mail goes to.
pub struct Recipient<'a> {
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
}

impl Recipient<'_> {
    fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct PasswordResetText<'a> {
    name: &'a str,
    email: &'a str,
    link: &'a str,
    token: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct PasswordResetHtml<'a> {
    name: &'a str,
    email: &'a str,
    link: &'a str,
    token: &'a str,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "mail/verify_email.txt")]
struct VerifyEmailText<'a> {
    name: &'a str,
    email: &'a str,
    link: &'a str,
    token: &'a str,
    hours: i64,
}

#[derive(Template)]
#[template(path = "mail/verify_email.html")]
struct VerifyEmailHtml<'a> {
    name: &'a str,
    email: &'a str,
    link: &'a str,
    token: &'a str,
    hours: i64,
}

#[derive(Template)]
#[template(path = "mail/email_changed.txt")]
struct EmailChangedText<'a> {
    name: &'a str,
    old_email: &'a str,
    new_email: &'a str,
    when: &'a str,
    site: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_changed.html")]
struct EmailChangedHtml<'a> {
    name: &'a str,
    old_email: &'a str,
    new_email: &'a str,
    when: &'a str,
    site: &'a str,
}

/// Renders a mail template; the templates are checked at compile time and
/// take only strings and numbers, so rendering cannot fail in practice.
fn render(template: &impl Template) -> String {
    template.render().unwrap_or_else(|e| {
        log::error!("a mail template failed to render: {e}");
        String::new()
    })
}

/// The link to one of the public pages, with the token.
fn link(public_url: &str, page: &str, token: &str) -> String {
    format!("{public_url}/{page}?token={token}")
}

/// The forgotten-password mail: a link to `/reset-password` and the token.
pub fn password_reset(public_url: &str, to: &Recipient, token: &str, minutes: i64) -> Letter {
    let link = link(public_url, "reset-password", token);
    let (name, email) = (to.first_name, to.email);
    Letter {
        kind: PASSWORD_RESET,
        to: to.email.to_owned(),
        to_name: to.full_name(),
        subject: "Reset your password".into(),
        text: render(&PasswordResetText {
            name,
            email,
            link: &link,
            token,
            minutes,
        }),
        html: render(&PasswordResetHtml {
            name,
            email,
            link: &link,
            token,
            minutes,
        }),
    }
}

/// The verification mail: a link to `/verify-email` and the token.
pub fn verify_email(public_url: &str, to: &Recipient, token: &str, hours: i64) -> Letter {
    let link = link(public_url, "verify-email", token);
    let (name, email) = (to.first_name, to.email);
    Letter {
        kind: VERIFY_EMAIL,
        to: to.email.to_owned(),
        to_name: to.full_name(),
        subject: "Confirm your email address".into(),
        text: render(&VerifyEmailText {
            name,
            email,
            link: &link,
            token,
            hours,
        }),
        html: render(&VerifyEmailHtml {
            name,
            email,
            link: &link,
            token,
            hours,
        }),
    }
}

/// The notice to the old address of an email change.
pub fn email_changed(
    public_url: &str,
    old: &Recipient,
    new_email: &str,
    at: NaiveDateTime,
) -> Letter {
    let when = at.format("%Y-%m-%d %H:%M UTC").to_string();
    let (name, old_email) = (old.first_name, old.email);
    Letter {
        kind: EMAIL_CHANGED,
        to: old.email.to_owned(),
        to_name: old.full_name(),
        subject: "Your email address was changed".into(),
        text: render(&EmailChangedText {
            name,
            old_email,
            new_email,
            when: &when,
            site: public_url,
        }),
        html: render(&EmailChangedHtml {
            name,
            old_email,
            new_email,
            when: &when,
            site: public_url,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_mail_has_the_link_and_token_in_its_body_not_its_subject() {
        let to = Recipient {
            email: "ada@example.com",
            first_name: "Ada <b>",
            last_name: "Lovelace",
        };
        let letter = password_reset("https://auth.example.com", &to, "tok123", 30);
        assert!(!letter.subject.contains("tok123"));
        assert!(
            letter
                .text
                .contains("https://auth.example.com/reset-password?token=tok123")
        );
        assert!(
            letter.text.contains("Hello Ada <b>,"),
            "plain text is not escaped"
        );
        assert!(
            letter.html.contains("Hello Ada &#60;b&#62;,") || letter.html.contains("Ada &lt;b&gt;")
        );
        assert!(
            letter
                .html
                .contains("href=\"https://auth.example.com/reset-password?token=tok123\"")
        );
        assert_eq!(letter.to_name, "Ada <b> Lovelace");
    }
}

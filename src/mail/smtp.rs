//! Sending one mail to the SMTP server of `SMTP_URL`, through lettre
//! (rustls). Blocking: the outbox worker calls it off the async threads.

use crate::config::{ConfigError, MailSettings, SmtpTls};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use std::time::Duration;

/// How long one exchange with the SMTP server may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The SMTP connection (pooled) and the `From` of every mail.
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The mail cannot be sent, now or later: a recipient no mail can
    /// carry, or the SMTP server refused it for good (5xx).
    #[error("the mail cannot be built: {0}")]
    Unsendable(String),
    /// The server is down, refused, or failed: worth trying again later.
    #[error("{0}")]
    Failed(String),
}

/// One mail to send.
pub struct Outgoing<'a> {
    pub to: &'a str,
    pub to_name: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Self, ConfigError> {
        let smtp = &settings.smtp;
        let tls = || {
            TlsParameters::new(smtp.host.clone())
                .map_err(|e| ConfigError::new("SMTP_URL", format!("TLS cannot be set up: {e}")))
        };
        let tls = match smtp.tls {
            SmtpTls::Implicit => Tls::Wrapper(tls()?),
            SmtpTls::StartTlsRequired => Tls::Required(tls()?),
            SmtpTls::StartTlsWhenOffered => Tls::Opportunistic(tls()?),
        };
        let mut builder = SmtpTransport::builder_dangerous(smtp.host.as_str())
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(TIMEOUT));
        if let Some((user, password)) = &smtp.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from: settings.from.clone(),
        })
    }

    /// Sends one mail: multipart/alternative, plain text then HTML.
    pub fn send(&self, mail: &Outgoing) -> Result<(), SendError> {
        let address = mail
            .to
            .parse()
            .map_err(|e| SendError::Unsendable(format!("recipient: {e}")))?;
        // lettre encodes the name (RFC 2047) and folds the header: no line
        // break in a name can start a header of its own.
        let to = Mailbox::new(Some(mail.to_name.to_owned()), address);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .multipart(MultiPart::alternative_plain_html(
                mail.text.to_owned(),
                mail.html.to_owned(),
            ))
            .map_err(|e| SendError::Unsendable(e.to_string()))?;
        self.transport.send(&message).map(|_| ()).map_err(|e| {
            // A 5xx answer (no such mailbox, sender refused) will not
            // change by trying again.
            if e.is_permanent() {
                SendError::Unsendable(e.to_string())
            } else {
                SendError::Failed(e.to_string())
            }
        })
    }
}

//! What can go wrong in an operation, in the operation's own words. Each
//! face maps this once: `routes::api::error` to problem+json,
//! `routes::admin::error` to a page, `cli` to a line and an exit code.

use crate::auth::password::HashError;
use crate::db::StoreError;
use crate::domain::FieldErrors;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Nobody is signed in where someone must be.
    #[error("{0}")]
    SignInRequired(&'static str),
    /// The caller's user is gone or disabled: their credentials no longer
    /// stand for anyone.
    #[error("the caller is no longer a valid user")]
    NotSignedIn,
    /// Signed in, but not allowed to do this.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("no such user")]
    NotFound,
    #[error("a user with that email exists")]
    EmailTaken,
    #[error("this is the last admin")]
    LastAdmin,
    /// Another unique value is taken (none an operation expects).
    #[error("a resource with that value exists")]
    Duplicate,
    /// Fields that break a rule, each with its message.
    #[error("{}", describe(.0))]
    Invalid(FieldErrors),
    /// A request the operation cannot read (a listing's query).
    #[error("{0}")]
    BadRequest(String),
    /// Unknown email or wrong password: one answer for both.
    #[error("the email or password is wrong")]
    BadCredentials,
    /// The right password for a disabled user.
    #[error("this account is disabled")]
    Disabled,
    #[error("too many failed sign-ins; try again in {retry_after} seconds")]
    Throttled { retry_after: u64 },
    /// The password was right; a second factor is needed, with this token.
    #[error("a code from the authenticator app is needed")]
    MfaRequired { mfa_token: String },
    /// An `mfa_token` that is unknown, spent or expired.
    #[error("the mfa_token is not valid")]
    MfaTokenInvalid,
    /// A wrong, reused or spent code or recovery code.
    #[error("the code is not right")]
    BadMfaCode,
    /// An admin who must turn two-factor sign-in on before anything else.
    #[error("set up two-factor sign-in first: admins need it here")]
    MfaEnrolmentRequired,
    #[error("two-factor sign-in is on already")]
    MfaAlreadyOn,
    #[error("two-factor sign-in is not on")]
    MfaNotOn,
    /// A confirmation with no enrolment waiting for it.
    #[error("no enrolment is waiting for confirmation")]
    NoEnrolment,
    /// A service client's id or secret is wrong, or the client is revoked.
    #[error("the client credentials are not valid")]
    BadClientCredentials,
    #[error("no such service client")]
    NoSuchClient,
    /// A refresh token that is unknown, spent, expired or revoked.
    #[error("the refresh token is not valid")]
    RefreshRefused,
    /// `SMTP_URL` (with `MAIL_FROM` and `PUBLIC_URL`) is not set.
    #[error("email is not configured on this server (SMTP_URL, MAIL_FROM, PUBLIC_URL)")]
    MailNotConfigured,
    /// The right password, but `EMAIL_VERIFICATION=required` and the
    /// address is not verified yet.
    #[error("confirm your email address first: follow the link in the mail we sent")]
    EmailUnverified,
    /// A reset or verification token that is unknown, used, expired, for
    /// another address, or whose user is gone.
    #[error(
        "the link or token is not valid: it is unknown, used, expired or replaced by a newer one"
    )]
    EmailTokenInvalid,
    #[error("the email address is verified already")]
    AlreadyVerified,
    #[error("email verification is off on this server (EMAIL_VERIFICATION)")]
    VerificationOff,
    /// A mail of this kind went to this address moments ago.
    #[error("a mail was sent moments ago; try again in {retry_after} seconds")]
    MailTooSoon { retry_after: u64 },
    /// The store or the hasher is busy: try again shortly.
    #[error("the service is busy; try again shortly ({0})")]
    Busy(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ServiceError {
    /// One field's problem.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        ServiceError::Invalid(errors)
    }
}

/// `email is not a valid email address, password must …`.
fn describe(errors: &FieldErrors) -> String {
    errors
        .clone()
        .into_map()
        .into_iter()
        .map(|(field, messages)| format!("{field} {}", messages.join("; ")))
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Busy(why) => ServiceError::Busy(why),
            // The email's index is handled where it can be hit; another
            // one (a collision of random ids) is still a conflict.
            StoreError::Duplicate(why) => {
                log::warn!("unique violation: {why}");
                ServiceError::Duplicate
            }
            StoreError::Query(err) => {
                ServiceError::Unexpected(anyhow::Error::new(err).context("store query"))
            }
            StoreError::File(why) => ServiceError::Unexpected(anyhow::anyhow!(why)),
        }
    }
}

impl From<diesel::result::Error> for ServiceError {
    fn from(err: diesel::result::Error) -> Self {
        StoreError::from(err).into()
    }
}

impl From<HashError> for ServiceError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => ServiceError::Busy("password hasher queue full".into()),
            HashError::Failed(why) => {
                ServiceError::Unexpected(anyhow::anyhow!(why).context("hashing"))
            }
        }
    }
}

impl From<jsonwebtoken::errors::Error> for ServiceError {
    fn from(err: jsonwebtoken::errors::Error) -> Self {
        ServiceError::Unexpected(anyhow::Error::new(err).context("signing an access token"))
    }
}

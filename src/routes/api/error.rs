//! Errors as API clients see them.
//!
//! [`ApiError`] is the JSON API's error: every variant renders as RFC 9457
//! `application/problem+json`, including the errors actix-web raises itself
//! (bad JSON, wrong content type, oversized body, unknown route, wrong
//! method), which `body::json_error`, [`not_found`] and
//! [`method_not_allowed`] turn into the same shape. A [`ServiceError`]
//! becomes one here, and only here. An unexpected error is logged once,
//! here, with its whole chain, and the client sees only a plain sentence:
//! no error body ever carries SQL, a path or an internal name.

use crate::db::StoreError;
use crate::domain::FieldErrors;
use crate::service::ServiceError;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// How a 401 tells the client what to do (RFC 6750 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// No bearer token was sent.
    Bearer,
    /// A bearer token was sent and is not valid now.
    InvalidToken,
    /// Credentials other than a bearer token were wrong (a password).
    None,
    /// A service client's HTTP Basic credentials were missing or wrong.
    Basic,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {detail}")]
    Unauthorized {
        detail: &'static str,
        challenge: Challenge,
    },
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// An admin without two-factor sign-in where it is required.
    #[error("two-factor sign-in required")]
    MfaEnrolmentRequired,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("payload too large")]
    PayloadTooLarge,
    /// A body not declared as the media type the operation reads.
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    #[error("validation failed")]
    Unprocessable(FieldErrors),
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    /// The password was right; the address is not verified yet.
    #[error("email unverified")]
    EmailUnverified,
    /// A mail was sent to this address moments ago.
    #[error("a mail was sent moments ago")]
    MailTooSoon { retry_after: u64 },
    #[error("email is not configured")]
    MailNotConfigured,
    /// The password was right; the second step needs this token.
    #[error("a second factor is needed")]
    MfaRequired { mfa_token: String },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Per-field messages, present only for field problems (422).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, Vec<String>>>,
    /// With `urn:latchkey:problem:mfa-required` only: the token for
    /// `POST /api/user/login/mfa` (single use, 5 minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
}

/// Seconds a client should wait after a 503.
const RETRY_AFTER_BUSY: u64 = 1;

impl ApiError {
    pub fn unauthorized(detail: &'static str) -> Self {
        ApiError::Unauthorized {
            detail,
            challenge: Challenge::None,
        }
    }

    pub fn invalid_token() -> Self {
        ApiError::Unauthorized {
            detail: "the access token is not valid",
            challenge: Challenge::InvalidToken,
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        ApiError::Unprocessable(errors)
    }

    fn slug_and_detail(&self) -> (&'static str, String) {
        match self {
            ApiError::BadRequest(detail) => ("bad-request", detail.clone()),
            ApiError::Unauthorized { detail, .. } => ("unauthorized", (*detail).into()),
            ApiError::Forbidden(detail) => ("forbidden", (*detail).into()),
            ApiError::MfaEnrolmentRequired => (
                "mfa-enrollment-required",
                "admins must turn two-factor sign-in on first (POST /api/user/me/mfa/totp)".into(),
            ),
            ApiError::NotFound => ("not-found", "no such resource".into()),
            ApiError::MethodNotAllowed { allow } => (
                "method-not-allowed",
                format!("this resource allows {allow}"),
            ),
            ApiError::Conflict(detail) => ("conflict", (*detail).into()),
            ApiError::PayloadTooLarge => (
                "payload-too-large",
                format!("the body is over {} bytes", crate::BODY_LIMIT),
            ),
            ApiError::UnsupportedMediaType(expected) => (
                "unsupported-media-type",
                format!("the body must be declared {expected}"),
            ),
            ApiError::Unprocessable(_) => (
                "validation-failed",
                "one or more fields break a rule".into(),
            ),
            ApiError::MfaRequired { .. } => (
                "mfa-required",
                "the password is right; send a code from the authenticator app (or a recovery \
                 code) with this mfa_token to /api/user/login/mfa"
                    .into(),
            ),
            ApiError::TooManyRequests { .. } => (
                "too-many-requests",
                "too many failed sign-ins; try again later".into(),
            ),
            ApiError::EmailUnverified => (
                "email-unverified",
                "the password is right, but the email address is not verified yet: follow the \
                 link in the mail (a new one was sent if the last is older than 2 minutes)"
                    .into(),
            ),
            ApiError::MailTooSoon { retry_after } => (
                "too-many-requests",
                format!(
                    "a mail was sent to this address moments ago; try again in {retry_after} s"
                ),
            ),
            ApiError::MailNotConfigured => (
                "email-not-configured",
                "email is not configured on this server (SMTP_URL, MAIL_FROM and PUBLIC_URL)"
                    .into(),
            ),
            ApiError::Unavailable(_) => (
                "unavailable",
                "the service is busy; try again shortly".into(),
            ),
            ApiError::Unexpected(_) => ("internal", "something went wrong on our side".into()),
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let (slug, detail) = self.slug_and_detail();
        Problem {
            kind: format!("urn:latchkey:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors: match self {
                ApiError::Unprocessable(errors) => Some(errors.clone().into_map()),
                _ => None,
            },
            mfa_token: match self {
                ApiError::MfaRequired { mfa_token } => Some(mfa_token.clone()),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::MfaEnrolmentRequired | ApiError::EmailUnverified => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } | ApiError::MailTooSoon { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::MfaRequired { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable(_) | ApiError::MailNotConfigured => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unexpected(err) => log::error!("unexpected error: {err:#}"),
            ApiError::Unavailable(why) => log::warn!("answering 503: {why}"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        match self {
            ApiError::Unauthorized {
                challenge: Challenge::Bearer,
                ..
            } => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::Unauthorized {
                challenge: Challenge::InvalidToken,
                ..
            } => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""));
            }
            ApiError::Unauthorized {
                challenge: Challenge::Basic,
                ..
            } => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    "Basic realm=\"latchkey\", charset=\"UTF-8\"",
                ));
            }
            ApiError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, *allow));
            }
            ApiError::TooManyRequests { retry_after } | ApiError::MailTooSoon { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_BUSY.to_string()));
            }
            _ => {}
        }
        response.json(self.problem())
    }
}

/// The one place where an operation's error becomes an HTTP answer.
impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::SignInRequired(detail) => ApiError::Unauthorized {
                detail,
                challenge: Challenge::Bearer,
            },
            ServiceError::NotSignedIn => ApiError::invalid_token(),
            ServiceError::Forbidden(detail) => ApiError::Forbidden(detail),
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::EmailTaken => ApiError::Conflict("a user with that email exists"),
            ServiceError::LastAdmin => ApiError::Conflict("this is the last admin"),
            ServiceError::Duplicate => ApiError::Conflict("a resource with that value exists"),
            ServiceError::Invalid(errors) => ApiError::Unprocessable(errors),
            ServiceError::BadRequest(detail) => ApiError::BadRequest(detail),
            ServiceError::BadCredentials => {
                ApiError::unauthorized("the email or password is wrong")
            }
            ServiceError::Disabled => ApiError::Forbidden("this account is disabled"),
            ServiceError::Throttled { retry_after } => ApiError::TooManyRequests { retry_after },
            ServiceError::RefreshRefused => {
                ApiError::unauthorized("the refresh token is not valid")
            }
            ServiceError::MfaRequired { mfa_token } => ApiError::MfaRequired { mfa_token },
            ServiceError::MfaTokenInvalid => {
                ApiError::unauthorized("the mfa_token is not valid (unknown, used or expired)")
            }
            ServiceError::BadMfaCode => ApiError::unauthorized("the code is not right"),
            ServiceError::MfaEnrolmentRequired => ApiError::MfaEnrolmentRequired,
            ServiceError::MfaAlreadyOn => ApiError::Conflict("two-factor sign-in is on already"),
            ServiceError::MfaNotOn => ApiError::Conflict("two-factor sign-in is not on"),
            ServiceError::NoEnrolment => {
                ApiError::Conflict("no enrolment is waiting for confirmation")
            }
            ServiceError::BadClientCredentials => ApiError::Unauthorized {
                detail: "the client credentials are not valid",
                challenge: Challenge::Basic,
            },
            ServiceError::NoSuchClient => ApiError::NotFound,
            ServiceError::MailNotConfigured => ApiError::MailNotConfigured,
            ServiceError::EmailUnverified => ApiError::EmailUnverified,
            ServiceError::EmailTokenInvalid => ApiError::BadRequest(
                "the token is not valid: it is unknown, used, expired, or replaced by a newer one"
                    .into(),
            ),
            ServiceError::AlreadyVerified => {
                ApiError::Conflict("the email address is verified already")
            }
            ServiceError::VerificationOff => {
                ApiError::Conflict("email verification is off on this server")
            }
            ServiceError::MailTooSoon { retry_after } => ApiError::MailTooSoon { retry_after },
            ServiceError::Busy(why) => ApiError::Unavailable(why),
            ServiceError::Unexpected(err) => ApiError::Unexpected(err),
        }
    }
}

/// A handler's own read of the store.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ServiceError::from(err).into()
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        ServiceError::from(err).into()
    }
}

/// The answer for a path no route serves.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// A handler answering 405 with the methods a resource does serve.
pub fn method_not_allowed(
    allow: &'static str,
) -> impl Fn() -> std::future::Ready<Result<HttpResponse, ApiError>> + Clone + 'static {
    move || std::future::ready(Err(ApiError::MethodNotAllowed { allow }))
}

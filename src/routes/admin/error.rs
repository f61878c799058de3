//! Errors as the console shows them: a readable page with the status, or a
//! redirect to the sign-in page. A [`ServiceError`] becomes one here, and
//! only here; a form's own field errors are shown beside its fields by the
//! handler instead.

use super::chrome::Chrome;
use crate::db::StoreError;
use crate::service::ServiceError;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

/// Errors as the console shows them: a readable page, or a redirect to
/// the sign-in page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign-in needed")]
    SignIn,
    /// Go to this console page instead (an admin who must set up
    /// two-factor sign-in first).
    #[error("see {0}")]
    Redirect(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("form refused")]
    Csrf,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    title: &'a str,
    message: String,
}

impl PageError {
    fn message(&self) -> String {
        match self {
            PageError::SignIn => "Please sign in.".into(),
            PageError::Redirect(to) => format!("See {to}."),
            PageError::Forbidden(why) => format!("{why}."),
            PageError::NotFound => "There is no such page or user.".into(),
            PageError::BadRequest(why) => why.clone(),
            PageError::Csrf => {
                "This form has expired or was sent from another site. Go back, reload the page \
                                and try again."
                    .into()
            }
            PageError::TooManyRequests { retry_after } => {
                format!("Too many failed sign-ins. Try again in {retry_after} seconds.")
            }
            PageError::Unavailable(_) => "The service is busy. Try again in a moment.".into(),
            PageError::Unexpected(_) => {
                "Something went wrong on our side. It has been logged.".into()
            }
            PageError::MethodNotAllowed { allow } => format!("This page only answers {allow}."),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn | PageError::Redirect(_) => StatusCode::SEE_OTHER,
            PageError::Forbidden(_) | PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            PageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PageError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::SignIn => {
                return HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/admin/login"))
                    .finish();
            }
            PageError::Redirect(to) => {
                return HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, *to))
                    .finish();
            }
            PageError::Unexpected(err) => log::error!("console error: {err:#}"),
            PageError::Unavailable(why) => log::warn!("console answering 503: {why}"),
            _ => {}
        }
        let status = self.status_code();
        let page = ErrorPage {
            chrome: Chrome {
                admin_email: None,
                csrf: String::new(),
                flash: None,
                nav: "",
            },
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            message: self.message(),
        };
        let mut response = HttpResponse::build(status);
        match self {
            PageError::TooManyRequests { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            PageError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            PageError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, *allow));
            }
            _ => {}
        }
        match page.render() {
            Ok(html) => response.content_type("text/html; charset=utf-8").body(html),
            Err(_) => response
                .content_type("text/plain; charset=utf-8")
                .body(self.message()),
        }
    }
}

/// The one place where an operation's error becomes a console answer.
impl From<ServiceError> for PageError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::SignInRequired(_) | ServiceError::NotSignedIn => PageError::SignIn,
            ServiceError::Forbidden(why) => PageError::Forbidden(why),
            ServiceError::NotFound | ServiceError::NoSuchClient => PageError::NotFound,
            ServiceError::MfaEnrolmentRequired => PageError::Redirect("/admin/account"),
            ServiceError::Throttled { retry_after } => PageError::TooManyRequests { retry_after },
            ServiceError::Busy(why) => PageError::Unavailable(why),
            ServiceError::Unexpected(err) => PageError::Unexpected(err),
            other => PageError::BadRequest(capitalised(&other.to_string())),
        }
    }
}

/// A sentence as a page shows it: capital first letter, full stop.
fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    let mut sentence: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}

/// A handler's own read of the store.
impl From<StoreError> for PageError {
    fn from(err: StoreError) -> Self {
        ServiceError::from(err).into()
    }
}

impl From<diesel::result::Error> for PageError {
    fn from(err: diesel::result::Error) -> Self {
        ServiceError::from(err).into()
    }
}

impl From<actix_session::SessionInsertError> for PageError {
    fn from(err: actix_session::SessionInsertError) -> Self {
        PageError::Unexpected(anyhow::anyhow!("session insert: {err}"))
    }
}

/// The console's answer for a path it does not serve.
pub async fn not_found() -> Result<HttpResponse, PageError> {
    Err(PageError::NotFound)
}

/// A handler answering 405 with the methods a console page does serve.
pub fn method_not_allowed(
    allow: &'static str,
) -> impl Fn() -> std::future::Ready<Result<HttpResponse, PageError>> + Clone + 'static {
    move || std::future::ready(Err(PageError::MethodNotAllowed { allow }))
}

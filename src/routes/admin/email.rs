//! The two public pages a mail links to, in the console's style and with
//! no script: `/reset-password?token=…` (a form for the new password) and
//! `/verify-email?token=…` (a button: a link scanner that fetches the page
//! confirms nothing). Nobody is signed in here; the token is the form's
//! only credential, so the forms need no CSRF token of their own.

use super::chrome::Chrome;
use super::error::PageError;
use super::page::render_with;
use crate::client::ClientInfo;
use crate::service::{ServiceError, email};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "admin/reset_password.html")]
struct ResetPage {
    chrome: Chrome,
    token: String,
    done: bool,
    /// Why the link cannot be used.
    problem: Option<String>,
    /// Why the password was refused.
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/verify_email.html")]
struct VerifyPage {
    chrome: Chrome,
    token: String,
    done: bool,
    problem: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

fn chrome() -> Chrome {
    Chrome {
        admin_email: None,
        csrf: String::new(),
        flash: None,
        nav: "",
    }
}

/// What the page says for a link that cannot be used, and its status.
fn link_problem(err: ServiceError) -> Result<(StatusCode, String), PageError> {
    match err {
        ServiceError::EmailTokenInvalid => Ok((
            StatusCode::BAD_REQUEST,
            "This link does not work: it was used already, it expired, a newer one replaced it, \
             or it was copied incompletely."
                .into(),
        )),
        ServiceError::Disabled => Ok((
            StatusCode::FORBIDDEN,
            "This account is disabled: ask its administrator.".into(),
        )),
        ServiceError::MailNotConfigured => Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            "Email is not set up on this server.".into(),
        )),
        other => Err(other.into()),
    }
}

fn reset_page(
    status: StatusCode,
    token: String,
    done: bool,
    problem: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let page = ResetPage {
        chrome: chrome(),
        token,
        done,
        problem,
        error,
    };
    render_with(status, &page)
}

pub async fn reset_page_for(
    state: web::Data<AppState>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let token = query.into_inner().token;
    match email::check_reset_token(&state, &token).await {
        Ok(()) => reset_page(StatusCode::OK, token, false, None, None),
        Err(err) => {
            let (status, problem) = link_problem(err)?;
            reset_page(status, String::new(), false, Some(problem), None)
        }
    }
}

pub async fn reset(
    state: web::Data<AppState>,
    client: ClientInfo,
    form: web::Form<ResetForm>,
) -> Result<HttpResponse, PageError> {
    let ResetForm {
        token,
        new_password,
    } = form.into_inner();
    match email::reset_password(&state, &client, &token, &new_password).await {
        Ok(()) => reset_page(StatusCode::OK, String::new(), true, None, None),
        Err(ServiceError::Invalid(errors)) => {
            let why = errors.sentences("new_password").join(" ");
            reset_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                token,
                false,
                None,
                Some(why),
            )
        }
        Err(err) => {
            let (status, problem) = link_problem(err)?;
            reset_page(status, String::new(), false, Some(problem), None)
        }
    }
}

pub async fn verify_page(query: web::Query<TokenQuery>) -> Result<HttpResponse, PageError> {
    let page = VerifyPage {
        chrome: chrome(),
        token: query.into_inner().token,
        done: false,
        problem: None,
    };
    render_with(StatusCode::OK, &page)
}

pub async fn verify(
    state: web::Data<AppState>,
    client: ClientInfo,
    form: web::Form<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let (status, done, problem) =
        match email::verify_email(&state, &client, &form.into_inner().token).await {
            Ok(()) => (StatusCode::OK, true, None),
            Err(err) => {
                let (status, problem) = link_problem(err)?;
                (status, false, Some(problem))
            }
        };
    let page = VerifyPage {
        chrome: chrome(),
        token: String::new(),
        done,
        problem,
    };
    render_with(status, &page)
}

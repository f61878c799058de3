//! `/admin/login`, `/admin/logout` and the first-admin `/admin/setup`.

use super::chrome::Chrome;
use super::error::PageError;
use super::page::{redirect, render_with};
use super::session::{ConsoleAdmin, anonymous_chrome, check_form, flash, start_session};
use crate::client::ClientInfo;
use crate::db::models::UserRow;
use crate::domain::{FieldErrors, NewUser, NewUserInput, RecoveryCode, Role, TotpCode};
use crate::service::signin::Proof;
use crate::service::{ServiceError, setup, signin};
use crate::state::AppState;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    chrome: Chrome,
    email: String,
    error: Option<String>,
}

/// The second step of a sign-in with two-factor sign-in on.
#[derive(Template)]
#[template(path = "admin/login_code.html")]
struct CodePage {
    chrome: Chrome,
    mfa_token: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    mfa_token: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
    #[serde(default)]
    csrf_token: String,
}

/// Signs the admin in once every factor was right (or says why not).
fn signed_in(
    session: &Session,
    state: &AppState,
    user: &UserRow,
) -> Result<HttpResponse, PageError> {
    start_session(session, state, user)?;
    flash(session, "ok", format!("Signed in as {}.", user.email))?;
    Ok(redirect("/admin"))
}

pub async fn login_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    client: ClientInfo,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PageError> {
    check_form(&req, &session, &form.csrf_token)?;
    let form = form.into_inner();
    let proof = if form.recovery_code.trim().is_empty() {
        TotpCode::parse(&form.code).map(Proof::Code)
    } else {
        RecoveryCode::parse(&form.recovery_code).map(Proof::RecoveryCode)
    };
    let again = |status: StatusCode, error: String| -> Result<HttpResponse, PageError> {
        let page = CodePage {
            chrome: anonymous_chrome(&session)?,
            mfa_token: form.mfa_token.clone(),
            error: Some(error),
        };
        render_with(status, &page)
    };
    let proof = match proof {
        Ok(proof) => proof,
        Err(why) => return again(StatusCode::UNPROCESSABLE_ENTITY, format!("The code {why}.")),
    };
    let outcome = signin::complete_mfa(&state, &client, &form.mfa_token, proof, |_, user| {
        Ok(user.role == Role::Admin)
    })
    .await;
    match outcome {
        Ok((user, true)) => signed_in(&session, &state, &user),
        Ok((_, false)) => login_again(
            &session,
            StatusCode::FORBIDDEN,
            "This account is not an admin.",
        ),
        Err(ServiceError::BadMfaCode) => again(
            StatusCode::UNAUTHORIZED,
            "That code is not right (or was used already).".into(),
        ),
        Err(ServiceError::MfaTokenInvalid) => login_again(
            &session,
            StatusCode::UNAUTHORIZED,
            "The sign-in took too long or was finished already; sign in again.",
        ),
        Err(ServiceError::Disabled) => {
            login_again(&session, StatusCode::FORBIDDEN, "This account is disabled.")
        }
        Err(err) => Err(err.into()),
    }
}

/// The sign-in page again, with why.
fn login_again(
    session: &Session,
    status: StatusCode,
    error: &str,
) -> Result<HttpResponse, PageError> {
    let page = LoginPage {
        chrome: anonymous_chrome(session)?,
        email: String::new(),
        error: Some(error.into()),
    };
    render_with(status, &page)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn login_page(
    session: Session,
    admin: Option<ConsoleAdmin>,
) -> Result<HttpResponse, PageError> {
    if admin.is_some() {
        return Ok(redirect("/admin"));
    }
    let page = LoginPage {
        chrome: anonymous_chrome(&session)?,
        email: String::new(),
        error: None,
    };
    render_with(StatusCode::OK, &page)
}

pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    client: ClientInfo,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    check_form(&req, &session, &form.csrf_token)?;
    let outcome = signin::sign_in(&state, &client, &form.email, &form.password, |_, user| {
        Ok(user.role == Role::Admin)
    })
    .await;
    let (status, error) = match outcome {
        Ok((user, true)) => return signed_in(&session, &state, &user),
        Err(ServiceError::MfaRequired { mfa_token }) => {
            let page = CodePage {
                chrome: anonymous_chrome(&session)?,
                mfa_token,
                error: None,
            };
            return render_with(StatusCode::OK, &page);
        }
        Ok((_, false)) => (
            StatusCode::FORBIDDEN,
            "This account is not an admin.".to_owned(),
        ),
        Err(ServiceError::BadCredentials) => (
            StatusCode::UNAUTHORIZED,
            "The email or password is wrong.".into(),
        ),
        Err(ServiceError::Disabled) => (StatusCode::FORBIDDEN, "This account is disabled.".into()),
        Err(ServiceError::EmailUnverified) => (
            StatusCode::FORBIDDEN,
            "Confirm your email address first: follow the link in the mail we sent (a new one is \
             on its way if the last is more than two minutes old)."
                .into(),
        ),
        Err(err) => return Err(err.into()),
    };
    let page = LoginPage {
        chrome: anonymous_chrome(&session)?,
        email: form.email.trim().to_owned(),
        error: Some(error),
    };
    render_with(status, &page)
}

/// A form that only carries its CSRF token (a button).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

pub async fn logout(
    admin: ConsoleAdmin,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    admin.session.purge();
    flash(&admin.session, "ok", "Signed out.")?;
    Ok(redirect("/admin/login"))
}

#[derive(Template)]
#[template(path = "admin/setup.html")]
struct SetupPage {
    chrome: Chrome,
    token: String,
    first_name: String,
    last_name: String,
    email: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn setup_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<SetupQuery>,
) -> Result<HttpResponse, PageError> {
    let token = query.into_inner().token.unwrap_or_default();
    if !setup::is_open(&state, &token).await? {
        return Err(PageError::Forbidden(setup::GONE));
    }
    let page = SetupPage {
        chrome: anonymous_chrome(&session)?,
        token,
        first_name: String::new(),
        last_name: String::new(),
        email: String::new(),
        errors: FieldErrors::default(),
    };
    render_with(StatusCode::OK, &page)
}

pub async fn setup(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    client: ClientInfo,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, PageError> {
    check_form(&req, &session, &form.csrf_token)?;
    if !setup::is_open(&state, &form.token).await? {
        return Err(PageError::Forbidden(setup::GONE));
    }
    let form = form.into_inner();
    let parsed = NewUser::parse(NewUserInput {
        first_name: &form.first_name,
        last_name: &form.last_name,
        email: &form.email,
        password: &form.password,
        role: Role::Admin,
        disabled: false,
    });
    let show_again = |errors: FieldErrors| -> Result<HttpResponse, PageError> {
        let page = SetupPage {
            chrome: anonymous_chrome(&session)?,
            token: form.token.clone(),
            first_name: form.first_name.clone(),
            last_name: form.last_name.clone(),
            email: form.email.clone(),
            errors,
        };
        render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    let new_admin = match parsed {
        Ok(new_admin) => new_admin,
        Err(errors) => return show_again(errors),
    };
    let admin = match setup::create_first_admin(&state, &client, &form.token, new_admin).await {
        Ok(admin) => admin,
        Err(ServiceError::EmailTaken) => {
            let mut errors = FieldErrors::default();
            errors.add("email", "a user with that email exists");
            return show_again(errors);
        }
        Err(err) => return Err(err.into()),
    };
    start_session(&session, &state, &admin)?;
    flash(&session, "ok", "Welcome! Your admin account is ready.")?;
    Ok(redirect("/admin"))
}

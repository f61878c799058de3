//! `/admin/login`, `/admin/logout` and the first-admin `/admin/setup`.

use super::{
    Chrome, ConsoleAdmin, PageError, anonymous_chrome, check_form, flash, redirect, render_with,
    start_session,
};
use crate::audit::{Event, Outcome};
use crate::auth::signin::{self, SignInError};
use crate::client::ClientInfo;
use crate::db::users;
use crate::domain::{FieldErrors, NewUser, NewUserInput, Role};
use crate::errors::ApiError;
use crate::routes::api::{Actor, users::create_user};
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
        Ok(user.role == Role::Admin.as_str())
    })
    .await;
    let (status, error) = match outcome {
        Ok((user, true)) => {
            start_session(&session, &state, &user)?;
            flash(&session, "ok", format!("Signed in as {}.", user.email))?;
            return Ok(redirect("/admin"));
        }
        Ok((_, false)) => (
            StatusCode::FORBIDDEN,
            "This account is not an admin.".to_owned(),
        ),
        Err(SignInError::BadCredentials) => (
            StatusCode::UNAUTHORIZED,
            "The email or password is wrong.".into(),
        ),
        Err(SignInError::Disabled) => (StatusCode::FORBIDDEN, "This account is disabled.".into()),
        Err(SignInError::Throttled { retry_after }) => {
            return Err(PageError::TooManyRequests { retry_after });
        }
        Err(SignInError::Api(err)) => return Err(err.into()),
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

const SETUP_GONE: &str = "This set-up link is not valid: an admin exists already, or the link is from an earlier \
                          start of the server";

/// Whether `token` is the set-up token and no admin exists yet.
async fn setup_open(state: &AppState, token: &str) -> Result<bool, PageError> {
    if !state.setup_token_matches(token) {
        return Ok(false);
    }
    Ok(!state.read(|conn| Ok(users::any_admin(conn)?)).await?)
}

pub async fn setup_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<SetupQuery>,
) -> Result<HttpResponse, PageError> {
    let token = query.into_inner().token.unwrap_or_default();
    if !setup_open(&state, &token).await? {
        return Err(PageError::Forbidden(SETUP_GONE));
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
    if !setup_open(&state, &form.token).await? {
        return Err(PageError::Forbidden(SETUP_GONE));
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
    // Taking the token makes it single-use, even for two forms sent at once.
    if !state.take_setup_token(&form.token) {
        return Err(PageError::Forbidden(SETUP_GONE));
    }
    let admin = match create_user(&state, &Actor::anonymous(), &client, new_admin).await {
        Ok(admin) => admin,
        Err(err) => {
            state.restore_setup_token(form.token.clone());
            return match err {
                ApiError::Conflict(_) => {
                    let mut errors = FieldErrors::default();
                    errors.add("email", "a user with that email exists");
                    show_again(errors)
                }
                other => Err(other.into()),
            };
        }
    };
    let (id, now) = (admin.id.clone(), state.now_naive());
    state
        .write(move |conn| {
            Event::new(&id, "setup", Outcome::Ok)
                .target(&id)
                .client(&client)
                .write(conn, now)?;
            Ok(())
        })
        .await?;
    log::info!("the first admin was created through /admin/setup");
    start_session(&session, &state, &admin)?;
    flash(&session, "ok", "Welcome! Your admin account is ready.")?;
    Ok(redirect("/admin"))
}

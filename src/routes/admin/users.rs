//! `/admin/users`: the user table, and creating, editing, disabling,
//! deleting, setting a password, unlocking and ending sessions.

use super::chrome::Chrome;
use super::error::PageError;
use super::page::{query_string, redirect, render, render_with};
use super::session::ConsoleAdmin;
use super::signin::CsrfForm;
use super::when::When;
use crate::db::models::{SessionRow, UserRow};
use crate::db::outbox::{self, MailRow};
use crate::db::sessions;
use crate::domain::{FieldErrors, NewUser, NewUserInput, Role, UserChanges, UserId};
use crate::service::listing::{ListParams, UserListing};
use crate::service::sessions::Whose;
use crate::service::{ServiceError, email, passwords, sessions as session_ops, users};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;
use serde::Deserialize;

/// A user as the table shows it.
pub struct UserLine {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: When,
    /// `None`: never signed in.
    pub last_login_at: Option<When>,
    /// Two-factor sign-in is on.
    pub mfa: bool,
    pub email_verified: bool,
}

impl UserLine {
    pub fn of(row: &UserRow, now: NaiveDateTime) -> Self {
        Self {
            id: row.id.to_string(),
            name: format!("{} {}", row.first_name, row.last_name),
            email: row.email.clone(),
            role: row.role.to_string(),
            mfa: row.mfa,
            email_verified: row.email_verified,
            disabled: row.disabled,
            created_at: When::at(row.created_at, now),
            last_login_at: row.last_login_at.map(|at| When::at(at, now)),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    disabled: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    cursor: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserLine>,
    q: String,
    role: String,
    disabled: String,
    sort: String,
    /// The query string of the filters, for the first page.
    filters: String,
    /// The query string of the next page, if there is one.
    next: Option<String>,
    first_page: bool,
}

/// An empty form field means "no filter".
fn given(value: &str) -> Option<&str> {
    Some(value).filter(|v| !v.is_empty())
}

pub async fn list(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let listing = UserListing::parse(ListParams {
        q: given(&query.q),
        role: given(&query.role),
        disabled: given(&query.disabled),
        sort: given(&query.sort),
        limit: None,
        cursor: given(&query.cursor),
    })?;
    let page = users::list(&state, &admin.actor(), listing).await?;
    let filters = query_string(&[
        ("q", &query.q),
        ("role", &query.role),
        ("disabled", &query.disabled),
        ("sort", &query.sort),
    ]);
    let page = UsersPage {
        chrome: admin.chrome("users")?,
        users: page
            .items
            .iter()
            .map(|row| UserLine::of(row, state.now_naive()))
            .collect(),
        first_page: query.cursor.is_empty(),
        next: page.next.map(|cursor| format!("{filters}&cursor={cursor}")),
        filters,
        q: query.q,
        role: query.role,
        disabled: query.disabled,
        sort: query.sort,
    };
    render(&page)
}

/// The fields of the new-user form, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct NewUserPage {
    chrome: Chrome,
    form: NewUserForm,
    errors: FieldErrors,
}

pub async fn new_page(admin: ConsoleAdmin) -> Result<HttpResponse, PageError> {
    let page = NewUserPage {
        chrome: admin.chrome("users")?,
        form: NewUserForm::default(),
        errors: FieldErrors::default(),
    };
    render(&page)
}

pub async fn create(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    form: web::Form<NewUserForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let mut form = form.into_inner();
    let mut errors = FieldErrors::default();
    let role = Role::parse(if form.role.is_empty() {
        "user"
    } else {
        &form.role
    })
    .map_err(|message| errors.add("role", message))
    .ok();
    let parsed = NewUser::parse(NewUserInput {
        first_name: &form.first_name,
        last_name: &form.last_name,
        email: &form.email,
        password: &form.password,
        role: role.unwrap_or(Role::User),
        disabled: false,
    });
    let outcome = match (parsed, errors.is_empty()) {
        (Ok(new_user), true) => {
            match users::create(&state, &admin.actor(), &admin.client(), new_user).await {
                Ok(user) => {
                    admin.flash("ok", format!("Created {}.", user.email))?;
                    return Ok(redirect(&format!("/admin/users/{}", user.id)));
                }
                Err(ServiceError::EmailTaken) => {
                    errors.add("email", "a user with that email exists");
                    errors
                }
                Err(err) => return Err(err.into()),
            }
        }
        (Ok(_), false) => errors,
        (Err(mut field_errors), _) => {
            if let Some(messages) = errors.get("role") {
                messages
                    .iter()
                    .for_each(|m| field_errors.add("role", m.clone()));
            }
            field_errors
        }
    };
    form.password.clear(); // a refused password is never sent back
    let page = NewUserPage {
        chrome: admin.chrome("users")?,
        form,
        errors: outcome,
    };
    render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// A session as the user page shows it.
pub struct SessionLine {
    pub id: String,
    pub client_addr: String,
    pub user_agent: String,
    pub created_at: When,
    pub last_used_at: When,
}

impl SessionLine {
    fn of(row: &SessionRow, now: NaiveDateTime) -> Self {
        Self {
            id: row.id.clone(),
            client_addr: row.client_addr.clone().unwrap_or_else(|| "unknown".into()),
            user_agent: row.user_agent.clone().unwrap_or_else(|| "unknown".into()),
            created_at: When::at(row.created_at, now),
            last_used_at: When::at(row.last_used_at, now),
        }
    }
}

/// The edit form, as typed or as stored.
#[derive(Debug, Default, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    /// A checkbox: present when ticked.
    disabled: Option<String>,
    #[serde(default)]
    csrf_token: String,
}

impl EditForm {
    fn of(user: &UserRow) -> Self {
        Self {
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            email: user.email.clone(),
            role: user.role.to_string(),
            disabled: user.disabled.then(|| "on".into()),
            csrf_token: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/user_edit.html")]
struct EditPage {
    chrome: Chrome,
    user: UserLine,
    form: EditForm,
    errors: FieldErrors,
    password_error: Option<String>,
    sessions: Vec<SessionLine>,
    /// How much longer the account is locked, in words.
    locked_for: Option<String>,
    /// Mail is configured: the "send a password reset" button works.
    mail_on: bool,
    mails: Vec<MailLine>,
}

/// A mail to the user, as the user page lists it.
struct MailLine {
    what: &'static str,
    queued_at: When,
    /// `sent`, `waiting`, `expired`, `not sent`.
    status: &'static str,
    detail: String,
}

impl MailLine {
    fn of(row: &MailRow, now: NaiveDateTime) -> Self {
        let what = match row.kind.as_str() {
            "password_reset" => "Password reset link",
            "verify_email" => "Verification link",
            "email_changed" => "Email change notice",
            _ => "Mail",
        };
        let (status, detail) = match (row.outcome.as_deref(), row.done_at) {
            (Some("sent"), Some(at)) => (
                "sent",
                format!("to {} at {}", row.recipient, When::at(at, now).utc),
            ),
            (Some("expired"), _) => ("expired", "its link expired before it could be sent".into()),
            (Some("replaced"), _) => (
                "replaced",
                "a newer link replaced it before it was sent".into(),
            ),
            (Some(_), _) => (
                "not sent",
                match &row.last_error {
                    Some(error) => format!("the SMTP server refused it: {error}"),
                    None => "the address cannot receive mail".into(),
                },
            ),
            (None, _) => (
                "waiting",
                match &row.last_error {
                    Some(error) => format!(
                        "to {}; {} attempts so far, last: {error}",
                        row.recipient, row.attempts
                    ),
                    None => format!("to {}", row.recipient),
                },
            ),
        };
        MailLine {
            what,
            queued_at: When::at(row.created_at, now),
            status,
            detail,
        }
    }
}

async fn load_user(state: &AppState, id: &str) -> Result<UserRow, PageError> {
    let id = UserId::parse(id).ok_or(PageError::NotFound)?;
    Ok(users::find(state, id).await?)
}

/// Renders the user page with `form` and its errors.
async fn edit_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    user: &UserRow,
    form: EditForm,
    errors: FieldErrors,
    password_error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let (id, email, now) = (user.id.clone(), user.email.clone(), state.now_naive());
    let throttle = state.throttle.clone();
    let (live, locked_for, mails) = state
        .read(move |conn| {
            Ok::<_, PageError>((
                sessions::live_for_user(conn, &id, now)?,
                throttle.locked_for(conn, &email, now)?,
                outbox::of_user(conn, id.as_str(), 5)?,
            ))
        })
        .await?;
    let status = if errors.is_empty() && password_error.is_none() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = EditPage {
        chrome: admin.chrome("users")?,
        user: UserLine::of(user, now),
        form,
        errors,
        password_error,
        sessions: live.iter().map(|row| SessionLine::of(row, now)).collect(),
        locked_for: locked_for.map(super::when::duration),
        mail_on: state.settings.mail.is_some(),
        mails: mails.iter().map(|row| MailLine::of(row, now)).collect(),
    };
    render_with(status, &page)
}

pub async fn edit(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let user = load_user(&state, &id).await?;
    edit_page(
        &state,
        &admin,
        &user,
        EditForm::of(&user),
        FieldErrors::default(),
        None,
    )
    .await
}

pub async fn update(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    id: web::Path<String>,
    form: web::Form<EditForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let user = load_user(&state, &id).await?;
    let form = form.into_inner();
    let mut errors = FieldErrors::default();
    let role = Role::parse(&form.role)
        .map_err(|message| errors.add("role", message))
        .ok();
    let changes = UserChanges::parse(
        Some(&form.first_name),
        Some(&form.last_name),
        Some(&form.email),
        role,
        Some(form.disabled.is_some()),
    );
    let changes = match changes {
        Ok(changes) if errors.is_empty() => changes,
        Ok(_) => return edit_page(&state, &admin, &user, form, errors, None).await,
        Err(field_errors) => {
            return edit_page(&state, &admin, &user, form, field_errors, None).await;
        }
    };
    match users::update(
        &state,
        &admin.actor(),
        &admin.client(),
        user.id.clone(),
        changes,
    )
    .await
    {
        Ok(updated) => {
            admin.flash("ok", format!("Saved {}.", updated.email))?;
            Ok(redirect(&format!("/admin/users/{}", updated.id)))
        }
        Err(ServiceError::EmailTaken) => {
            let mut errors = FieldErrors::default();
            errors.add("email", "a user with that email exists");
            edit_page(&state, &admin, &user, form, errors, None).await
        }
        Err(ServiceError::LastAdmin) => {
            let mut errors = FieldErrors::default();
            errors.add("role", "this is the last admin: make another admin first");
            edit_page(&state, &admin, &user, form, errors, None).await
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn set_new_password(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    id: web::Path<String>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let user = load_user(&state, &id).await?;
    let password = match passwords::check_new(&user, &form.new_password) {
        Ok(password) => password,
        Err(message) => {
            return edit_page(
                &state,
                &admin,
                &user,
                EditForm::of(&user),
                FieldErrors::default(),
                Some(FieldErrors::sentence("new_password", &message)),
            )
            .await;
        }
    };
    passwords::set(&state, &admin.actor(), &admin.client(), &user, password).await?;
    admin.flash(
        "ok",
        format!(
            "New password set for {}; their sessions have ended.",
            user.email
        ),
    )?;
    Ok(redirect(&format!("/admin/users/{}", user.id)))
}

pub async fn unlock(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let user = load_user(&state, &id).await?;
    users::unlock(&state, &admin.actor(), &admin.client(), &user).await?;
    admin.flash("ok", format!("{} can sign in again.", user.email))?;
    Ok(redirect(&format!("/admin/users/{}", user.id)))
}

/// An admin mails a user a password-reset link (a user who cannot sign
/// in and would rather choose their own password than be given one).
pub async fn send_password_reset(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let user = load_user(&state, &id).await?;
    let (actor, client) = (admin.actor(), admin.client());
    match email::send_password_reset(&state, &actor, &client, user.id.clone()).await {
        Ok(user) => admin.flash(
            "ok",
            format!(
                "A password reset link is on its way to {}. It works for 30 minutes.",
                user.email
            ),
        )?,
        Err(ServiceError::Disabled) => admin.flash(
            "error",
            "This user is disabled: enable them first, then send the link.",
        )?,
        Err(other) => return Err(other.into()),
    }
    Ok(redirect(&format!("/admin/users/{}", user.id)))
}

/// An admin turns a user's two-factor sign-in off (a lost phone): every
/// session of theirs ends.
pub async fn reset_mfa(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let user = load_user(&state, &id).await?;
    crate::service::mfa::reset(&state, &admin.actor(), &admin.client(), user.id.as_str()).await?;
    admin.flash(
        "ok",
        format!(
            "Two-factor sign-in is off for {}; their sessions have ended.",
            user.email
        ),
    )?;
    Ok(redirect(&format!("/admin/users/{}", user.id)))
}

pub async fn revoke_session(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let (id, sid) = path.into_inner();
    let user = load_user(&state, &id).await?;
    session_ops::revoke(
        &state,
        &admin.actor(),
        &admin.client(),
        user.id.clone(),
        sid,
    )
    .await?;
    admin.flash("ok", "The session has ended.")?;
    Ok(redirect(&format!("/admin/users/{}", user.id)))
}

pub async fn revoke_all_sessions(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let user = load_user(&state, &id).await?;
    let whose = Whose::User(user.id.clone());
    let count = session_ops::revoke_all(&state, &admin.actor(), &admin.client(), whose).await?;
    admin.flash(
        "ok",
        format!(
            "Ended {count} session{}.",
            if count == 1 { "" } else { "s" }
        ),
    )?;
    Ok(redirect(&format!("/admin/users/{}", user.id)))
}

#[derive(Template)]
#[template(path = "admin/user_delete.html")]
struct DeletePage {
    chrome: Chrome,
    user: UserLine,
}

pub async fn confirm_delete(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let user = load_user(&state, &id).await?;
    render(&DeletePage {
        chrome: admin.chrome("users")?,
        user: UserLine::of(&user, state.now_naive()),
    })
}

pub async fn delete(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let user = load_user(&state, &id).await?;
    match users::delete(&state, &admin.actor(), &admin.client(), user.id.clone()).await {
        Ok(()) => {
            admin.flash("ok", format!("Deleted {}.", user.email))?;
            Ok(redirect("/admin/users"))
        }
        Err(ServiceError::LastAdmin) => {
            admin.flash(
                "error",
                "This is the last admin and cannot be deleted: make another admin first.",
            )?;
            Ok(redirect(&format!("/admin/users/{}", user.id)))
        }
        Err(err) => Err(err.into()),
    }
}

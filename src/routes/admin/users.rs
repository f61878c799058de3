//! `/admin/users`: the user table, and creating, editing, disabling,
//! deleting, setting a password, unlocking and ending sessions.

use super::signin::CsrfForm;
use super::{Chrome, ConsoleAdmin, PageError, query_string, redirect, render, render_with};
use crate::audit::{Event, Outcome};
use crate::auth::sessions::reason;
use crate::db::models::{SessionRow, UserRow};
use crate::db::users::{After, UserFilter, UserSort};
use crate::db::{sessions, users};
use crate::domain::{FieldErrors, NewUser, NewUserInput, PasswordPolicy, Role, UserChanges};
use crate::errors::ApiError;
use crate::routes::api::users::{apply_changes, create_user, delete_user, search_terms};
use crate::routes::api::views::rfc3339;
use crate::routes::api::{Actor, is_well_formed_id, passwords::set_password};
use crate::routes::cursor;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

const PAGE_SIZE: i64 = 50;

/// A user as the table shows it.
pub struct UserLine {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: String,
    pub last_login_at: String,
}

impl From<&UserRow> for UserLine {
    fn from(row: &UserRow) -> Self {
        Self {
            id: row.id.clone(),
            name: format!("{} {}", row.first_name, row.last_name),
            email: row.email.clone(),
            role: row.role.clone(),
            disabled: row.disabled,
            created_at: rfc3339(row.created_at),
            last_login_at: row
                .last_login_at
                .map(rfc3339)
                .unwrap_or_else(|| "never".into()),
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

pub async fn list(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let sort = match query.sort.as_str() {
        "" | "created" => UserSort::Newest,
        "email" => UserSort::Email,
        "last_login" => UserSort::LastLogin,
        _ => return Err(PageError::BadRequest("Unknown sort order.".into())),
    };
    let role = match query.role.as_str() {
        "" => None,
        other => Some(
            Role::parse(other)
                .map_err(|_| PageError::BadRequest("Unknown role.".into()))?
                .as_str(),
        ),
    };
    let disabled = match query.disabled.as_str() {
        "" => None,
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            return Err(PageError::BadRequest(
                "The disabled filter is `true` or `false`.".into(),
            ));
        }
    };
    let after = match query.cursor.as_str() {
        "" => None,
        raw => Some(
            cursor::decode(sort, raw)
                .ok_or_else(|| PageError::BadRequest("That page link is not valid.".into()))?,
        ),
    };
    let q = Some(search_terms(&query.q)).filter(|q| !q.is_empty());
    let filter = UserFilter {
        q,
        role,
        disabled,
        sort,
        after,
        limit: PAGE_SIZE + 1,
    };
    let mut rows = state
        .read(move |conn| Ok(users::list(conn, &filter)?))
        .await?;
    let filters = query_string(&[
        ("q", &query.q),
        ("role", &query.role),
        ("disabled", &query.disabled),
        ("sort", &query.sort),
    ]);
    let next = if rows.len() as i64 > PAGE_SIZE {
        rows.truncate(PAGE_SIZE as usize);
        rows.last().map(|last| {
            format!(
                "{filters}&cursor={}",
                cursor::encode(&After::of(sort, last))
            )
        })
    } else {
        None
    };
    let page = UsersPage {
        chrome: admin.chrome("users")?,
        users: rows.iter().map(UserLine::from).collect(),
        first_page: query.cursor.is_empty(),
        filters,
        q: query.q,
        role: query.role,
        disabled: query.disabled,
        sort: query.sort,
        next,
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
            match create_user(
                &state,
                &Actor::from_row(admin.user.clone()),
                &admin.client(),
                new_user,
            )
            .await
            {
                Ok(user) => {
                    admin.flash("ok", format!("Created {}.", user.email))?;
                    return Ok(redirect(&format!("/admin/users/{}", user.id)));
                }
                Err(ApiError::Conflict(_)) => {
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
    pub created_at: String,
    pub last_used_at: String,
}

impl From<&SessionRow> for SessionLine {
    fn from(row: &SessionRow) -> Self {
        Self {
            id: row.id.clone(),
            client_addr: row.client_addr.clone().unwrap_or_else(|| "unknown".into()),
            user_agent: row.user_agent.clone().unwrap_or_else(|| "unknown".into()),
            created_at: rfc3339(row.created_at),
            last_used_at: rfc3339(row.last_used_at),
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
            role: user.role.clone(),
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
    locked_for: Option<u64>,
}

async fn load_user(state: &AppState, id: &str) -> Result<UserRow, PageError> {
    if !is_well_formed_id(id) {
        return Err(PageError::NotFound);
    }
    let id = id.to_owned();
    state
        .read(move |conn| users::find(conn, &id)?.ok_or(ApiError::NotFound))
        .await
        .map_err(Into::into)
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
    let (live, locked_for) = state
        .read(move |conn| {
            Ok((
                sessions::live_for_user(conn, &id, now)?,
                throttle.locked_for(conn, &email, now)?,
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
        user: UserLine::from(user),
        form,
        errors,
        password_error,
        sessions: live.iter().map(SessionLine::from).collect(),
        locked_for,
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
    match apply_changes(
        &state,
        admin.user.id.clone(),
        admin.client(),
        user.id.clone(),
        changes,
    )
    .await
    {
        Ok(updated) => {
            admin.flash("ok", format!("Saved {}.", updated.email))?;
            Ok(redirect(&format!("/admin/users/{}", updated.id)))
        }
        Err(ApiError::Conflict(why)) => {
            let mut errors = FieldErrors::default();
            if why.contains("email") {
                errors.add("email", "a user with that email exists");
            } else {
                errors.add("role", "this is the last admin: make another admin first");
            }
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
    let context = [
        user.email.as_str(),
        user.first_name.as_str(),
        user.last_name.as_str(),
    ];
    let password = match PasswordPolicy::parse(&form.new_password, &context) {
        Ok(password) => password,
        Err(message) => {
            return edit_page(
                &state,
                &admin,
                &user,
                EditForm::of(&user),
                FieldErrors::default(),
                Some(message),
            )
            .await;
        }
    };
    set_password(
        &state,
        admin.user.id.clone(),
        admin.client(),
        user.id.clone(),
        password,
    )
    .await?;
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
    let (actor, client, now, throttle) = (
        admin.user.id.clone(),
        admin.client(),
        state.now_naive(),
        state.throttle.clone(),
    );
    let (target, email) = (user.id.clone(), user.email.clone());
    state
        .write(move |conn| {
            throttle.unlock(conn, &email)?;
            Event::new(&actor, "user.unlock", Outcome::Ok)
                .target(&target)
                .client(&client)
                .write(conn, now)?;
            Ok(())
        })
        .await?;
    admin.flash("ok", format!("{} can sign in again.", user.email))?;
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
    let (actor, client, now, target) = (
        admin.user.id.clone(),
        admin.client(),
        state.now_naive(),
        user.id.clone(),
    );
    let revoked = state
        .write_revoking(move |conn, revoked| {
            let session = sessions::find(conn, &sid)?
                .filter(|s| s.user_id.as_deref() == Some(target.as_str()));
            let Some(session) = session else {
                return Ok(false);
            };
            if sessions::revoke(conn, &session.id, now, reason::ADMIN)? {
                revoked.add(session.id.clone());
                Event::new(&actor, "session.revoke", Outcome::Ok)
                    .target(&target)
                    .client(&client)
                    .detail(serde_json::json!({ "session_id": session.id }))
                    .write(conn, now)?;
            }
            Ok(true)
        })
        .await?;
    if !revoked {
        return Err(PageError::NotFound);
    }
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
    let (actor, client, now, target) = (
        admin.user.id.clone(),
        admin.client(),
        state.now_naive(),
        user.id.clone(),
    );
    let count = state
        .write_revoking(move |conn, revoked| {
            let ids = sessions::revoke_all_for_user(conn, &target, None, now, reason::ADMIN)?;
            let count = ids.len();
            Event::new(&actor, "session.revoke_all", Outcome::Ok)
                .target(&target)
                .client(&client)
                .detail(serde_json::json!({ "sessions": count }))
                .write(conn, now)?;
            revoked.extend(ids);
            Ok(count)
        })
        .await?;
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
        user: UserLine::from(&user),
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
    match delete_user(
        &state,
        admin.user.id.clone(),
        admin.client(),
        user.id.clone(),
    )
    .await
    {
        Ok(()) => {
            admin.flash("ok", format!("Deleted {}.", user.email))?;
            Ok(redirect("/admin/users"))
        }
        Err(ApiError::Conflict(_)) => {
            admin.flash(
                "error",
                "This is the last admin and cannot be deleted: make another admin first.",
            )?;
            Ok(redirect(&format!("/admin/users/{}", user.id)))
        }
        Err(err) => Err(err.into()),
    }
}

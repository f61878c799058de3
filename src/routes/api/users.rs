//! `/api/user`: registration, profiles, listing and deletion.

use super::body::{self, present};
use super::{
    Actor, TargetId,
    views::{UserPage, UserView},
};
use crate::audit::{Event, Outcome};
use crate::auth::extractor::{Caller, MaybeCaller};
use crate::auth::sessions::reason;
use crate::client::ClientInfo;
use crate::config::Registration;
use crate::db::models::{NewUserRow, UserChangeset, UserRow, search_text};
use crate::db::users::{After, UserSort};
use crate::db::{StoreError, console_sessions, sessions, users};
use crate::domain::{NewUser, NewUserInput, Role, UserChanges};
use crate::errors::{ApiError, Challenge};
use crate::routes::cursor;
use crate::state::AppState;
use actix_web::{HttpResponse, http::header, web};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

/// `POST /api/user`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(min_length = 1, max_length = 100)]
    pub first_name: String,
    #[schema(min_length = 1, max_length = 100)]
    pub last_name: String,
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 128 characters, not a common or guessable password.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// Admins only.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Role>, nullable = false)]
    pub role: Option<Value>,
    /// Admins only.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>, nullable = false)]
    pub disabled: Option<Value>,
}

/// `PUT /api/user/{id}`: the profile fields are all required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceUser {
    #[schema(min_length = 1, max_length = 100)]
    pub first_name: String,
    #[schema(min_length = 1, max_length = 100)]
    pub last_name: String,
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Role>, nullable = false)]
    pub role: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>, nullable = false)]
    pub disabled: Option<Value>,
}

/// `PATCH /api/user/{id}`: any subset of the `PUT` fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, min_length = 1, max_length = 100)]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, min_length = 1, max_length = 100)]
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, format = Email, max_length = 254)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Role>, nullable = false)]
    pub role: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>, nullable = false)]
    pub disabled: Option<Value>,
}

impl From<ReplaceUser> for PatchUser {
    fn from(body: ReplaceUser) -> Self {
        PatchUser {
            first_name: Some(body.first_name),
            last_name: Some(body.last_name),
            email: Some(body.email),
            role: body.role,
            disabled: body.disabled,
        }
    }
}

/// The admin-only fields of a body: refused from anyone else, checked for
/// an admin.
struct AdminFields {
    role: Option<Role>,
    disabled: Option<bool>,
}

impl AdminFields {
    fn parse(
        actor: &Actor,
        role: Option<Value>,
        disabled: Option<Value>,
    ) -> Result<Self, ApiError> {
        if (role.is_some() || disabled.is_some()) && !actor.is_admin() {
            return Err(ApiError::Forbidden(
                "only an admin may set role or disabled",
            ));
        }
        let disabled = match disabled {
            None => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => return Err(ApiError::BadRequest("`disabled` must be a boolean".into())),
        };
        let role = match role {
            None => None,
            Some(Value::String(s)) => {
                Some(Role::parse(&s).map_err(|m| ApiError::field("role", m))?)
            }
            Some(_) => return Err(ApiError::BadRequest("`role` must be a string".into())),
        };
        Ok(Self { role, disabled })
    }
}

#[utoipa::path(post, path = "/api/user", tag = "users", request_body = CreateUser,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = UserView,
            headers(("Location" = String, description = "/api/user/{id}"))),
        (status = 400, description = "Malformed body", body = crate::errors::Problem),
        (status = 401, description = "Registration is for admins and no valid token was sent", body = crate::errors::Problem),
        (status = 403, description = "`role`/`disabled` from a non-admin", body = crate::errors::Problem),
        (status = 409, description = "The email is taken", body = crate::errors::Problem),
        (status = 422, description = "A field breaks a rule", body = crate::errors::Problem),
    ))]
pub async fn create(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    client: ClientInfo,
    body: body::Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let actor = match &caller.0 {
        Some(caller) => Actor::load(&state, caller).await?,
        None => Actor::anonymous(),
    };
    if state.settings.registration == Registration::Admin && !actor.is_admin() {
        return Err(match caller.0 {
            None => ApiError::Unauthorized {
                detail: "registration is open to admins only",
                challenge: Challenge::Bearer,
            },
            Some(_) => ApiError::Forbidden("registration is open to admins only"),
        });
    }
    let admin = AdminFields::parse(&actor, body.role, body.disabled)?;
    let new_user = NewUser::parse(NewUserInput {
        first_name: &body.first_name,
        last_name: &body.last_name,
        email: &body.email,
        password: &body.password,
        role: admin.role.unwrap_or(Role::User),
        disabled: admin.disabled.unwrap_or(false),
    })
    .map_err(ApiError::Unprocessable)?;
    let user = create_user(&state, &actor, &client, new_user).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/user/{}", user.id)))
        .json(UserView::from(&user)))
}

/// Creates a user: hashing off the async threads, the row and its audit
/// entry in one transaction. Shared with the admin console and start-up.
pub async fn create_user(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    new_user: NewUser,
) -> Result<UserRow, ApiError> {
    let email = new_user.email.as_str().to_owned();
    // Checked before hashing so a taken email does not cost an Argon2 run;
    // the unique index still decides a race.
    if state
        .read(move |conn| Ok(users::email_taken(conn, &email)?))
        .await?
    {
        return Err(email_taken());
    }
    let hash = state.hasher.hash(&new_user.password).await?;
    let now = state.now_naive();
    let actor_id = actor.audit_name();
    let client = client.clone();
    state
        .write(move |conn| {
            let id = uuid::Uuid::new_v4().to_string();
            let user = users::insert(
                conn,
                &NewUserRow {
                    id: &id,
                    email: new_user.email.as_str(),
                    first_name: new_user.first_name.as_str(),
                    last_name: new_user.last_name.as_str(),
                    password_hash: &hash,
                    role: new_user.role.as_str(),
                    disabled: new_user.disabled,
                    created_at: now,
                    updated_at: now,
                    search_text: search_text(
                        new_user.email.as_str(),
                        new_user.first_name.as_str(),
                        new_user.last_name.as_str(),
                    ),
                },
            )
            .map_err(email_conflict)?;
            Event::new(&actor_id, "user.create", Outcome::Ok)
                .target(&user.id)
                .client(&client)
                .detail(
                    json!({ "email": user.email, "role": user.role, "disabled": user.disabled }),
                )
                .write(conn, now)?;
            Ok(user)
        })
        .await
}

fn email_taken() -> ApiError {
    ApiError::Conflict("a user with that email exists")
}

/// A unique violation on insert or update can only be the email.
fn email_conflict(err: diesel::result::Error) -> ApiError {
    match StoreError::from(err) {
        StoreError::Duplicate(_) => email_taken(),
        other => other.into(),
    }
}

#[utoipa::path(get, path = "/api/user/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
    ))]
pub async fn me(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<UserView>, ApiError> {
    let actor = Actor::load(&state, &caller).await?;
    Ok(web::Json(UserView::from(actor.row()?)))
}

#[utoipa::path(get, path = "/api/user/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
        (status = 403, description = "Not this user and not an admin", body = crate::errors::Problem),
        (status = 404, description = "No such user", body = crate::errors::Problem),
    ))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: TargetId,
) -> Result<web::Json<UserView>, ApiError> {
    let actor = Actor::load(&state, &caller).await?;
    let user = actor.target(&state, &id.0).await?;
    Ok(web::Json(UserView::from(&user)))
}

#[utoipa::path(put, path = "/api/user/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id, or `me`")), request_body = ReplaceUser,
    responses(
        (status = 200, description = "The updated user", body = UserView),
        (status = 400, description = "Malformed body", body = crate::errors::Problem),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
        (status = 403, description = "Not allowed", body = crate::errors::Problem),
        (status = 404, description = "No such user", body = crate::errors::Problem),
        (status = 409, description = "Email taken, or the last admin", body = crate::errors::Problem),
        (status = 422, description = "A field breaks a rule", body = crate::errors::Problem),
    ))]
pub async fn replace(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    id: TargetId,
    body: body::Json<ReplaceUser>,
) -> Result<web::Json<UserView>, ApiError> {
    update(state, caller, client, id.0, body.into_inner().into()).await
}

#[utoipa::path(patch, path = "/api/user/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id, or `me`")), request_body = PatchUser,
    responses(
        (status = 200, description = "The updated user", body = UserView),
        (status = 400, description = "Malformed body", body = crate::errors::Problem),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
        (status = 403, description = "Not allowed", body = crate::errors::Problem),
        (status = 404, description = "No such user", body = crate::errors::Problem),
        (status = 409, description = "Email taken, or the last admin", body = crate::errors::Problem),
        (status = 422, description = "A field breaks a rule", body = crate::errors::Problem),
    ))]
pub async fn patch(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    id: TargetId,
    body: body::Json<PatchUser>,
) -> Result<web::Json<UserView>, ApiError> {
    update(state, caller, client, id.0, body.into_inner()).await
}

async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    id: String,
    body: PatchUser,
) -> Result<web::Json<UserView>, ApiError> {
    let actor = Actor::load(&state, &caller).await?;
    let id = actor.authorize_target(&id)?;
    let admin = AdminFields::parse(&actor, body.role, body.disabled)?;
    let changes = UserChanges::parse(
        body.first_name.as_deref(),
        body.last_name.as_deref(),
        body.email.as_deref(),
        admin.role,
        admin.disabled,
    )
    .map_err(ApiError::Unprocessable)?;
    let user = apply_changes(&state, actor.audit_name(), client, id, changes).await?;
    Ok(web::Json(UserView::from(&user)))
}

/// Applies a profile change in one transaction: the last-admin rule, the
/// unique email, revoking every session when the user is disabled, and the
/// audit entry with the fields before and after. Shared with the console.
pub async fn apply_changes(
    state: &AppState,
    actor_id: String,
    client: ClientInfo,
    id: String,
    changes: UserChanges,
) -> Result<UserRow, ApiError> {
    let now = state.now_naive();
    state
        .write_revoking(move |conn, revoked| {
            let before = users::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            revoked.user_changed(&id);
            if changes.removes_admin() && is_last_admin(conn, &before)? {
                return Err(ApiError::Conflict("this is the last admin"));
            }
            let changeset = UserChangeset {
                first_name: changes.first_name.map(|n| n.into_string()),
                last_name: changes.last_name.map(|n| n.into_string()),
                email: changes.email.map(|e| e.into_string()),
                role: changes.role.map(|r| r.as_str().to_owned()),
                disabled: changes.disabled,
                updated_at: now,
                search_text: None,
            };
            let after = users::update(conn, &id, changeset)
                .map_err(email_conflict)?
                .ok_or(ApiError::NotFound)?;
            if after.disabled && !before.disabled {
                console_sessions::delete_for_user(conn, &id)?;
                revoked.extend(sessions::revoke_all_for_user(
                    conn,
                    &id,
                    None,
                    now,
                    reason::USER_DISABLED,
                )?);
            }
            Event::new(&actor_id, "user.update", Outcome::Ok)
                .target(&id)
                .client(&client)
                .detail(changed_fields(&before, &after))
                .write(conn, now)?;
            Ok(after)
        })
        .await
}

/// Whether `user` is an enabled admin and no other enabled admin exists.
pub fn is_last_admin(
    conn: &mut diesel::SqliteConnection,
    user: &UserRow,
) -> Result<bool, ApiError> {
    Ok(user.role == Role::Admin.as_str()
        && !user.disabled
        && users::count_other_enabled_admins(conn, &user.id)? == 0)
}

fn changed_fields(before: &UserRow, after: &UserRow) -> Value {
    let mut changed = serde_json::Map::new();
    let mut compare = |field: &str, old: Value, new: Value| {
        if old != new {
            changed.insert(field.into(), json!({ "before": old, "after": new }));
        }
    };
    compare(
        "first_name",
        json!(before.first_name),
        json!(after.first_name),
    );
    compare("last_name", json!(before.last_name), json!(after.last_name));
    compare("email", json!(before.email), json!(after.email));
    compare("role", json!(before.role), json!(after.role));
    compare("disabled", json!(before.disabled), json!(after.disabled));
    Value::Object(changed)
}

#[utoipa::path(delete, path = "/api/user/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id, or `me`")),
    responses(
        (status = 204, description = "Deleted; the user's tokens stop working at once"),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
        (status = 403, description = "Not this user and not an admin", body = crate::errors::Problem),
        (status = 404, description = "No such user", body = crate::errors::Problem),
        (status = 409, description = "The last admin", body = crate::errors::Problem),
    ))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    id: TargetId,
) -> Result<HttpResponse, ApiError> {
    let actor = Actor::load(&state, &caller).await?;
    let id = actor.authorize_target(&id.0)?;
    delete_user(&state, actor.audit_name(), client, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes a user in one transaction: the last-admin rule, every session
/// revoked (the rows stay, so the revocation survives a restart), the row
/// deleted, the audit entry written. Shared with the console.
pub async fn delete_user(
    state: &AppState,
    actor_id: String,
    client: ClientInfo,
    id: String,
) -> Result<(), ApiError> {
    let now = state.now_naive();
    state
        .write_revoking(move |conn, revoked| {
            let user = users::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            revoked.user_changed(&id);
            if is_last_admin(conn, &user)? {
                return Err(ApiError::Conflict("this is the last admin"));
            }
            revoked.extend(sessions::revoke_all_for_user(
                conn,
                &id,
                None,
                now,
                reason::USER_DELETED,
            )?);
            users::delete(conn, &id)?;
            Event::new(&actor_id, "user.delete", Outcome::Ok)
                .target(&id)
                .client(&client)
                .detail(json!({ "email": user.email }))
                .write(conn, now)?;
            Ok(())
        })
        .await
}

/// The query of `GET /api/user`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Case-insensitive substring of email, first or last name.
    pub q: Option<String>,
    /// `user` or `admin`.
    #[param(value_type = Option<Role>)]
    pub role: Option<String>,
    /// `true` or `false`.
    #[param(value_type = Option<bool>)]
    pub disabled: Option<String>,
    /// 1 to 200, default 50.
    #[param(value_type = Option<u8>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
}

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

impl ListQuery {
    fn into_filter(self) -> Result<users::UserFilter, ApiError> {
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| ApiError::BadRequest(format!("`limit` must be 1 to {MAX_LIMIT}")))?,
        };
        let role = match self.role.as_deref() {
            None => None,
            Some(raw) => Some(
                Role::parse(raw)
                    .map_err(|_| ApiError::BadRequest("`role` must be `user` or `admin`".into()))?
                    .as_str(),
            ),
        };
        let disabled = match self.disabled.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "`disabled` must be `true` or `false`".into(),
                ));
            }
        };
        let after = match self.cursor.as_deref() {
            None => None,
            Some(raw) => Some(cursor::decode(UserSort::Newest, raw).ok_or_else(|| {
                ApiError::BadRequest("`cursor` is not one this server gave out".into())
            })?),
        };
        let q = self.q.map(|q| search_terms(&q)).filter(|q| !q.is_empty());
        Ok(users::UserFilter {
            q,
            role,
            disabled,
            sort: UserSort::Newest,
            after,
            limit,
        })
    }
}

#[utoipa::path(get, path = "/api/user", tag = "users", security(("bearer" = [])), params(ListQuery),
    responses(
        (status = 200, description = "One page of users, newest first", body = UserPage),
        (status = 400, description = "A query parameter is out of range or unreadable", body = crate::errors::Problem),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
        (status = 403, description = "Not an admin", body = crate::errors::Problem),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<web::Json<UserPage>, ApiError> {
    let actor = Actor::load(&state, &caller).await?;
    actor.require_admin()?;
    let mut filter = query.into_inner().into_filter()?;
    let limit = filter.limit;
    filter.limit += 1; // one more tells whether there is a next page
    let mut rows = state
        .read(move |conn| Ok(users::list(conn, &filter)?))
        .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .map(|row| cursor::encode(&After::of(UserSort::Newest, row)))
    } else {
        None
    };
    Ok(web::Json(UserPage {
        items: rows.iter().map(UserView::from).collect(),
        next_cursor,
    }))
}

/// A search as typed, trimmed, without control characters (a NUL would end
/// SQLite's pattern early and match everything).
pub fn search_terms(q: &str) -> String {
    q.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned()
}

#[utoipa::path(put, path = "/api/user/me", tag = "users", security(("bearer" = [])), request_body = ReplaceUser,
    responses(
        (status = 200, description = "The caller, updated", body = UserView),
        (status = 400, description = "Malformed body", body = crate::errors::Problem),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
        (status = 403, description = "`role`/`disabled` from a non-admin", body = crate::errors::Problem),
        (status = 409, description = "Email taken, or the last admin", body = crate::errors::Problem),
        (status = 422, description = "A field breaks a rule", body = crate::errors::Problem),
    ))]
pub async fn replace_me(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: body::Json<ReplaceUser>,
) -> Result<web::Json<UserView>, ApiError> {
    update(state, caller, client, "me".into(), body.into_inner().into()).await
}

#[utoipa::path(patch, path = "/api/user/me", tag = "users", security(("bearer" = [])), request_body = PatchUser,
    responses(
        (status = 200, description = "The caller, updated", body = UserView),
        (status = 400, description = "Malformed body", body = crate::errors::Problem),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
        (status = 403, description = "`role`/`disabled` from a non-admin", body = crate::errors::Problem),
        (status = 409, description = "Email taken, or the last admin", body = crate::errors::Problem),
        (status = 422, description = "A field breaks a rule", body = crate::errors::Problem),
    ))]
pub async fn patch_me(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: body::Json<PatchUser>,
) -> Result<web::Json<UserView>, ApiError> {
    update(state, caller, client, "me".into(), body.into_inner()).await
}

#[utoipa::path(delete, path = "/api/user/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted; the caller's tokens stop working at once"),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
        (status = 409, description = "The last admin", body = crate::errors::Problem),
    ))]
pub async fn delete_me(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
) -> Result<HttpResponse, ApiError> {
    delete(state, caller, client, TargetId("me".into())).await
}

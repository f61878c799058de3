//! `/api/user`: registration, profiles, listing and deletion.

use super::body::{self, present};
use super::caller::{Caller, MaybeCaller, TargetId};
use super::error::{ApiError, Problem};
use super::responses::{
    Conflicts, Invalid, LastAdmin, NoAdminFields, NoSuchUser, NoToken, NotAdmin, NotAllowed,
    NotAllowedToChange,
};
use super::views::{UserPage, UserView};
use crate::client::ClientInfo;
use crate::domain::{NewUser, NewUserInput, Role, UserChanges};
use crate::service::listing::{ListParams, UserListing};
use crate::service::{Actor, users};
use crate::state::AppState;
use actix_web::{HttpResponse, http::header, web};
use serde::Deserialize;
use serde_json::Value;
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

/// The admin-only fields of a body: refused from anyone else (whatever
/// their value), then checked for their JSON type and meaning.
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
        if role.is_some() || disabled.is_some() {
            actor.may_set_admin_fields()?;
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
        (status = 401, description = "Registration is for admins and no valid token was sent", body = Problem),
        NoAdminFields,
        (status = 409, description = "The email is taken", body = Problem),
        Invalid,
    ))]
pub async fn create(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    client: ClientInfo,
    body: body::Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let actor = caller.actor(&state).await?;
    actor.may_register(state.settings.registration)?;
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
    let user = users::register(&state, &actor, &client, new_user).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/user/{}", user.id)))
        .json(UserView::from(&user)))
}

#[utoipa::path(get, path = "/api/user/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        NoToken,
    ))]
pub async fn me(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<UserView>, ApiError> {
    let actor = caller.actor(&state).await?;
    Ok(web::Json(UserView::from(actor.row()?)))
}

#[utoipa::path(get, path = "/api/user/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserView),
        NoToken,
        NotAllowed,
        NoSuchUser,
    ))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: TargetId,
) -> Result<web::Json<UserView>, ApiError> {
    let actor = caller.actor(&state).await?;
    let user = actor.target(&state, &id.0).await?;
    Ok(web::Json(UserView::from(&user)))
}

#[utoipa::path(put, path = "/api/user/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id, or `me`")), request_body = ReplaceUser,
    responses(
        (status = 200, description = "The updated user", body = UserView),
        NoToken,
        NotAllowedToChange,
        NoSuchUser,
        Conflicts,
        Invalid,
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
        NoToken,
        NotAllowedToChange,
        NoSuchUser,
        Conflicts,
        Invalid,
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
    let actor = caller.actor(&state).await?;
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
    let user = users::update(&state, &actor, &client, id, changes).await?;
    Ok(web::Json(UserView::from(&user)))
}

#[utoipa::path(delete, path = "/api/user/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id, or `me`")),
    responses(
        (status = 204, description = "Deleted; the user's tokens stop working at once"),
        NoToken,
        NotAllowed,
        NoSuchUser,
        LastAdmin,
    ))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    id: TargetId,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    let id = actor.authorize_target(&id.0)?;
    users::delete(&state, &actor, &client, id).await?;
    Ok(HttpResponse::NoContent().finish())
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

#[utoipa::path(get, path = "/api/user", tag = "users", security(("bearer" = [])), params(ListQuery),
    responses(
        (status = 200, description = "One page of users, newest first", body = UserPage),
        (status = 400, description = "A query parameter is out of range or unreadable", body = Problem),
        NoToken,
        NotAdmin,
    ))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<web::Json<UserPage>, ApiError> {
    let actor = caller.actor(&state).await?;
    actor.require_admin()?;
    let query = query.into_inner();
    let listing = UserListing::parse(ListParams {
        q: query.q.as_deref(),
        role: query.role.as_deref(),
        disabled: query.disabled.as_deref(),
        sort: None,
        limit: query.limit.as_deref(),
        cursor: query.cursor.as_deref(),
    })?;
    let page = users::list(&state, &actor, listing).await?;
    Ok(web::Json(UserPage {
        items: page.items.iter().map(UserView::from).collect(),
        next_cursor: page.next,
    }))
}

#[utoipa::path(put, path = "/api/user/me", tag = "users", security(("bearer" = [])), request_body = ReplaceUser,
    responses(
        (status = 200, description = "The caller, updated", body = UserView),
        NoToken,
        NoAdminFields,
        Conflicts,
        Invalid,
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
        NoToken,
        NoAdminFields,
        Conflicts,
        Invalid,
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
        NoToken,
        LastAdmin,
    ))]
pub async fn delete_me(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
) -> Result<HttpResponse, ApiError> {
    delete(state, caller, client, TargetId("me".into())).await
}

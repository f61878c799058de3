//! `PUT /api/user/me/password` and `PUT /api/user/{id}/password`.

use super::body;
use super::caller::{Caller, TargetId};
use super::error::{ApiError, Problem};
use super::responses::{Invalid, NoSuchUser, NoToken, NotAdmin, Throttled};
use crate::client::ClientInfo;
use crate::service::passwords;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

#[utoipa::path(put, path = "/api/user/me/password", tag = "users", request_body = ChangePassword,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; every other session of the user is revoked"),
        (status = 401, description = "No valid access token, or the current password is wrong", body = Problem),
        Invalid,
        Throttled,
    ))]
pub async fn change_own(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: body::Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    passwords::change_own(
        &state,
        &actor,
        &client,
        Some(caller.session_id.clone()),
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(put, path = "/api/user/{id}/password", tag = "users", request_body = SetPassword,
    params(("id" = String, Path, description = "User id")), security(("bearer" = [])),
    responses(
        (status = 204, description = "Set; every session of the user is revoked"),
        NoToken,
        NotAdmin,
        NoSuchUser,
        Invalid,
    ))]
pub async fn set(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    id: TargetId,
    body: body::Json<SetPassword>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    actor.require_admin()?;
    let user = actor.target(&state, &id.0).await?;
    let new_password = passwords::check_new(&user, &body.new_password)
        .map_err(|message| ApiError::field("new_password", message))?;
    passwords::set(&state, &actor, &client, &user, new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}

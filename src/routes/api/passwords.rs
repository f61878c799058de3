//! `PUT /api/user/me/password` and `PUT /api/user/{id}/password`.

use super::body;
use super::{Actor, TargetId};
use crate::audit::{Event, Outcome};
use crate::auth::extractor::Caller;
use crate::auth::sessions::reason;
use crate::auth::signin;
use crate::client::ClientInfo;
use crate::db::{console_sessions, sessions, users};
use crate::domain::{Password, PasswordPolicy};
use crate::errors::ApiError;
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

fn parse_new_password(
    input: &str,
    user: &crate::db::models::UserRow,
) -> Result<Password, ApiError> {
    PasswordPolicy::parse(input, &[&user.email, &user.first_name, &user.last_name])
        .map_err(|message| ApiError::field("new_password", message))
}

#[utoipa::path(put, path = "/api/user/me/password", tag = "users", request_body = ChangePassword,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; every other session of the user is revoked"),
        (status = 400, description = "Malformed body", body = crate::errors::Problem),
        (status = 401, description = "No valid access token, or the current password is wrong", body = crate::errors::Problem),
        (status = 422, description = "The new password breaks a rule", body = crate::errors::Problem),
        (status = 429, description = "Too many failed attempts", body = crate::errors::Problem),
    ))]
pub async fn change_own(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: body::Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let actor = Actor::load(&state, &caller).await?;
    let user = actor.row()?;
    let new_password = parse_new_password(&body.new_password, user)?;
    let verified = signin::check_password(
        &state,
        &client,
        &user.email,
        &body.current_password,
        "password.change",
    )
    .await?;
    let hash = state.hasher.hash(&new_password).await?;
    let now = state.now_naive();
    let throttle = state.throttle.clone();
    state
        .write_revoking(move |conn, revoked| {
            let id = &verified.user.id;
            revoked.user_changed(id);
            verified.settle(&throttle, conn)?;
            users::set_password_hash(conn, id, &hash, now)?;
            console_sessions::delete_for_user(conn, id)?;
            revoked.extend(sessions::revoke_all_for_user(
                conn,
                id,
                Some(&caller.session_id),
                now,
                reason::PASSWORD_CHANGED,
            )?);
            Event::new(id, "user.password_change", Outcome::Ok)
                .target(id)
                .client(&client)
                .write(conn, now)?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(put, path = "/api/user/{id}/password", tag = "users", request_body = SetPassword,
    params(("id" = String, Path, description = "User id")), security(("bearer" = [])),
    responses(
        (status = 204, description = "Set; every session of the user is revoked"),
        (status = 400, description = "Malformed body", body = crate::errors::Problem),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
        (status = 403, description = "Not an admin", body = crate::errors::Problem),
        (status = 404, description = "No such user", body = crate::errors::Problem),
        (status = 422, description = "The new password breaks a rule", body = crate::errors::Problem),
    ))]
pub async fn set(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    id: TargetId,
    body: body::Json<SetPassword>,
) -> Result<HttpResponse, ApiError> {
    let actor = Actor::load(&state, &caller).await?;
    actor.require_admin()?;
    let user = actor.target(&state, &id.0).await?;
    let new_password = parse_new_password(&body.new_password, &user)?;
    set_password(&state, actor.audit_name(), client, user.id, new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An admin sets a user's password: every session of the user ends and the
/// account's sign-in throttle is cleared. Shared with the console.
pub async fn set_password(
    state: &AppState,
    actor_id: String,
    client: ClientInfo,
    user_id: String,
    new_password: Password,
) -> Result<(), ApiError> {
    let hash = state.hasher.hash(&new_password).await?;
    let now = state.now_naive();
    let throttle = state.throttle.clone();
    state
        .write_revoking(move |conn, revoked| {
            let user = users::find(conn, &user_id)?.ok_or(ApiError::NotFound)?;
            revoked.user_changed(&user.id);
            users::set_password_hash(conn, &user.id, &hash, now)?;
            console_sessions::delete_for_user(conn, &user.id)?;
            revoked.extend(sessions::revoke_all_for_user(
                conn,
                &user.id,
                None,
                now,
                reason::PASSWORD_RESET,
            )?);
            throttle.unlock(conn, &user.email)?;
            Event::new(&actor_id, "user.password_set", Outcome::Ok)
                .target(&user.id)
                .client(&client)
                .write(conn, now)?;
            Ok(())
        })
        .await
}

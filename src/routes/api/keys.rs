//! `/api/admin/keys`: the key ring, for admins.

use super::body::OptionalJson;
use super::caller::Caller;
use super::error::ApiError;
use super::responses::{NoToken, NotAdmin};
use super::views::KeyView;
use crate::client::ClientInfo;
use crate::service::keys;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Retire every other key at once (after a leak): all outstanding
    /// access tokens fail, sessions survive and refresh.
    #[serde(default)]
    pub revoke_previous: bool,
}

#[utoipa::path(get, path = "/api/admin/keys", tag = "keys", security(("bearer" = [])),
    responses(
        (status = 200, description = "The key ring, newest first, without secrets", body = Vec<KeyView>),
        NoToken,
        NotAdmin,
    ))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<Vec<KeyView>>, ApiError> {
    let actor = caller.actor(&state).await?;
    let rows = keys::list(&state, &actor).await?;
    Ok(web::Json(rows.iter().map(KeyView::from).collect()))
}

#[utoipa::path(post, path = "/api/admin/keys/rotate", tag = "keys", security(("bearer" = [])),
    request_body(content = Option<RotateRequest>, description = "Defaults to `{\"revoke_previous\": false}`"),
    responses(
        (status = 201, description = "The new active key", body = KeyView),
        NoToken,
        NotAdmin,
    ))]
pub async fn rotate(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: OptionalJson<RotateRequest>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    let revoke_previous = body.0.unwrap_or_default().revoke_previous;
    let key = keys::rotate(&state, &actor, &client, revoke_previous).await?;
    Ok(HttpResponse::Created().json(KeyView::from(&key)))
}

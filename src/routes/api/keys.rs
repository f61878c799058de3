//! `/api/admin/keys`: the key ring, for admins.

use super::Actor;
use super::body::OptionalJson;
use super::views::KeyView;
use crate::audit::{Event, Outcome};
use crate::auth::extractor::Caller;
use crate::auth::keys;
use crate::client::ClientInfo;
use crate::db::keys as key_store;
use crate::errors::ApiError;
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
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
        (status = 403, description = "Not an admin", body = crate::errors::Problem),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<Vec<KeyView>>, ApiError> {
    Actor::load(&state, &caller).await?.require_admin()?;
    let rows = list_keys(&state).await?;
    Ok(web::Json(rows.iter().map(KeyView::from).collect()))
}

/// The ring as it is now, with keys past their verify window retired first.
pub async fn list_keys(
    state: &AppState,
) -> Result<Vec<crate::db::models::SigningKeyRow>, ApiError> {
    let now = state.now_naive();
    let window = state.keys.verify_window();
    state
        .write(move |conn| {
            keys::retire_expired(conn, now, window)?;
            Ok(key_store::all(conn)?)
        })
        .await
}

#[utoipa::path(post, path = "/api/admin/keys/rotate", tag = "keys", security(("bearer" = [])),
    request_body(content = Option<RotateRequest>, description = "Defaults to `{\"revoke_previous\": false}`"),
    responses(
        (status = 201, description = "The new active key", body = KeyView),
        (status = 400, description = "Malformed body", body = crate::errors::Problem),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
        (status = 403, description = "Not an admin", body = crate::errors::Problem),
    ))]
pub async fn rotate(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: OptionalJson<RotateRequest>,
) -> Result<HttpResponse, ApiError> {
    let actor = Actor::load(&state, &caller).await?;
    actor.require_admin()?;
    let revoke_previous = body.0.unwrap_or_default().revoke_previous;
    let key = rotate_keys(&state, actor.audit_name(), client, revoke_previous).await?;
    Ok(HttpResponse::Created().json(KeyView::from(&key)))
}

/// Rotates the ring in the store, then swaps the in-memory ring, so the
/// next token is signed with the new key. Shared with the console.
pub async fn rotate_keys(
    state: &AppState,
    actor_id: String,
    client: ClientInfo,
    revoke_previous: bool,
) -> Result<crate::db::models::SigningKeyRow, ApiError> {
    let now = state.now_naive();
    let _ring = state.key_updates.lock().await;
    let (key, rows) = state
        .write(move |conn| {
            let key = keys::rotate(conn, revoke_previous, now)?;
            Event::new(&actor_id, "key.rotate", Outcome::Ok)
                .target(&key.kid)
                .client(&client)
                .detail(serde_json::json!({ "revoke_previous": revoke_previous }))
                .write(conn, now)?;
            Ok((key, key_store::all(conn)?))
        })
        .await?;
    state
        .keys
        .replace(&rows)
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    log::info!(
        "signing key rotated; new kid {} (revoke_previous: {revoke_previous})",
        key.kid
    );
    Ok(key)
}

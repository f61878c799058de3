//! `/api/admin/clients`: service clients, for admins.

use super::body::Json;
use super::caller::Caller;
use super::error::ApiError;
use super::responses::{Invalid, NoToken, NotAdmin};
use super::views::{ClientView, NewClientView};
use crate::client::ClientInfo;
use crate::domain::ClientName;
use crate::rfc3339::format as rfc3339;
use crate::service::clients;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// What the client is (1 to 100 characters), for the list and the
    /// audit log.
    pub name: String,
}

#[utoipa::path(get, path = "/api/admin/clients", tag = "clients", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every service client, revoked ones too, newest first; \
            never a secret", body = ClientList),
        NoToken,
        NotAdmin,
    ))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<ClientList>, ApiError> {
    let actor = caller.actor(&state).await?;
    let rows = clients::list(&state, &actor).await?;
    Ok(web::Json(ClientList {
        items: rows.iter().map(ClientView::from).collect(),
    }))
}

/// The list of service clients.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ClientList {
    pub items: Vec<ClientView>,
}

#[utoipa::path(post, path = "/api/admin/clients", tag = "clients", security(("bearer" = [])),
    request_body = CreateClient,
    responses(
        (status = 201, description = "The client, with its secret (shown this once)",
            body = NewClientView),
        NoToken,
        NotAdmin,
        Invalid,
    ))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: Json<CreateClient>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    // Admins only, before the body's rules are told.
    actor.require_admin()?;
    let name = ClientName::parse(&body.name).map_err(|why| ApiError::field("name", why))?;
    let (row, secret) = clients::create(&state, &actor, &client, name).await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(NewClientView {
            id: row.id,
            name: row.name,
            secret,
            created_at: rfc3339(row.created_at),
        }))
}

#[utoipa::path(delete, path = "/api/admin/clients/{id}", tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The client's id")),
    responses(
        (status = 204, description = "Revoked: its secret works no more, on any instance"),
        NoToken,
        NotAdmin,
        (status = 404, description = "No such client, or revoked already",
            body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    clients::revoke(&state, &actor, &client, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

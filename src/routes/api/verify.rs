//! Forward auth, `/api/auth/verify`: what a reverse proxy asks before it
//! lets a request through to another service (nginx `auth_request`,
//! Traefik `ForwardAuth`, Caddy `forward_auth`), in place of an API
//! gateway's custom authorizer. The check is the guarded API's own, in
//! memory: the token, then its user as this instance knows them. The
//! answer is in headers the proxy copies onto the request it forwards.

use super::caller::Caller;
use super::error::ApiError;
use super::responses::NoToken;
use crate::db::models::UserRow;
use crate::domain::Role;
use crate::state::AppState;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// Let only users of this role through (`admin`; `user` lets everyone).
    role: Option<String>,
}

/// The headers of a verified caller; a proxy copies them onto the request
/// it forwards (and must drop any the client sent itself).
pub const REMOTE_USER: &str = "remote-user";
pub const REMOTE_EMAIL: &str = "remote-email";
pub const REMOTE_NAME: &str = "remote-name";
pub const REMOTE_GROUPS: &str = "remote-groups";

#[utoipa::path(method(get, head, post, put, patch, delete, options), path = "/api/auth/verify",
    tag = "auth", security(("bearer" = [])),
    params(VerifyQuery),
    responses(
        (status = 200, description = "The token is valid; who it is, in headers (every method a \
            proxy forwards is answered alike)",
            headers(
                ("Remote-User" = String, description = "The user's id"),
                ("Remote-Email" = String, description = "The user's email"),
                ("Remote-Name" = String, description = "First and last name"),
                ("Remote-Groups" = String, description = "The user's role"),
            )),
        (status = 400, description = "`role` is neither `user` nor `admin`", body = super::error::Problem,
            content_type = "application/problem+json"),
        NoToken,
        (status = 403, description = "`role=admin` and the user is not an admin",
            body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, ApiError> {
    let required = match query.role.as_deref() {
        None => Role::User,
        Some(role) => {
            Role::parse(role).map_err(|why| ApiError::BadRequest(format!("`role` {why}")))?
        }
    };
    let actor = caller.actor(&state).await?;
    let user = actor.row()?;
    if required == Role::Admin && user.role != Role::Admin {
        return Err(ApiError::Forbidden("this needs an admin"));
    }
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    for (name, value) in remote_headers(user) {
        response.insert_header((HeaderName::from_static(name), value));
    }
    Ok(response.finish())
}

/// The `Remote-*` headers of `user`. Names and emails hold no control
/// characters (the store refuses them), so every value is a valid header
/// value; a name outside ASCII is sent as its UTF-8 bytes.
fn remote_headers(user: &UserRow) -> [(&'static str, HeaderValue); 4] {
    let value = |text: &str| {
        HeaderValue::from_bytes(text.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""))
    };
    [
        (REMOTE_USER, value(user.id.as_str())),
        (REMOTE_EMAIL, value(&user.email)),
        (
            REMOTE_NAME,
            value(&format!("{} {}", user.first_name, user.last_name)),
        ),
        (REMOTE_GROUPS, value(user.role.as_str())),
    ]
}

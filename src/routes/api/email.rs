//! The email flows: `POST /api/user/password/forgot`,
//! `POST /api/user/password/reset`, `POST /api/user/email/verify` and
//! `POST /api/user/me/email/verify`.

use super::body;
use super::caller::Caller;
use super::error::{ApiError, Problem};
use super::responses::{Invalid, NoToken};
use crate::client::ClientInfo;
use crate::service::email;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPassword {
    #[schema(example = "ada@example.com")]
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// The token from the mail (also in its link).
    pub token: String,
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmail {
    /// The token from the verification mail (also in its link).
    pub token: String,
}

#[utoipa::path(post, path = "/api/user/password/forgot", tag = "email",
    request_body = ForgotPassword, security(()),
    responses(
        (status = 202, description = "Accepted, whether or not the address is a user's: if it \
            is, a reset link is mailed (at most one per address per 2 minutes)"),
        Invalid,
        (status = 503, description = "Email is not configured here, or the store is busy",
            body = Problem),
    ))]
pub async fn forgot(
    state: web::Data<AppState>,
    client: ClientInfo,
    body: body::Json<ForgotPassword>,
) -> Result<HttpResponse, ApiError> {
    email::forgot_password(&state, &client, &body.email).await?;
    Ok(HttpResponse::Accepted().finish())
}

#[utoipa::path(post, path = "/api/user/password/reset", tag = "email",
    request_body = ResetPassword, security(()),
    responses(
        (status = 204, description = "The password is set; every session of the user ended"),
        (status = 400, description = "The token is unknown, used, expired or replaced", body = Problem),
        (status = 403, description = "The account is disabled", body = Problem),
        Invalid,
        (status = 503, description = "Email is not configured here, or the store is busy",
            body = Problem),
    ))]
pub async fn reset(
    state: web::Data<AppState>,
    client: ClientInfo,
    body: body::Json<ResetPassword>,
) -> Result<HttpResponse, ApiError> {
    email::reset_password(&state, &client, &body.token, &body.new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/user/email/verify", tag = "email",
    request_body = VerifyEmail, security(()),
    responses(
        (status = 204, description = "The address is verified"),
        (status = 400, description = "The token is unknown, used, expired or replaced", body = Problem),
        (status = 503, description = "Email is not configured here, or the store is busy",
            body = Problem),
    ))]
pub async fn verify(
    state: web::Data<AppState>,
    client: ClientInfo,
    body: body::Json<VerifyEmail>,
) -> Result<HttpResponse, ApiError> {
    email::verify_email(&state, &client, &body.token).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/user/me/email/verify", tag = "email",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A new verification link is mailed"),
        NoToken,
        (status = 409, description = "The address is verified already, or verification is off",
            body = Problem),
        (status = 429, description = "A link was mailed less than 2 minutes ago", body = Problem),
        (status = 503, description = "Email is not configured here, or the store is busy",
            body = Problem),
    ))]
pub async fn resend(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    email::resend_verification(&state, &actor, &client).await?;
    Ok(HttpResponse::Accepted().finish())
}

//! Sign-in, refresh and sign-out: `/api/user/login`, `/refresh-token`,
//! `/logout`, `/logout-all`.

use super::body::{self, OptionalJson};
use super::caller::Caller;
use super::error::{ApiError, Problem};
use super::responses::{NoToken, Throttled};
use super::views::TokenResponse;
use crate::client::ClientInfo;
use crate::domain::{RecoveryCode, TotpCode};
use crate::service::sessions::{self, SignOut, Tokens};
use crate::service::signin::Proof;
use crate::state::AppState;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// The second step of a sign-in: the `mfa_token` and one of `code` or
/// `recovery_code`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondStepRequest {
    pub mfa_token: String,
    /// The 6 digits the authenticator app shows.
    pub code: Option<String>,
    /// One of the recovery codes (each works once).
    pub recovery_code: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// The token answer, never cached by anyone on the way.
fn token_response(tokens: Tokens) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token: tokens.access_token,
            token_type: "Bearer",
            expires_in: tokens.expires_in,
            refresh_token: tokens.refresh_token,
            refresh_expires_in: tokens.refresh_expires_in,
        })
}

#[utoipa::path(post, path = "/api/user/login", tag = "tokens", request_body = LoginRequest, security(()),
    responses(
        (status = 200, description = "Signed in; a session was opened", body = TokenResponse),
        (status = 401, description = "Wrong email or password; or the password is right and a \
            second factor is needed (`type` `urn:latchkey:problem:mfa-required`, with `mfa_token`)",
            body = Problem),
        (status = 403, description = "The account is disabled; or, with \
            `EMAIL_VERIFICATION=required`, the address is not verified yet (`type` \
            `urn:latchkey:problem:email-unverified`; a new link is mailed)", body = Problem),
        Throttled,
    ))]
pub async fn login(
    state: web::Data<AppState>,
    client: ClientInfo,
    body: body::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let tokens = sessions::log_in(&state, &client, &body.email, &body.password).await?;
    Ok(token_response(tokens))
}

#[utoipa::path(post, path = "/api/user/login/mfa", tag = "tokens", request_body = SecondStepRequest,
    security(()),
    responses(
        (status = 200, description = "Signed in; a session was opened", body = TokenResponse),
        (status = 400, description = "Neither or both of `code` and `recovery_code`", body = Problem),
        (status = 401, description = "Unknown, used or expired `mfa_token`, or a wrong or \
            reused code", body = Problem),
        (status = 403, description = "The account is disabled", body = Problem),
        (status = 422, description = "A code that cannot be one (not 6 digits)", body = Problem),
        Throttled,
    ))]
pub async fn login_second_step(
    state: web::Data<AppState>,
    client: ClientInfo,
    body: body::Json<SecondStepRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let proof = match (body.code, body.recovery_code) {
        (Some(code), None) => {
            Proof::Code(TotpCode::parse(&code).map_err(|why| ApiError::field("code", why))?)
        }
        (None, Some(code)) => Proof::RecoveryCode(
            RecoveryCode::parse(&code).map_err(|why| ApiError::field("recovery_code", why))?,
        ),
        _ => {
            return Err(ApiError::BadRequest(
                "send one of `code` and `recovery_code`".into(),
            ));
        }
    };
    let tokens = sessions::log_in_second_step(&state, &client, &body.mfa_token, proof).await?;
    Ok(token_response(tokens))
}

#[utoipa::path(post, path = "/api/user/refresh-token", tag = "tokens", request_body = RefreshRequest,
    security(()),
    responses(
        (status = 200, description = "A new access token and a new refresh token; the old one is spent",
            body = TokenResponse),
        (status = 401, description = "Unknown, spent, expired or revoked refresh token", body = Problem),
    ))]
pub async fn refresh(
    state: web::Data<AppState>,
    client: ClientInfo,
    body: body::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let presented = body.into_inner().refresh_token;
    let tokens = sessions::refresh(&state, &client, presented).await?;
    Ok(token_response(tokens))
}

#[utoipa::path(post, path = "/api/user/logout", tag = "tokens",
    request_body(content = Option<RefreshRequest>, description = "The session's refresh token; or no body and a bearer token"),
    security((), ("bearer" = [])),
    responses((status = 204, description = "That session is revoked (also for an unknown token)")))]
pub async fn logout(
    state: web::Data<AppState>,
    // Deliberately lenient: an expired or unknown bearer token still gets 204.
    caller: Option<Caller>,
    client: ClientInfo,
    body: OptionalJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let which = match (body.0, caller) {
        (Some(body), _) => SignOut::RefreshToken(body.refresh_token),
        (None, Some(caller)) => SignOut::Session {
            id: caller.session_id,
            user: caller.user_id,
        },
        (None, None) => return Ok(HttpResponse::NoContent().finish()),
    };
    sessions::log_out(&state, &client, which).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/user/logout-all", tag = "tokens", security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session of the caller is revoked"),
        NoToken,
    ))]
pub async fn logout_all(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
) -> Result<HttpResponse, ApiError> {
    sessions::log_out_everywhere(&state, &client, caller.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

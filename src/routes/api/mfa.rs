//! Two-factor sign-in (TOTP) on the API: `/api/user/me/mfa/…` for the
//! signed-in user's own account, `/api/user/{id}/mfa` for an admin's reset.

use super::body::Json;
use super::caller::{Caller, TargetId};
use super::error::{ApiError, Problem};
use super::responses::{Invalid, NoToken, NotAdmin};
use crate::client::ClientInfo;
use crate::domain::TotpCode;
use crate::service::mfa;
use crate::state::AppState;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an authenticator app needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentView {
    /// The shared secret, base32, to type in.
    pub secret: String,
    /// The same as an `otpauth://totp/…` URL, for a QR code.
    pub otpauth_url: String,
}

/// Recovery codes, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten codes; each signs in once in place of a code.
    pub recovery_codes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The 6 digits the authenticator app shows now.
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnOffRequest {
    pub password: String,
    /// The 6 digits the authenticator app shows now.
    pub code: String,
}

fn code(input: &str) -> Result<TotpCode, ApiError> {
    TotpCode::parse(input).map_err(|why| ApiError::field("code", why))
}

/// Recovery codes, shown this once and cached by nobody.
fn codes_answer(recovery_codes: Vec<String>) -> HttpResponse {
    no_store(HttpResponse::Ok().json(RecoveryCodes { recovery_codes }))
}

fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    response
}

#[utoipa::path(post, path = "/api/user/me/mfa/totp", tag = "mfa", security(("bearer" = [])),
    responses(
        (status = 200, description = "A new secret, pending until confirmed with a code (a new \\
            enrolment replaces a pending one)", body = EnrolmentView),
        NoToken,
        (status = 409, description = "Two-factor sign-in is on already", body = Problem),
    ))]
pub async fn enrol(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    let enrolment = mfa::enrol(&state, &actor, &client).await?;
    Ok(no_store(HttpResponse::Ok().json(EnrolmentView {
        secret: enrolment.secret,
        otpauth_url: enrolment.otpauth_url,
    })))
}

#[utoipa::path(post, path = "/api/user/me/mfa/totp/confirm", tag = "mfa",
    security(("bearer" = [])), request_body = CodeRequest,
    responses(
        (status = 200, description = "On; the recovery codes, shown this once", body = RecoveryCodes),
        NoToken,
        (status = 409, description = "No enrolment to confirm, or on already", body = Problem),
        Invalid,
    ))]
pub async fn confirm(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    let code = code(&body.code)?;
    Ok(codes_answer(
        mfa::confirm(&state, &actor, &client, code).await?,
    ))
}

#[utoipa::path(post, path = "/api/user/me/mfa/recovery-codes", tag = "mfa",
    security(("bearer" = [])), request_body = CodeRequest,
    responses(
        (status = 200, description = "Ten new codes; the old ones stop working", body = RecoveryCodes),
        NoToken,
        (status = 401, description = "A wrong or reused code (counts as a failed sign-in)",
            body = Problem),
        (status = 409, description = "Two-factor sign-in is not on", body = Problem),
        Invalid,
        super::responses::Throttled,
    ))]
pub async fn replace_recovery_codes(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    let code = code(&body.code)?;
    Ok(codes_answer(
        mfa::replace_recovery_codes(&state, &actor, &client, code).await?,
    ))
}

#[utoipa::path(delete, path = "/api/user/me/mfa", tag = "mfa", security(("bearer" = [])),
    request_body = TurnOffRequest,
    responses(
        (status = 204, description = "Off: sign-in takes the password alone"),
        (status = 401, description = "No valid token, or a wrong password or code (counts as a \\
            failed sign-in)", body = Problem),
        (status = 409, description = "Two-factor sign-in is not on", body = Problem),
        Invalid,
        super::responses::Throttled,
    ))]
pub async fn turn_off(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: Json<TurnOffRequest>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    let body = body.into_inner();
    let code = code(&body.code)?;
    mfa::turn_off(&state, &actor, &client, &body.password, code).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/api/user/{id}/mfa", tag = "mfa", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Off, and every session of the user ended"),
        NoToken,
        NotAdmin,
        (status = 404, description = "No such user", body = Problem),
        (status = 409, description = "Two-factor sign-in is not on for this user", body = Problem),
    ))]
pub async fn reset(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    target: TargetId,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor(&state).await?;
    mfa::reset(&state, &actor, &client, &target.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

//! `POST /api/oauth/introspect`: token introspection (RFC 7662) for
//! services that hold a service client's credentials. The answer for an
//! active access token names its user; for anything else it is exactly
//! `{"active": false}`, whatever the reason.

use super::error::{ApiError, Challenge};
use crate::client::ClientInfo;
use crate::service::clients::{self, Introspected};
use crate::state::AppState;
use actix_web::error::UrlencodedError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The form a service posts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IntrospectRequest {
    /// The token to look at.
    pub token: String,
    /// `access_token` or `refresh_token`. Only access tokens are ever
    /// active here; a refresh token is `{"active": false}`.
    pub token_type_hint: Option<String>,
}

/// What introspection says. For anything but an active access token, only
/// `active: false`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    /// The user's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The user's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The user's role now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The session the token belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Always `access_token` when active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

impl From<Introspected> for Introspection {
    fn from(found: Introspected) -> Self {
        let Introspected { claims, user } = found;
        Self {
            active: true,
            sub: Some(claims.sub),
            username: Some(user.email),
            role: Some(user.role.as_str().to_owned()),
            sid: Some(claims.sid),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            jti: Some(claims.jti),
            token_type: Some("access_token"),
        }
    }
}

/// The form extractor's errors as problems: 413, 415 for a body that is
/// not a form, 400 for one that does not read (no `token`, one twice).
pub fn form_error(err: UrlencodedError) -> ApiError {
    match err {
        UrlencodedError::Overflow { .. } => ApiError::PayloadTooLarge,
        UrlencodedError::ContentType => {
            ApiError::UnsupportedMediaType("application/x-www-form-urlencoded")
        }
        UrlencodedError::Parse(err) => {
            ApiError::BadRequest(format!("the form could not be read: {err}"))
        }
        other => ApiError::BadRequest(format!("the form could not be read: {other}")),
    }
}

#[utoipa::path(post, path = "/api/oauth/introspect", tag = "auth", security(("client" = [])),
    request_body(content = IntrospectRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Whether the token is active, and if so whose it is",
            body = Introspection),
        (status = 400, description = "No `token`, or a `token_type_hint` that is neither \
            `access_token` nor `refresh_token`", body = super::error::Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "No valid service client credentials (HTTP Basic)",
            body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not declared application/x-www-form-urlencoded",
            body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed authentications of this client or from \
            this address", body = super::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: ClientInfo,
    form: Result<web::Form<IntrospectRequest>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    // Who asks comes first: without credentials, nothing about the body
    // is told.
    let (id, secret) = basic_credentials(&req).ok_or(ApiError::Unauthorized {
        detail: "this endpoint needs a service client's credentials (HTTP Basic)",
        challenge: Challenge::Basic,
    })?;
    let service = clients::authenticate(&state, &client, &id, &secret)
        .await
        .map_err(ApiError::from)?;
    let form = form?.into_inner();
    match form.token_type_hint.as_deref() {
        None | Some("access_token" | "refresh_token") => {}
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`token_type_hint` must be `access_token` or `refresh_token`".into(),
            )
            .into());
        }
    }
    let found = clients::introspect(&state, &service, &form.token)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(found.map(Introspection::from).unwrap_or_default()))
}

/// The id and secret of `Authorization: Basic …`. The id and secret
/// latchkey makes use only characters that form encoding (RFC 6749 §2.3.1)
/// leaves as they are, so nothing is decoded but the base64.
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    (!id.is_empty() && !secret.is_empty()).then(|| (id.to_owned(), secret.to_owned()))
}

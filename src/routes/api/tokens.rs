//! Sign-in, refresh and sign-out: `/api/user/login`, `/refresh-token`,
//! `/logout`, `/logout-all`.

use super::body::{self, OptionalJson};
use super::views::TokenResponse;
use crate::audit::{Event, Outcome};
use crate::auth::extractor::Caller;
use crate::auth::sessions::{self, Refresh, reason};
use crate::auth::signin;
use crate::client::ClientInfo;
use crate::db::models::{SessionRow, UserRow};
use crate::db::{refresh_tokens, sessions as session_store};
use crate::domain::Role;
use crate::errors::ApiError;
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Builds the token answer: a fresh access token for the session and the
/// refresh token just issued, never cached by anyone on the way.
fn token_response(
    state: &AppState,
    user: &UserRow,
    session: &SessionRow,
    refresh_token: String,
) -> Result<HttpResponse, ApiError> {
    let now = state.now();
    let role = Role::parse(&user.role).unwrap_or(Role::User);
    let access = state.tokens.issue(
        &state.keys,
        &user.id,
        &session.id,
        role,
        sessions::ends_at(session),
        now,
    )?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.expires_in,
            refresh_token,
            refresh_expires_in: sessions::refresh_expires_in(session),
        }))
}

#[utoipa::path(post, path = "/api/user/login", tag = "tokens", request_body = LoginRequest, security(()),
    responses(
        (status = 200, description = "Signed in; a session was opened", body = TokenResponse),
        (status = 400, description = "Malformed body", body = crate::errors::Problem),
        (status = 401, description = "Wrong email or password", body = crate::errors::Problem),
        (status = 403, description = "The account is disabled", body = crate::errors::Problem),
        (status = 429, description = "Too many failed sign-ins", body = crate::errors::Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn login(
    state: web::Data<AppState>,
    client: ClientInfo,
    body: body::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let lifetimes = state.lifetimes;
    let now = state.now_naive();
    let session_client = client.clone();
    let (user, (session, refresh_token)) = signin::sign_in(
        &state,
        &client,
        &body.email,
        &body.password,
        move |conn, user| Ok(sessions::open(conn, user, &session_client, lifetimes, now)?),
    )
    .await?;
    token_response(&state, &user, &session, refresh_token)
}

#[utoipa::path(post, path = "/api/user/refresh-token", tag = "tokens", request_body = RefreshRequest,
    security(()),
    responses(
        (status = 200, description = "A new access token and a new refresh token; the old one is spent",
            body = TokenResponse),
        (status = 400, description = "Malformed body", body = crate::errors::Problem),
        (status = 401, description = "Unknown, spent, expired or revoked refresh token", body = crate::errors::Problem),
    ))]
pub async fn refresh(
    state: web::Data<AppState>,
    client: ClientInfo,
    body: body::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let presented = body.into_inner().refresh_token;
    let lifetimes = state.lifetimes;
    let now = state.now_naive();
    let outcome = state
        .write_revoking(move |conn, revoked| {
            let outcome = sessions::rotate(conn, &presented, &client, lifetimes, now)?;
            if let Refresh::Reused { session_id } = &outcome {
                revoked.add(session_id.clone());
            }
            Ok(outcome)
        })
        .await?;
    match outcome {
        Refresh::Rotated(rotated) => {
            state.metrics.refresh("ok");
            token_response(
                &state,
                &rotated.user,
                &rotated.session,
                rotated.refresh_token,
            )
        }
        Refresh::Refused(why) => {
            log::info!("refresh refused: {why}");
            state.metrics.refresh("failed");
            Err(ApiError::unauthorized("the refresh token is not valid"))
        }
        Refresh::Reused { session_id } => {
            log::warn!("refresh token reuse detected: session {session_id} revoked");
            state.metrics.refresh("reuse");
            Err(ApiError::unauthorized("the refresh token is not valid"))
        }
    }
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
    let now = state.now_naive();
    let by_token = body
        .0
        .map(|b| sessions::hash_refresh_token(&b.refresh_token));
    let by_bearer = caller.map(|c| (c.session_id, c.user_id));
    state
        .write_revoking(move |conn, revoked| {
            let (session_id, user_id) = match (by_token, by_bearer) {
                (Some(hash), _) => match refresh_tokens::find_with_session(conn, &hash)? {
                    Some((_, session)) => (session.id, session.user_id),
                    None => return Ok(()),
                },
                (None, Some((sid, uid))) => (sid, Some(uid)),
                (None, None) => return Ok(()),
            };
            if session_store::revoke(conn, &session_id, now, reason::LOGOUT)? {
                revoked.add(session_id.clone());
                let actor = user_id.as_deref().unwrap_or(crate::audit::ANONYMOUS);
                Event::new(actor, "session.logout", Outcome::Ok)
                    .target(&session_id)
                    .client(&client)
                    .write(conn, now)?;
            }
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/user/logout-all", tag = "tokens", security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session of the caller is revoked"),
        (status = 401, description = "No valid access token", body = crate::errors::Problem),
    ))]
pub async fn logout_all(
    state: web::Data<AppState>,
    caller: Caller,
    client: ClientInfo,
) -> Result<HttpResponse, ApiError> {
    let now = state.now_naive();
    state
        .write_revoking(move |conn, revoked| {
            let ids = session_store::revoke_all_for_user(
                conn,
                &caller.user_id,
                None,
                now,
                reason::LOGOUT_ALL,
            )?;
            Event::new(&caller.user_id, "session.logout_all", Outcome::Ok)
                .target(&caller.user_id)
                .client(&client)
                .detail(serde_json::json!({ "sessions": ids.len() }))
                .write(conn, now)?;
            revoked.extend(ids);
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

//! "Who is calling": the one extractor the JSON API uses to authenticate a
//! request. It reads only `Authorization: Bearer`, never a query string, a
//! body or a cookie, and does no I/O: signature, claims and revocation are
//! all checked in memory.

use super::error::{ApiError, Challenge};
use crate::auth::tokens::AccessClaims;
use crate::domain::UserId;
use crate::service::Actor;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use std::convert::Infallible;
use std::future::{Ready, ready};

/// A request that carried a valid access token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: UserId,
    pub session_id: String,
    pub claims: AccessClaims,
}

/// A caller when an `Authorization` header was sent, nobody when none was;
/// a header that is sent but not valid is still refused.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).and_then(|caller| {
            caller.ok_or(ApiError::Unauthorized {
                detail: "this endpoint needs a bearer access token",
                challenge: Challenge::Bearer,
            })
        }))
    }
}

impl FromRequest for MaybeCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map(MaybeCaller))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Option<Caller>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = bearer_token(value.as_bytes()).ok_or_else(ApiError::invalid_token)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("AppState is not registered")))?;
    let claims = state.verify_access_token(token).map_err(|reason| {
        log::debug!("refused an access token: {reason}");
        ApiError::invalid_token()
    })?;
    let user_id = UserId::parse(&claims.sub).ok_or_else(ApiError::invalid_token)?;
    Ok(Some(Caller {
        user_id,
        session_id: claims.sid.clone(),
        claims,
    }))
}

impl Caller {
    /// The caller as the service layer's actor: their user as the store
    /// knows it now (a deleted or disabled one is refused like a revoked
    /// token).
    pub async fn actor(&self, state: &AppState) -> Result<Actor, ApiError> {
        Ok(Actor::load(state, &self.user_id).await?)
    }
}

impl MaybeCaller {
    /// The caller's actor, or the anonymous one when no token was sent.
    pub async fn actor(&self, state: &AppState) -> Result<Actor, ApiError> {
        match &self.0 {
            Some(caller) => caller.actor(state).await,
            None => Ok(Actor::anonymous()),
        }
    }
}

/// The `{id}` of a user path; `/api/user/me` routes have none and mean the
/// caller.
pub struct TargetId(pub String);

impl FromRequest for TargetId {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(TargetId(
            req.match_info().get("id").unwrap_or("me").to_owned(),
        )))
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme's
/// letter case does not matter, RFC 9110 §11.1).
pub fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn only_a_bearer_scheme_with_one_token_is_read() {
        assert_eq!(bearer_token(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Bearer a b"), None);
        assert_eq!(bearer_token(b"Bearer \xff"), None);
    }
}

#[cfg(test)]
mod properties {
    use super::bearer_token;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_header_bytes_are_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(token) = bearer_token(&bytes) {
                prop_assert!(!token.is_empty() && !token.contains(' '));
            }
        }
    }
}

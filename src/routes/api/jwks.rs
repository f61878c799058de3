//! `/.well-known/jwks.json`: the public keys that verify access tokens
//! (RFC 7517), so any JOSE library checks latchkey's tokens locally. Only
//! Ed25519 keys have a public half: with `JWT_ALGORITHM=HS256` the set is
//! empty. A retired key is never in it, nor any private part.

use super::error::ApiError;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use utoipa::ToSchema;

/// How long a client may keep the set. Short, so that a key retired in an
/// emergency leaves caches within a minute.
const MAX_AGE_SECONDS: u32 = 60;

/// A JSON Web Key Set.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwkSet {
    /// The active key first, then previous keys still verifying.
    pub keys: Vec<Jwk>,
}

/// An Ed25519 public key (RFC 8037).
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: &'static str,
    /// Always `Ed25519`.
    pub crv: &'static str,
    /// The public key, base64url.
    pub x: String,
    /// The `kid` of the tokens it verifies.
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub usage: &'static str,
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", security(()),
    responses(
        (status = 200, description = "The public keys of the active and previous Ed25519 keys \
            (`{\"keys\": []}` with HS256)", body = JwkSet,
            headers(("Cache-Control" = String, description = "`public, max-age=60`"))),
        (status = 400, description = "A query string: this document takes none",
            body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !req.query_string().is_empty() {
        return Err(ApiError::BadRequest(
            "/.well-known/jwks.json takes no query parameters".into(),
        ));
    }
    let keys = state
        .keys
        .public_keys(state.now())
        .into_iter()
        .map(|key| Jwk {
            kty: "OKP",
            crv: "Ed25519",
            x: URL_SAFE_NO_PAD.encode(key.x),
            kid: key.kid,
            alg: "EdDSA",
            usage: "sig",
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={MAX_AGE_SECONDS}"),
        ))
        .json(JwkSet { keys }))
}

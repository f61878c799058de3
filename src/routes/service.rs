//! `/healthz`, `/readyz` and `/api/openapi.json`.

use crate::db;
use crate::errors::ApiError;
use crate::routes::api::openapi::ApiDoc;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;
use utoipa::OpenApi;

/// 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 when the store answers, else 503.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.read(|conn| Ok(db::ping(conn)?)).await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({ "status": "ready" }))),
        Err(err) => Err(ApiError::Unavailable(format!(
            "readiness check failed: {err}"
        ))),
    }
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "service", security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
pub async fn openapi(doc: web::Data<serde_json::Value>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}

/// The document, rendered once at start.
pub fn openapi_document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

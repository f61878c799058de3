//! `/healthz`, `/readyz` and `/metrics`: for load balancers, orchestrators
//! and Prometheus.

use crate::db::{self, keys as key_store, outbox, sessions};
use crate::domain::KeyState;
use crate::metrics::Gauges;
use crate::routes::api::error::ApiError;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// How long `/readyz` waits for a pooled connection (a request waits 3 s).
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// 200 when the store answers, else 503 (within about a second).
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match db::run_within(&state.pool, READY_WITHIN, db::ping).await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({ "status": "ready" }))),
        Err(err) => Err(ApiError::Unavailable(format!(
            "readiness check failed: {err}"
        ))),
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = state.now_naive();
    let (live, keys, outbox) = state
        .read(move |conn| {
            Ok::<_, ApiError>((
                sessions::count_live(conn, now)?,
                key_store::all(conn)?,
                outbox::pending(conn)?,
            ))
        })
        .await?;
    let active = keys.iter().find(|k| k.state == KeyState::Active);
    let pool = state.pool.state();
    let body = state
        .metrics
        .render(Gauges {
            active_sessions: live,
            key_age_seconds: active.map_or(0, |k| (now - k.created_at).num_seconds()),
            pool_in_use: i64::from(pool.connections - pool.idle_connections),
            hasher_queue: state.hasher.queue_depth() as i64,
            mail_outbox: outbox,
        })
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("encoding metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}

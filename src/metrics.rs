//! `/metrics`: Prometheus text, through the `prometheus` crate. Requests
//! are counted by route *pattern* (`/api/user/{id}`, or `unmatched`), never
//! by raw path, so ids never become label values.

use crate::db::{keys as key_store, sessions};
use crate::errors::ApiError;
use crate::state::AppState;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::time::Instant;

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    logins: IntCounterVec,
    refreshes: IntCounterVec,
    active_sessions: IntGauge,
    key_age: IntGauge,
    pool_in_use: IntGauge,
    hasher_queue: IntGauge,
}

fn must<T>(result: prometheus::Result<T>) -> T {
    // The names and labels below are constants; registering them can only
    // fail for a programming error caught by the first test.
    result.expect("metric definitions are valid")
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric = must(IntCounterVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(metric.clone())));
            metric
        };
        let gauge = |name: &str, help: &str| {
            let metric = must(IntGauge::new(name, help));
            must(registry.register(Box::new(metric.clone())));
            metric
        };
        let http_requests = counter(
            "latchkey_http_requests_total",
            "HTTP requests answered, by route pattern, method and status",
            &["route", "method", "status"],
        );
        let logins = counter(
            "latchkey_logins_total",
            "Sign-ins, by outcome (ok, failed, throttled)",
            &["outcome"],
        );
        let refreshes = counter(
            "latchkey_refreshes_total",
            "Refreshes, by outcome (ok, failed, reuse)",
            &["outcome"],
        );
        for outcome in ["ok", "failed", "throttled"] {
            logins.with_label_values(&[outcome]);
        }
        for outcome in ["ok", "failed", "reuse"] {
            refreshes.with_label_values(&[outcome]);
        }
        let http_duration = must(HistogramVec::new(
            HistogramOpts::new(
                "latchkey_http_request_duration_seconds",
                "Time to answer, by route pattern",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        ));
        must(registry.register(Box::new(http_duration.clone())));
        Self {
            http_requests,
            http_duration,
            logins,
            refreshes,
            active_sessions: gauge("latchkey_active_sessions", "Sessions that are live now"),
            key_age: gauge(
                "latchkey_signing_key_age_seconds",
                "Age of the active signing key",
            ),
            pool_in_use: gauge(
                "latchkey_db_connections_in_use",
                "Store connections checked out of the pool",
            ),
            hasher_queue: gauge(
                "latchkey_hasher_queue_depth",
                "Password hashing jobs waiting for a hasher thread",
            ),
            registry,
        }
    }

    pub fn login(&self, outcome: &str) {
        self.logins.with_label_values(&[outcome]).inc();
    }

    pub fn refresh(&self, outcome: &str) {
        self.refreshes.with_label_values(&[outcome]).inc();
    }

    fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(seconds);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware (for `wrap_fn`): counts and times every request.
pub fn track<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let started = Instant::now();
    let method = req.method().to_string();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = srv.call(req);
    async move {
        let response = response.await?;
        if let Some(state) = state {
            let route = response
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into());
            let route = if route.is_empty() { "/".into() } else { route };
            state.metrics.observe(
                &route,
                &method,
                response.status().as_u16(),
                started.elapsed().as_secs_f64(),
            );
        }
        Ok(response)
    }
}

/// `GET /metrics`.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = state.now_naive();
    let (live, keys) = state
        .read(move |conn| Ok((sessions::count_live(conn, now)?, key_store::all(conn)?)))
        .await?;
    let metrics = &state.metrics;
    metrics.active_sessions.set(live);
    let active = keys.iter().find(|k| k.state == key_store::ACTIVE);
    metrics
        .key_age
        .set(active.map_or(0, |k| (now - k.created_at).num_seconds()));
    let pool = state.pool.state();
    metrics
        .pool_in_use
        .set(i64::from(pool.connections - pool.idle_connections));
    metrics.hasher_queue.set(state.hasher.queue_depth() as i64);
    let mut body = Vec::new();
    TextEncoder::new()
        .encode(&metrics.registry.gather(), &mut body)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("encoding metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}

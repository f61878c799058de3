//! What wraps every request: the console's session cookie, security
//! headers, CORS, the request id, metrics and the access log.

use crate::auth::console_store::DieselSessionStore;
use crate::auth::password::fill_random;
use crate::config::ConfigError;
use crate::db::server_secrets;
use crate::routes::admin::page::PAGE_CSP;
use crate::service::ServiceError;
use crate::state::AppState;
use actix_cors::Cors;
use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, TtlExtensionPolicy};
use actix_web::HttpMessage;
use actix_web::cookie::{Key, SameSite, time::Duration as CookieDuration};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Logger};
use actix_web::web;
use std::time::{Duration, Instant};

/// The console's session middleware: server-side sessions in the store,
/// a cookie that is `HttpOnly`, `SameSite=Strict` and (unless turned off
/// for plain-HTTP loopback) `Secure`, an idle timeout renewed by each
/// request. The cookie key is made once and kept in the store, so a
/// restart does not sign every admin out.
#[derive(Clone)]
pub struct ConsoleSessions {
    store: DieselSessionStore,
    key: Key,
    secure: bool,
    idle: Duration,
}

impl ConsoleSessions {
    pub async fn new(state: &web::Data<AppState>) -> Result<Self, ConfigError> {
        let now = state.now_naive();
        let secret = state
            .write(move |conn| {
                Ok(server_secrets::get_or_create(
                    conn,
                    "console_cookie_key",
                    now,
                    || {
                        let mut key = vec![0u8; 64];
                        fill_random(&mut key);
                        key
                    },
                )?)
            })
            .await
            .map_err(|e: ServiceError| {
                ConfigError::new(
                    "DATABASE_URL",
                    format!("cannot read the console cookie key: {e}"),
                )
            })?;
        let key = Key::try_from(secret.as_slice()).map_err(|e| {
            ConfigError::new(
                "DATABASE_URL",
                format!("the stored console cookie key is unusable: {e}"),
            )
        })?;
        Ok(Self {
            store: DieselSessionStore::new(state.pool.clone(), state.clock.clone()),
            key,
            secure: state.settings.cookie_secure(),
            idle: state.settings.console_idle_timeout,
        })
    }

    pub fn middleware(&self) -> SessionMiddleware<DieselSessionStore> {
        let idle = CookieDuration::seconds(self.idle.as_secs() as i64);
        SessionMiddleware::builder(self.store.clone(), self.key.clone())
            .cookie_name("latchkey_console".into())
            .cookie_path("/admin".into())
            .cookie_secure(self.secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Strict)
            .session_lifecycle(
                BrowserSession::default()
                    .state_ttl(idle)
                    .state_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
            )
            .build()
    }
}

/// The headers of every console page (SECURITY.md 25): the strict CSP,
/// a same-origin referrer policy and no caching of signed-in pages.
pub fn page_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::CACHE_CONTROL, "no-store"))
}

/// Cross-origin browser clients, from `CORS_ALLOWED_ORIGINS` only. An
/// origin not listed gets no CORS headers (the browser then refuses).
pub fn cors(origins: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .allowed_header("x-request-id")
        .expose_headers([
            "x-request-id",
            "retry-after",
            "location",
            "www-authenticate",
        ])
        .max_age(600);
    origins
        .iter()
        .fold(cors, |cors, origin| cors.allowed_origin(origin))
}

/// The headers every response carries; console pages set their own CSP
/// and referrer policy over these.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request id for the client's and the log's benefit (and HSTS when a
/// trusted proxy says the request came over TLS): the client's own
/// when it is well-formed (1–128 of `A-Z a-z 0-9 . _ -`), else a new one.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn well_formed_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub fn request_id<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>>
+ use<S, B>
where
    S: actix_web::dev::Service<
            actix_web::dev::ServiceRequest,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
{
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let tls = crate::routes::client::came_over_tls(req.request());
    let response = srv.call(req);
    async move {
        let mut response = response.await?;
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID.clone(), value);
        }
        if tls {
            response.headers_mut().insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            );
        }
        Ok(response)
    }
}

/// Middleware (for `wrap_fn`): counts and times every request by its route
/// pattern.
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

/// The access log: the request id, the method, the route pattern (never
/// the path's ids, the query string or a header), the status, the size and
/// the time taken.
pub fn access_log() -> Logger {
    Logger::new("%{x-request-id}o %{method}xi %{route}xo %s %b %Dms")
        .custom_request_replace("method", |req| req.method().to_string())
        .custom_response_replace("route", |res| {
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into())
        })
        .log_target("latchkey::access")
}

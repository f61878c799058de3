//! Building the application: the store, the key ring, the revocation set,
//! the hasher, and the whole route table in one place.

use crate::auth::console_store::DieselSessionStore;
use crate::auth::keys::{self, KeyRing, Prepared};
use crate::auth::password::Hasher;
use crate::auth::password::fill_random;
use crate::auth::revocation::RevocationSet;
use crate::auth::sessions::Lifetimes;
use crate::auth::throttle::Throttle;
use crate::auth::tokens::TokenService;
use crate::client::ClientInfo;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::db::{self, keys as key_store, sessions, users};
use crate::db::{console_sessions, server_secrets};
use crate::domain::{NewUser, NewUserInput, Role};
use crate::errors::{self, ApiError, json_error, method_not_allowed};
use crate::routes::api::{Actor, keys as key_routes, passwords, tokens, users as user_routes};
use crate::routes::{admin, service};
use crate::state::AppState;
use actix_cors::Cors;
use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite, time::Duration as CookieDuration};
use actix_web::dev::Server;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Logger};
use actix_web::{App, HttpMessage, HttpServer, Resource, web};
use chrono::TimeDelta;
use std::fmt;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

/// Why the application could not start, naming the variable to fix.
#[derive(Debug)]
pub struct StartupError {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for StartupError {}

fn fail(variable: &'static str) -> impl FnOnce(String) -> StartupError {
    move |reason| StartupError { variable, reason }
}

/// Users kept in memory at most (each a few hundred bytes).
const USER_CACHE_CAPACITY: usize = 100_000;

/// How often expired state is cleaned up (revocation set, keys, sessions).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);

/// A built, bound application, not yet serving.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Builds the application on the wall clock.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds the application with `clock` as its "now" (tests move it).
    /// Migrates the store, prepares the key ring, and binds the listener
    /// (port 0 picks a free port; see [`Application::port`]).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        // Bind first: a bad BIND_ADDRESS stops the start before the store
        // is touched.
        let listener = TcpListener::bind(&settings.bind_address).map_err(|e| {
            fail("BIND_ADDRESS")(format!("cannot listen on {}: {e}", settings.bind_address))
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| fail("BIND_ADDRESS")(e.to_string()))?;
        let state = web::Data::new(prepare_state(settings, clock).await?);
        ensure_admin_from_env(&state).await?;
        offer_setup_link(&state, local).await;
        let port = local.port();
        log::info!("latchkey listening on http://{local}");
        tokio::spawn(maintain(state.clone()));
        tokio::spawn(watch_store(state.clone()));
        let openapi = web::Data::new(service::openapi_document());
        let grace = state.settings.shutdown_grace;
        let console = ConsoleSessions::new(&state).await?;
        let state_handle = state.clone();
        let cors_origins = state.settings.cors_allowed_origins.clone();
        let pool_size = state.settings.database_pool_size.max(1) as usize;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(openapi.clone())
                .configure(configure)
                .service(
                    web::scope("/admin")
                        .configure(admin::configure)
                        .wrap(console.middleware())
                        .wrap(page_headers()),
                )
                .wrap(cors(&cors_origins))
                .wrap(security_headers())
                .wrap_fn(crate::metrics::track)
                .wrap_fn(request_id)
                // Outermost, so it sees the final status and the request id.
                // The route pattern, never the path's ids, the query string
                // or a header.
                .wrap(
                    Logger::new("%{x-request-id}o %{method}xi %{route}xo %s %b %Dms")
                        .custom_request_replace("method", |req| req.method().to_string())
                        .custom_response_replace("route", |res| {
                            res.request()
                                .match_pattern()
                                .unwrap_or_else(|| "unmatched".into())
                        })
                        .log_target("latchkey::access"),
                )
        })
        .shutdown_timeout(grace.as_secs())
        // Blocking threads only run store work, which needs a pooled
        // connection: more threads than connections would only wait for
        // one, each with its own stack (actix's default is 256 per worker).
        .worker_max_blocking_threads(pool_size)
        .listen(listener)
        .map_err(|e| fail("BIND_ADDRESS")(e.to_string()))?
        .run();
        Ok(Self {
            port,
            server,
            state: state_handle,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The one-time `/admin/setup` path (with its token) printed at start,
    /// while no admin exists.
    pub fn setup_path(&self) -> Option<String> {
        let token = self
            .state
            .setup_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        Some(format!("/admin/setup?token={token}"))
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The shared state on its own, for the command line: the store opened and
/// migrated, the key ring prepared, the hasher started; nothing served.
pub async fn open_state(settings: Settings) -> Result<web::Data<AppState>, StartupError> {
    Ok(web::Data::new(
        prepare_state(settings, Arc::new(SystemClock)).await?,
    ))
}

/// Opens and migrates the store, prepares the key ring and loads the
/// revocation set.
async fn prepare_state(
    settings: Settings,
    clock: Arc<dyn Clock>,
) -> Result<AppState, StartupError> {
    let store = fail("DATABASE_URL");
    let pool = db::connect(&settings.database_path, settings.database_pool_size)
        .map_err(fail("DATABASE_URL"))?;
    db::migrate(&pool).map_err(fail("DATABASE_URL"))?;
    let hasher = Hasher::start(settings.hasher_threads, settings.hasher_queue)
        .map_err(|e| fail("HASHER_THREADS")(e.to_string()))?;
    let window = TimeDelta::from_std(settings.access_token_ttl + settings.token_leeway)
        .map_err(|e| fail("ACCESS_TOKEN_TTL")(e.to_string()))?;
    let now = clock.now();
    let mut conn = pool
        .get()
        .map_err(|e| fail("DATABASE_URL")(format!("cannot open the store: {e}")))?;
    let secret = settings.secret_key.clone();
    let prepared = db::write(&mut conn, |conn| {
        keys::prepare(conn, secret.as_deref(), now.naive_utc(), window)
    })
    .map_err(|e: diesel::result::Error| {
        fail("DATABASE_URL")(format!("cannot prepare the key ring: {e}"))
    })?;
    match prepared {
        Prepared::Generated => log::info!("generated a new signing key"),
        Prepared::SecretKeyRotatedIn => {
            log::info!("SECRET_KEY is new to the key ring: it is now the active key")
        }
        Prepared::SecretKeyRetired => {
            log::warn!("SECRET_KEY names a retired key; it is not used for signing")
        }
        Prepared::Unchanged => {}
    }
    let rows = key_store::all(&mut conn).map_err(|e| fail("DATABASE_URL")(e.to_string()))?;
    let keys = KeyRing::new(&rows, window).map_err(|e| fail("SECRET_KEY")(e.to_string()))?;
    let revocations = RevocationSet::new(window);
    let revoked = sessions::revoked_since(&mut conn, revocations.since(now).naive_utc())
        .map_err(|e| store(e.to_string()))?;
    for (id, at) in revoked {
        revocations.insert_all([id], at.and_utc());
    }
    drop(conn);
    Ok(AppState {
        tokens: TokenService::new(&settings),
        throttle: Throttle::new(&settings),
        lifetimes: Lifetimes::new(&settings),
        settings,
        pool,
        clock,
        keys,
        revocations,
        hasher,
        setup_token: Mutex::new(None),
        key_updates: tokio::sync::Mutex::new(()),
        metrics: crate::metrics::Metrics::new(),
        users: crate::auth::user_cache::UserCache::new(USER_CACHE_CAPACITY),
    })
}

/// Creates the admin named by `ADMIN_EMAIL`/`ADMIN_PASSWORD` when no user
/// has that email yet: the unattended way to get a first admin.
async fn ensure_admin_from_env(state: &AppState) -> Result<(), StartupError> {
    let (Some(email), Some(password)) =
        (&state.settings.admin_email, &state.settings.admin_password)
    else {
        return Ok(());
    };
    let admin = NewUser::parse(NewUserInput {
        first_name: "Admin",
        last_name: "Admin",
        email,
        password,
        role: Role::Admin,
        disabled: false,
    })
    .map_err(|errors| {
        let (variable, field) = if errors.get("email").is_some() {
            ("ADMIN_EMAIL", "email")
        } else {
            ("ADMIN_PASSWORD", "password")
        };
        let reason = errors.get(field).map(|m| m.join("; ")).unwrap_or_default();
        StartupError { variable, reason }
    })?;
    let lookup = admin.email.as_str().to_owned();
    let exists = state
        .read(move |conn| Ok(users::email_taken(conn, &lookup)?))
        .await;
    if exists.map_err(|e| fail("DATABASE_URL")(e.to_string()))? {
        return Ok(());
    }
    let email = admin.email.as_str().to_owned();
    match user_routes::create_user(state, &Actor::anonymous(), &ClientInfo::default(), admin).await
    {
        Ok(_) => log::info!("created the admin {email} from ADMIN_EMAIL"),
        Err(ApiError::Conflict(_)) => {}
        Err(e) => return Err(fail("ADMIN_EMAIL")(format!("cannot create the admin: {e}"))),
    }
    Ok(())
}

/// On a store with no admin, makes a one-time set-up token and prints the
/// link that creates the first admin (the PocketBase way).
async fn offer_setup_link(state: &AppState, local: std::net::SocketAddr) {
    if let Ok(false) = state.read(|conn| Ok(users::any_admin(conn)?)).await {
        let mut bytes = [0u8; 24];
        fill_random(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        state.restore_setup_token(token.clone());
        log::warn!(
            "no admin exists yet: create the first one at http://{local}/admin/setup?token={token} \
             (the link works once), or set ADMIN_EMAIL and ADMIN_PASSWORD"
        );
    }
}

/// The console's session middleware: server-side sessions in the store,
/// a cookie that is `HttpOnly`, `SameSite=Strict` and (unless turned off
/// for plain-HTTP loopback) `Secure`, an idle timeout renewed by each
/// request. The cookie key is made once and kept in the store, so a
/// restart does not sign every admin out.
#[derive(Clone)]
struct ConsoleSessions {
    store: DieselSessionStore,
    key: Key,
    secure: bool,
    idle: Duration,
}

impl ConsoleSessions {
    async fn new(state: &web::Data<AppState>) -> Result<Self, StartupError> {
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
            .map_err(|e| {
                fail("DATABASE_URL")(format!("cannot read the console cookie key: {e}"))
            })?;
        let key = Key::try_from(secret.as_slice()).map_err(|e| {
            fail("DATABASE_URL")(format!("the stored console cookie key is unusable: {e}"))
        })?;
        Ok(Self {
            store: DieselSessionStore::new(state.pool.clone(), state.clock.clone()),
            key,
            secure: state.settings.cookie_secure(),
            idle: state.settings.console_idle_timeout,
        })
    }

    fn middleware(&self) -> SessionMiddleware<DieselSessionStore> {
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
fn page_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, admin::PAGE_CSP))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::CACHE_CONTROL, "no-store"))
}

/// How often the store is read for changes made by other processes.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Another process (the command line; later, another instance) may revoke
/// sessions, change users or the key ring in the store: read them every second,
/// so such a change holds here within a second. Revocations are read with
/// a margin, because a transaction may commit after a later one.
async fn watch_store(state: web::Data<AppState>) {
    let mut ticker = tokio::time::interval(WATCH_EVERY);
    let mut since = state.now() - TimeDelta::seconds(5);
    loop {
        ticker.tick().await;
        let checked_at = state.now();
        let from = since.naive_utc() - TimeDelta::seconds(5);
        let result = state
            .read(move |conn| {
                Ok((
                    sessions::revoked_since(conn, from)?,
                    key_store::all(conn)?,
                    users::changed_since(conn, from)?,
                ))
            })
            .await;
        let (revoked, rows, changed) = match result {
            Ok(found) => found,
            Err(e) => {
                log::warn!("watching the store failed ({e}); will retry");
                continue;
            }
        };
        for id in changed.iter().filter(|id| state.users.get(id).is_some()) {
            state.users.forget(id);
        }
        for (id, at) in revoked {
            if !state.revocations.is_revoked(&id) {
                state.revocations.insert_all([id], at.and_utc());
            }
        }
        if !state.keys.is_current(&rows) {
            let _ring = state.key_updates.lock().await;
            let rows = match state.read(|conn| Ok(key_store::all(conn)?)).await {
                Ok(rows) => rows,
                Err(_) => continue,
            };
            match state.keys.replace(&rows) {
                Ok(()) => log::info!("the key ring changed in the store; reloaded"),
                Err(e) => log::error!("the key ring in the store is unusable: {e}"),
            }
        }
        since = checked_at;
    }
}

/// Periodic clean-up: revocations whose tokens all expired leave the set,
/// verify-only keys past their window retire, dead sessions are deleted.
async fn maintain(state: web::Data<AppState>) {
    let mut ticker = tokio::time::interval(MAINTENANCE_EVERY);
    loop {
        ticker.tick().await;
        let now = state.now();
        state.revocations.prune(now);
        let window = state.keys.verify_window();
        let throttle = state.throttle.clone();
        let _ring = state.key_updates.lock().await;
        let result = state
            .write(move |conn| {
                let retired = keys::retire_expired(conn, now.naive_utc(), window)?;
                // A margin past the window, so a row outlives its last token.
                let swept =
                    sessions::sweep(conn, (now - window - TimeDelta::minutes(1)).naive_utc())?;
                console_sessions::sweep(conn, now.naive_utc())?;
                throttle.sweep(conn, now.naive_utc())?;
                let rows = if retired > 0 {
                    Some(key_store::all(conn)?)
                } else {
                    None
                };
                Ok((rows, swept))
            })
            .await;
        match result {
            Ok((rows, swept)) => {
                if let Some(Err(e)) = rows.map(|rows| state.keys.replace(&rows)) {
                    log::error!("key ring maintenance: {e}");
                }
                if swept > 0 {
                    log::debug!("swept {swept} expired sessions");
                }
            }
            Err(e) => log::warn!("maintenance failed ({}); will retry", e),
        }
    }
}

/// A resource that answers 405 with `Allow` for the methods it lacks.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed(allow)))
}

/// The route table.
fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(crate::BODY_LIMIT)
            .error_handler(|err, _req| json_error(err).into()),
    )
    .app_data(web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::BadRequest(format!("the query is not readable: {err}")).into()
    }))
    .app_data(web::PayloadConfig::new(crate::BODY_LIMIT))
    .service(resource("/healthz", "GET").route(web::get().to(service::healthz)))
    .service(resource("/readyz", "GET").route(web::get().to(service::readyz)))
    .service(resource("/metrics", "GET").route(web::get().to(crate::metrics::metrics)))
    .service(resource("/api/openapi.json", "GET").route(web::get().to(service::openapi)))
    .service(
        resource("/api/user", "GET, POST")
            .route(web::get().to(user_routes::list))
            .route(web::post().to(user_routes::create)),
    )
    .service(resource("/api/user/login", "POST").route(web::post().to(tokens::login)))
    .service(resource("/api/user/refresh-token", "POST").route(web::post().to(tokens::refresh)))
    .service(resource("/api/user/logout", "POST").route(web::post().to(tokens::logout)))
    .service(resource("/api/user/logout-all", "POST").route(web::post().to(tokens::logout_all)))
    .service(
        resource("/api/user/me", "GET, PUT, PATCH, DELETE")
            .route(web::get().to(user_routes::me))
            .route(web::put().to(user_routes::replace_me))
            .route(web::patch().to(user_routes::patch_me))
            .route(web::delete().to(user_routes::delete_me)),
    )
    .service(resource("/api/user/me/password", "PUT").route(web::put().to(passwords::change_own)))
    .service(
        resource("/api/user/{id}", "GET, PUT, PATCH, DELETE")
            .route(web::get().to(user_routes::get))
            .route(web::put().to(user_routes::replace))
            .route(web::patch().to(user_routes::patch))
            .route(web::delete().to(user_routes::delete)),
    )
    .service(resource("/api/user/{id}/password", "PUT").route(web::put().to(passwords::set)))
    .service(resource("/api/admin/keys", "GET").route(web::get().to(key_routes::list)))
    .service(resource("/api/admin/keys/rotate", "POST").route(web::post().to(key_routes::rotate)))
    .service(resource("/static/admin.css", "GET").route(web::get().to(admin::stylesheet)))
    .default_service(web::to(errors::not_found));
}

/// Cross-origin browser clients, from `CORS_ALLOWED_ORIGINS` only. An
/// origin not listed gets no CORS headers (the browser then refuses).
fn cors(origins: &[String]) -> Cors {
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
fn security_headers() -> DefaultHeaders {
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

fn request_id<S, B>(
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
    let tls = crate::client::came_over_tls(req.request());
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

//! Building the application: the store, the key ring, the revocation set,
//! the hasher, and the whole route table in one place.

use crate::auth::keys::{self, KeyRing, Prepared};
use crate::auth::password::Hasher;
use crate::auth::revocation::RevocationSet;
use crate::auth::sessions::Lifetimes;
use crate::auth::throttle::Throttle;
use crate::auth::tokens::TokenService;
use crate::client::ClientInfo;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::db::{self, keys as key_store, sessions, users};
use crate::domain::{NewUser, NewUserInput, Role};
use crate::errors::{self, ApiError, json_error, method_not_allowed};
use crate::routes::api::{Actor, keys as key_routes, passwords, tokens, users as user_routes};
use crate::routes::service;
use crate::state::AppState;
use actix_web::dev::Server;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Logger};
use actix_web::{App, HttpMessage, HttpServer, Resource, web};
use chrono::TimeDelta;
use std::fmt;
use std::net::TcpListener;
use std::sync::Arc;
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

/// How often expired state is cleaned up (revocation set, keys, sessions).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);

/// A built, bound application, not yet serving.
pub struct Application {
    port: u16,
    server: Server,
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
        announce_admin_status(&state).await;
        let port = local.port();
        log::info!("latchkey listening on http://{local}");
        tokio::spawn(maintain(state.clone()));
        let openapi = web::Data::new(service::openapi_document());
        let grace = state.settings.shutdown_grace;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(openapi.clone())
                .configure(configure)
                .wrap(
                    Logger::new("%{x-request-id}o \"%m %U\" %s %b %Dms")
                        .log_target("latchkey::access"),
                )
                .wrap(security_headers())
                .wrap_fn(request_id)
        })
        .shutdown_timeout(grace.as_secs())
        .listen(listener)
        .map_err(|e| fail("BIND_ADDRESS")(e.to_string()))?
        .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
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

async fn announce_admin_status(state: &AppState) {
    if let Ok(false) = state.read(|conn| Ok(users::any_admin(conn)?)).await {
        log::warn!(
            "no admin exists yet: set ADMIN_EMAIL and ADMIN_PASSWORD and restart to create one"
        );
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
        let result = state
            .write(move |conn| {
                let retired = keys::retire_expired(conn, now.naive_utc(), window)?;
                // A margin past the window, so a row outlives its last token.
                let swept =
                    sessions::sweep(conn, (now - window - TimeDelta::minutes(1)).naive_utc())?;
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
            .route(web::put().to(user_routes::replace))
            .route(web::patch().to(user_routes::patch))
            .route(web::delete().to(user_routes::delete)),
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
    .default_service(web::to(errors::not_found));
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

/// A request id for the client's and the log's benefit: the client's own
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
    let response = srv.call(req);
    async move {
        let mut response = response.await?;
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID.clone(), value);
        }
        Ok(response)
    }
}

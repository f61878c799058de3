//! Building the application: the shared state, the first admin, the
//! background loops, and the server with its middleware around the route
//! table (`router.rs`). Nothing here handles a request.

use crate::background;
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, Settings};
use crate::mail::smtp::Mailer;
use crate::middleware::{self, ConsoleSessions};
use crate::router;
use crate::routes::api::openapi;
use crate::service::setup;
use crate::state::AppState;
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;

/// A built, bound application, not yet serving.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Builds the application on the wall clock.
    pub async fn build(settings: Settings) -> Result<Self, ConfigError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds the application with `clock` as its "now" (tests move it).
    /// Migrates the store, prepares the key ring, and binds the listener
    /// (port 0 picks a free port; see [`Application::port`]).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        // Bind first: a bad BIND_ADDRESS stops the start before the store
        // is touched.
        let bind = |e: std::io::Error| {
            ConfigError::new(
                "BIND_ADDRESS",
                format!("cannot listen on {}: {e}", settings.bind_address),
            )
        };
        let listener = TcpListener::bind(&settings.bind_address).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        let mailer = settings.mail.as_ref().map(Mailer::new).transpose()?;
        let state = web::Data::new(AppState::open(settings, clock)?);
        setup::admin_from_env(&state).await?;
        if let Some(token) = setup::offer_link(&state).await {
            log::warn!(
                "no admin exists yet: create the first one at http://{local}/admin/setup?token={token} \
                 (the link works once), or set ADMIN_EMAIL and ADMIN_PASSWORD"
            );
        }
        log::info!("latchkey listening on http://{local}");
        background::spawn(&state, mailer);
        let openapi = web::Data::new(openapi::document());
        let console = ConsoleSessions::new(&state).await?;
        let (grace, pool_size) = (
            state.settings.shutdown_grace,
            state.settings.database_pool_size.max(1) as usize,
        );
        let (state_handle, cors_origins) =
            (state.clone(), state.settings.cors_allowed_origins.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(openapi.clone())
                .configure(|cfg| router::configure(cfg, &console))
                .wrap(middleware::cors(&cors_origins))
                .wrap(middleware::security_headers())
                .wrap_fn(middleware::track)
                .wrap_fn(middleware::request_id)
                // Outermost, so it sees the final status and the request id.
                .wrap(middleware::access_log())
        })
        .shutdown_timeout(grace.as_secs())
        // Blocking threads only run store work, which needs a pooled
        // connection: more threads than connections would only wait for
        // one, each with its own stack (actix's default is 256 per worker).
        .worker_max_blocking_threads(pool_size)
        .listen(listener)
        .map_err(|e| ConfigError::new("BIND_ADDRESS", e.to_string()))?
        .run();
        Ok(Self {
            port: local.port(),
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

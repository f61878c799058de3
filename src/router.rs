//! The route table: every path latchkey serves, the JSON API's and the
//! console's, in one place. A resource that exists answers 405 (with
//! `Allow`) for the methods it lacks; a path that does not exists answers
//! 404, as problem+json under `/api` and elsewhere, as a page under
//! `/admin`.

use crate::middleware::{ConsoleSessions, page_headers};
use crate::routes::api::body::json_error;
use crate::routes::api::error::{self as api_error, ApiError};
use crate::routes::api::{
    clients, email, introspect, jwks, keys, mfa, openapi, passwords, tokens, users, verify,
};
use crate::routes::{admin, service};
use actix_web::{Resource, web};

/// The whole application's routes; `console` is the session middleware
/// of `/admin`.
pub fn configure(cfg: &mut web::ServiceConfig, console: &ConsoleSessions) {
    cfg.service(
        web::scope("/admin")
            .configure(console_routes)
            .wrap(console.middleware())
            .wrap(page_headers()),
    )
    .configure(public_pages)
    .configure(api_routes);
}

/// The two public pages that mail links to (no console session).
fn public_pages(cfg: &mut web::ServiceConfig) {
    use admin::email;
    cfg.service(
        page("/reset-password", "GET, POST")
            .app_data(page_forms())
            .app_data(page_queries())
            .wrap(page_headers())
            .route(web::get().to(email::reset_page_for))
            .route(web::post().to(email::reset)),
    )
    .service(
        page("/verify-email", "GET, POST")
            .app_data(page_forms())
            .app_data(page_queries())
            .wrap(page_headers())
            .route(web::get().to(email::verify_page))
            .route(web::post().to(email::verify)),
    );
}

/// A resource that answers 405 with `Allow` for the methods it lacks.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(api_error::method_not_allowed(allow)))
}

/// The JSON API, the service endpoints and the console's stylesheet.
fn api_routes(cfg: &mut web::ServiceConfig) {
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
    .service(resource("/metrics", "GET").route(web::get().to(service::metrics)))
    .service(resource("/.well-known/jwks.json", "GET").route(web::get().to(jwks::jwks)))
    .service(resource("/api/openapi.json", "GET").route(web::get().to(openapi::openapi)))
    .service(
        resource("/api/user", "GET, POST")
            .route(web::get().to(users::list))
            .route(web::post().to(users::create)),
    )
    .service(resource("/api/user/login", "POST").route(web::post().to(tokens::login)))
    .service(
        resource("/api/user/login/mfa", "POST").route(web::post().to(tokens::login_second_step)),
    )
    .service(resource("/api/user/refresh-token", "POST").route(web::post().to(tokens::refresh)))
    .service(resource("/api/user/logout", "POST").route(web::post().to(tokens::logout)))
    .service(resource("/api/user/logout-all", "POST").route(web::post().to(tokens::logout_all)))
    .service(resource("/api/user/password/forgot", "POST").route(web::post().to(email::forgot)))
    .service(resource("/api/user/password/reset", "POST").route(web::post().to(email::reset)))
    .service(resource("/api/user/email/verify", "POST").route(web::post().to(email::verify)))
    .service(
        resource("/api/user/me", "GET, PUT, PATCH, DELETE")
            .route(web::get().to(users::me))
            .route(web::put().to(users::replace_me))
            .route(web::patch().to(users::patch_me))
            .route(web::delete().to(users::delete_me)),
    )
    .service(resource("/api/user/me/password", "PUT").route(web::put().to(passwords::change_own)))
    .service(resource("/api/user/me/email/verify", "POST").route(web::post().to(email::resend)))
    .service(resource("/api/user/me/mfa", "DELETE").route(web::delete().to(mfa::turn_off)))
    .service(resource("/api/user/me/mfa/totp", "POST").route(web::post().to(mfa::enrol)))
    .service(resource("/api/user/me/mfa/totp/confirm", "POST").route(web::post().to(mfa::confirm)))
    .service(
        resource("/api/user/me/mfa/recovery-codes", "POST")
            .route(web::post().to(mfa::replace_recovery_codes)),
    )
    .service(
        resource("/api/user/{id}", "GET, PUT, PATCH, DELETE")
            .route(web::get().to(users::get))
            .route(web::put().to(users::replace))
            .route(web::patch().to(users::patch))
            .route(web::delete().to(users::delete)),
    )
    .service(resource("/api/user/{id}/password", "PUT").route(web::put().to(passwords::set)))
    .service(resource("/api/user/{id}/mfa", "DELETE").route(web::delete().to(mfa::reset)))
    // Forward auth answers whatever method a proxy forwards.
    .service(
        resource(
            "/api/auth/verify",
            "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
        )
        .route(web::get().to(verify::verify))
        .route(web::head().to(verify::verify))
        .route(web::post().to(verify::verify))
        .route(web::put().to(verify::verify))
        .route(web::patch().to(verify::verify))
        .route(web::delete().to(verify::verify))
        .route(web::method(actix_web::http::Method::OPTIONS).to(verify::verify)),
    )
    .service(
        resource("/api/oauth/introspect", "POST")
            .app_data(
                web::FormConfig::default()
                    .limit(crate::BODY_LIMIT)
                    .error_handler(|err, _req| introspect::form_error(err).into()),
            )
            .route(web::post().to(introspect::introspect)),
    )
    .service(
        resource("/api/admin/clients", "GET, POST")
            .route(web::get().to(clients::list))
            .route(web::post().to(clients::create)),
    )
    .service(resource("/api/admin/clients/{id}", "DELETE").route(web::delete().to(clients::revoke)))
    .service(resource("/api/admin/keys", "GET").route(web::get().to(keys::list)))
    .service(resource("/api/admin/keys/rotate", "POST").route(web::post().to(keys::rotate)))
    .service(resource("/static/admin.css", "GET").route(web::get().to(admin::page::stylesheet)))
    .default_service(web::to(api_error::not_found));
}

/// A console page that answers 405 (as a page) for the methods it lacks.
fn page(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(admin::error::method_not_allowed(allow)))
}

/// A page's form that cannot be read is answered with a page.
fn page_forms() -> web::FormConfig {
    web::FormConfig::default()
        .limit(crate::BODY_LIMIT)
        .error_handler(|err, _req| {
            admin::error::PageError::BadRequest(format!("The form could not be read: {err}."))
                .into()
        })
}

/// A page's query that cannot be read is answered with a page.
fn page_queries() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        admin::error::PageError::BadRequest(format!("The address could not be read: {err}.")).into()
    })
}

/// The console, inside the `/admin` scope, behind its session middleware.
fn console_routes(cfg: &mut web::ServiceConfig) {
    use admin::{account, audit, clients, dashboard, keys, signin, users};
    cfg.app_data(page_forms())
        .app_data(page_queries())
        .service(page("", "GET").route(web::get().to(dashboard::dashboard)))
        .service(
            page("/setup", "GET, POST")
                .route(web::get().to(signin::setup_page))
                .route(web::post().to(signin::setup)),
        )
        .service(
            page("/login", "GET, POST")
                .route(web::get().to(signin::login_page))
                .route(web::post().to(signin::login)),
        )
        .service(page("/login/mfa", "POST").route(web::post().to(signin::login_code)))
        .service(page("/logout", "POST").route(web::post().to(signin::logout)))
        .service(page("/users", "GET").route(web::get().to(users::list)))
        .service(
            page("/users/new", "GET, POST")
                .route(web::get().to(users::new_page))
                .route(web::post().to(users::create)),
        )
        .service(
            page("/users/{id}", "GET, POST")
                .route(web::get().to(users::edit))
                .route(web::post().to(users::update)),
        )
        .service(
            page("/users/{id}/password", "POST").route(web::post().to(users::set_new_password)),
        )
        .service(page("/users/{id}/unlock", "POST").route(web::post().to(users::unlock)))
        .service(
            page("/users/{id}/password/reset-link", "POST")
                .route(web::post().to(users::send_password_reset)),
        )
        .service(page("/users/{id}/mfa/reset", "POST").route(web::post().to(users::reset_mfa)))
        .service(
            page("/users/{id}/sessions/revoke-all", "POST")
                .route(web::post().to(users::revoke_all_sessions)),
        )
        .service(
            page("/users/{id}/sessions/{sid}/revoke", "POST")
                .route(web::post().to(users::revoke_session)),
        )
        .service(
            page("/users/{id}/delete", "GET, POST")
                .route(web::get().to(users::confirm_delete))
                .route(web::post().to(users::delete)),
        )
        .service(page("/keys", "GET").route(web::get().to(keys::list)))
        .service(page("/keys/rotate", "POST").route(web::post().to(keys::rotate)))
        .service(
            page("/clients", "GET, POST")
                .route(web::get().to(clients::list))
                .route(web::post().to(clients::create)),
        )
        .service(page("/clients/{id}/revoke", "POST").route(web::post().to(clients::revoke)))
        .service(page("/account", "GET").route(web::get().to(account::show)))
        .service(page("/account/mfa/enrol", "POST").route(web::post().to(account::enrol)))
        .service(page("/account/mfa/confirm", "POST").route(web::post().to(account::confirm)))
        .service(
            page("/account/mfa/recovery-codes", "POST")
                .route(web::post().to(account::replace_recovery_codes)),
        )
        .service(page("/account/mfa/off", "POST").route(web::post().to(account::turn_off)))
        .service(page("/audit", "GET").route(web::get().to(audit::list)))
        .service(page("/audit/export", "GET").route(web::get().to(audit::export)))
        .default_service(web::to(admin::error::not_found));
}

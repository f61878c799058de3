//! `/api/openapi.json`, generated from the handlers' annotations and the
//! request and response types, so it cannot drift from the code.

use super::error::Problem;
use super::{clients, email, introspect, jwks, keys, mfa, passwords, tokens, users, verify, views};
use crate::domain::Role;
use actix_web::{HttpResponse, web};
use serde_json::json;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Type};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "latchkey",
        description = "Users and sign-in: registration, JWT access tokens, rotating refresh tokens, \
                       user management and the signing key ring.",
    ),
    paths(
        users::create, users::list, users::me, users::replace_me, users::patch_me, users::delete_me,
        users::get, users::replace, users::patch, users::delete,
        openapi, passwords::change_own, passwords::set,
        tokens::login, tokens::refresh, tokens::logout, tokens::logout_all,
        keys::list, keys::rotate, verify::verify, introspect::introspect, jwks::jwks,
        clients::list, clients::create, clients::revoke, tokens::login_second_step,
        mfa::enrol, mfa::confirm, mfa::replace_recovery_codes, mfa::turn_off, mfa::reset,
        email::forgot, email::reset, email::verify, email::resend,
    ),
    components(schemas(
        Problem, Role, views::UserView, views::UserPage, views::TokenResponse, views::KeyView,
        users::CreateUser, users::ReplaceUser, users::PatchUser,
        tokens::LoginRequest, tokens::RefreshRequest,
        passwords::ChangePassword, passwords::SetPassword, keys::RotateRequest,
        views::ClientView, views::NewClientView, clients::CreateClient, clients::ClientList,
        introspect::IntrospectRequest, introspect::Introspection, jwks::JwkSet, jwks::Jwk,
        tokens::SecondStepRequest, mfa::EnrolmentView, mfa::RecoveryCodes, mfa::CodeRequest,
        mfa::TurnOffRequest, email::ForgotPassword, email::ResetPassword, email::VerifyEmail,
    )),
    modifiers(&BearerScheme, &ProblemResponses),
    tags(
        (name = "users", description = "Registration and user management"),
        (name = "tokens", description = "Sign-in, refresh and sign-out"),
        (name = "keys", description = "The signing key ring (admins)"),
        (name = "auth", description = "Forward auth, token introspection and the JWKS, for other \
            services"),
        (name = "mfa", description = "Two-factor sign-in (TOTP)"),
        (name = "clients", description = "Service clients: credentials for introspection (admins)"),
        (name = "email", description = "Forgotten password and address verification (with SMTP_URL)"),
    ),
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/api/openapi.json", tag = "service", security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
pub async fn openapi(doc: web::Data<serde_json::Value>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}

/// The document, rendered once at start.
pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from /api/user/login or /api/user/refresh-token",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "A service client's id and secret, from /api/admin/clients",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every error is `application/problem+json`; every operation can answer
/// 503 when the store is busy; every operation with a body can answer 413
/// and 415 (actix-web's own refusals, rendered as problems).
struct ProblemResponses;

fn problem(description: &str, retry_after: bool) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM, content);
    if retry_after {
        let header = HeaderBuilder::new()
            .schema(Some(
                utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer),
            ))
            .description(Some("Seconds to wait"))
            .build();
        response = response.header("Retry-After", header);
    }
    RefOr::T(response.build())
}

const PROBLEM: &str = "application/problem+json";

fn add_error_responses(operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (is_error, response)
            && let Some(content) = response.content.shift_remove("application/json")
        {
            response.content.insert(PROBLEM.into(), content);
        }
    }
    if operation.request_body.is_some() {
        responses
            .entry("400".into())
            .or_insert_with(|| problem("Malformed body", false));
        responses
            .entry("413".into())
            .or_insert_with(|| problem("The body is over 64 KiB", false));
        responses
            .entry("415".into())
            .or_insert_with(|| problem("The body is not declared application/json", false));
    }
    responses
        .entry("503".into())
        .or_insert_with(|| problem("The store or the password hasher is busy", true));
}

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_error_responses(operation);
            }
        }
    }
}

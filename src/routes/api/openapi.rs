//! `/api/openapi.json`, generated from the handlers' annotations and the
//! request and response types, so it cannot drift from the code.

use super::{keys, passwords, tokens, users, views};
use crate::domain::Role;
use crate::errors::Problem;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
        crate::routes::service::openapi, passwords::change_own, passwords::set,
        tokens::login, tokens::refresh, tokens::logout, tokens::logout_all,
        keys::list, keys::rotate,
    ),
    components(schemas(
        Problem, Role, views::UserView, views::UserPage, views::TokenResponse, views::KeyView,
        users::CreateUser, users::ReplaceUser, users::PatchUser,
        tokens::LoginRequest, tokens::RefreshRequest,
        passwords::ChangePassword, passwords::SetPassword, keys::RotateRequest,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "users", description = "Registration and user management"),
        (name = "tokens", description = "Sign-in, refresh and sign-out"),
        (name = "keys", description = "The signing key ring (admins)"),
    ),
)]
pub struct ApiDoc;

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
    }
}

//! The first admin: from `ADMIN_EMAIL`/`ADMIN_PASSWORD` at start, or
//! through the one-time `/admin/setup` link a store without admins offers.

use super::{Actor, ServiceError, users};
use crate::audit::{Event, Outcome};
use crate::auth::password::fill_random;
use crate::client::ClientInfo;
use crate::config::ConfigError;
use crate::db::models::UserRow;
use crate::db::users as user_store;
use crate::domain::{NewUser, NewUserInput, Role};
use crate::state::AppState;

/// Creates the admin named by `ADMIN_EMAIL`/`ADMIN_PASSWORD` when no user
/// has that email yet: the unattended way to get a first admin.
pub async fn admin_from_env(state: &AppState) -> Result<(), ConfigError> {
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
        ConfigError::new(variable, reason)
    })?;
    let email = admin.email.as_str().to_owned();
    let system = Actor::system(crate::audit::SYSTEM);
    match users::create_vouched(state, &system, &ClientInfo::default(), admin).await {
        Ok(_) => log::info!("created the admin {email} from ADMIN_EMAIL"),
        Err(ServiceError::EmailTaken) => {}
        Err(e) => {
            return Err(ConfigError::new(
                "ADMIN_EMAIL",
                format!("cannot create the admin: {e}"),
            ));
        }
    }
    Ok(())
}

/// On a store with no admin, makes the one-time set-up token and returns
/// it, for the link printed at start (the PocketBase way).
pub async fn offer_link(state: &AppState) -> Option<String> {
    let any_admin = state
        .read(|conn| Ok::<_, ServiceError>(user_store::any_admin(conn)?))
        .await;
    if !matches!(any_admin, Ok(false)) {
        return None;
    }
    let mut bytes = [0u8; 24];
    fill_random(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    state.restore_setup_token(token.clone());
    Some(token)
}

/// Whether `token` is the set-up token and no admin exists yet.
pub async fn is_open(state: &AppState, token: &str) -> Result<bool, ServiceError> {
    if !state.setup_token_matches(token) {
        return Ok(false);
    }
    let any_admin = state
        .read(|conn| Ok::<_, ServiceError>(user_store::any_admin(conn)?))
        .await?;
    Ok(!any_admin)
}

/// Why the set-up link no longer works.
pub const GONE: &str = "This set-up link is not valid: an admin exists already, or the link is from an earlier \
                        start of the server";

/// Creates the first admin with the set-up token, which works once (even
/// for two forms sent at once); the admin must be `Role::Admin`.
pub async fn create_first_admin(
    state: &AppState,
    client: &ClientInfo,
    token: &str,
    admin: NewUser,
) -> Result<UserRow, ServiceError> {
    if !is_open(state, token).await? || !state.take_setup_token(token) {
        return Err(ServiceError::Forbidden(GONE));
    }
    let admin = NewUser {
        role: Role::Admin,
        ..admin
    };
    let created = match users::create_vouched(state, &Actor::anonymous(), client, admin).await {
        Ok(created) => created,
        Err(err) => {
            state.restore_setup_token(token.to_owned());
            return Err(err);
        }
    };
    let (id, now, client) = (created.id.clone(), state.now_naive(), client.clone());
    state
        .write(move |conn| {
            Event::new(id.as_str(), "setup", Outcome::Ok)
                .target(id.as_str())
                .client(&client)
                .write(conn, now)?;
            Ok::<_, ServiceError>(())
        })
        .await?;
    log::info!("the first admin was created through /admin/setup");
    Ok(created)
}

//! The JSON API under `/api`.

pub mod body;
pub mod keys;
pub mod openapi;
pub mod passwords;
pub mod tokens;
pub mod users;
pub mod views;

use crate::auth::extractor::Caller;
use crate::db::{models::UserRow, users as user_store};
use crate::domain::Role;
use crate::errors::ApiError;
use crate::state::AppState;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;

/// Who acts, as the store knows them now: the token says who is calling,
/// the store says whether they still exist and what role they hold, so a
/// demotion counts from the next request.
pub struct Actor {
    user: Option<Arc<UserRow>>,
    /// Who acts when no user does (`cli` for the operator at the shell).
    system: Option<&'static str>,
}

impl Actor {
    pub fn anonymous() -> Self {
        Self {
            user: None,
            system: None,
        }
    }

    /// A named actor that is not a user, as the audit log shows it.
    pub fn system(name: &'static str) -> Self {
        Self {
            user: None,
            system: Some(name),
        }
    }

    /// An actor already loaded (the console's signed-in admin).
    pub fn from_row(user: UserRow) -> Self {
        Self::from_shared(Arc::new(user))
    }

    fn from_shared(user: Arc<UserRow>) -> Self {
        Self {
            user: Some(user),
            system: None,
        }
    }

    /// Loads the caller's user (from memory when it can: see
    /// `auth::user_cache`); a deleted or disabled one is refused like a
    /// revoked token.
    pub async fn load(state: &AppState, caller: &Caller) -> Result<Self, ApiError> {
        let user = match state.users.get(&caller.user_id) {
            Some(user) => Some(user),
            None => {
                let (id, generation) = (caller.user_id.clone(), state.users.generation());
                let found = state
                    .read(move |conn| Ok(user_store::find(conn, &id)?))
                    .await?;
                found.map(|row| {
                    let row = Arc::new(row);
                    state.users.insert(generation, row.clone());
                    row
                })
            }
        };
        match user {
            Some(user) if !user.disabled => Ok(Self::from_shared(user)),
            _ => Err(ApiError::invalid_token()),
        }
    }

    pub fn row(&self) -> Result<&UserRow, ApiError> {
        self.user.as_deref().ok_or_else(ApiError::invalid_token)
    }

    pub fn is_admin(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.role == Role::Admin.as_str())
    }

    /// The actor as the audit log names them.
    pub fn audit_name(&self) -> String {
        match (&self.user, self.system) {
            (Some(user), _) => user.id.clone(),
            (None, Some(name)) => name.to_owned(),
            (None, None) => crate::audit::ANONYMOUS.to_owned(),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs the admin role"))
        }
    }

    /// The id a request may act on: its own (`me` included) for anyone, any
    /// other only for an admin. A non-admin gets 403 for every other id,
    /// existing, unknown or malformed alike; an admin gets 404 for a
    /// malformed one.
    pub fn authorize_target(&self, id: &str) -> Result<String, ApiError> {
        let own = &self.row()?.id;
        if id == "me" || id == own {
            return Ok(own.clone());
        }
        self.require_admin()
            .map_err(|_| ApiError::Forbidden("you may only act on your own user"))?;
        if is_well_formed_id(id) {
            Ok(id.to_owned())
        } else {
            Err(ApiError::NotFound)
        }
    }

    /// The user a request reads, after [`Actor::authorize_target`].
    pub async fn target(&self, state: &AppState, id: &str) -> Result<UserRow, ApiError> {
        let id = self.authorize_target(id)?;
        if let Some(own) = self.user.as_ref().filter(|u| u.id == id) {
            return Ok(UserRow::clone(own));
        }
        state
            .read(move |conn| user_store::find(conn, &id)?.ok_or(ApiError::NotFound))
            .await
    }
}

/// Ids are UUID text.
pub fn is_well_formed_id(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok_and(|uuid| uuid.hyphenated().to_string() == id)
}

/// The `{id}` of a user path; `/api/user/me` routes have none and mean the
/// caller.
pub struct TargetId(pub String);

impl FromRequest for TargetId {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(TargetId(
            req.match_info().get("id").unwrap_or("me").to_owned(),
        )))
    }
}

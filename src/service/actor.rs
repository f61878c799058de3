//! Who acts, and what they may do: the one place for "an admin, or the
//! user themself". The faces say who is calling (a bearer token, a console
//! session, the shell); the rules here decide.

use super::ServiceError;
use crate::audit;
use crate::config::Registration;
use crate::db::{models::UserRow, users};
use crate::domain::{Role, UserId};
use crate::state::AppState;
use std::sync::Arc;

/// Who acts, as the store knows them now: a signed-in user's role is read
/// from the store (through the user cache), so a demotion counts from the
/// next request.
pub struct Actor {
    user: Option<Arc<UserRow>>,
    /// Who acts when no user does (`cli` for the operator at the shell).
    system: Option<&'static str>,
    /// An admin without two-factor sign-in where `MFA_REQUIRED_FOR_ADMINS`
    /// holds: their admin rights wait for their enrolment.
    must_enrol: bool,
}

impl Actor {
    pub fn anonymous() -> Self {
        Self {
            user: None,
            system: None,
            must_enrol: false,
        }
    }

    /// A named actor that is not a user, as the audit log shows it.
    pub fn system(name: &'static str) -> Self {
        Self {
            user: None,
            system: Some(name),
            must_enrol: false,
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
            must_enrol: false,
        }
    }

    /// Applies `MFA_REQUIRED_FOR_ADMINS` (`required`) to a signed-in admin.
    pub fn requiring_mfa(mut self, required: bool) -> Self {
        self.must_enrol = required
            && self
                .user
                .as_ref()
                .is_some_and(|user| user.role == Role::Admin && !user.mfa);
        self
    }

    /// Loads the signed-in user `id` (from memory when it can: see
    /// `auth::user_cache`); a deleted or disabled one is no longer anyone.
    pub async fn load(state: &AppState, id: &UserId) -> Result<Self, ServiceError> {
        let user = match state.users.get(id.as_str()) {
            Some(user) => Some(user),
            None => {
                let (id, generation) = (id.clone(), state.users.generation());
                let found = state
                    .read(move |conn| Ok::<_, ServiceError>(users::find(conn, &id)?))
                    .await?;
                found.map(|row| {
                    let row = Arc::new(row);
                    state.users.insert(generation, row.clone());
                    row
                })
            }
        };
        match user {
            Some(user) if !user.disabled => {
                Ok(Self::from_shared(user).requiring_mfa(state.settings.mfa_required_for_admins))
            }
            _ => Err(ServiceError::NotSignedIn),
        }
    }

    pub fn row(&self) -> Result<&UserRow, ServiceError> {
        self.user.as_deref().ok_or(ServiceError::NotSignedIn)
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role == Role::Admin)
    }

    pub fn is_anonymous(&self) -> bool {
        self.user.is_none() && self.system.is_none()
    }

    /// An admin, or the system acting for the operator (the shell,
    /// start-up), who holds an admin's rights.
    fn has_admin_rights(&self) -> bool {
        self.is_admin() || self.system.is_some()
    }

    /// The actor as the audit log names them.
    pub fn audit_name(&self) -> String {
        match (&self.user, self.system) {
            (Some(user), _) => user.id.to_string(),
            (None, Some(name)) => name.to_owned(),
            (None, None) => audit::ANONYMOUS.to_owned(),
        }
    }

    pub fn require_admin(&self) -> Result<(), ServiceError> {
        if self.must_enrol {
            return Err(ServiceError::MfaEnrolmentRequired);
        }
        if self.has_admin_rights() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden("this needs the admin role"))
        }
    }

    /// Role and disabled are an admin's to set, on anyone (themself too).
    pub fn may_set_admin_fields(&self) -> Result<(), ServiceError> {
        if self.must_enrol {
            return Err(ServiceError::MfaEnrolmentRequired);
        }
        if self.has_admin_rights() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(
                "only an admin may set role or disabled",
            ))
        }
    }

    /// Whether this actor may create a user under `registration`: anyone
    /// when it is open, else only an admin (or the operator at the shell,
    /// or start-up, which act for the system).
    pub fn may_register(&self, registration: Registration) -> Result<(), ServiceError> {
        const ADMINS_ONLY: &str = "registration is open to admins only";
        match registration {
            Registration::Open => Ok(()),
            Registration::Admin if self.has_admin_rights() => Ok(()),
            Registration::Admin if self.is_anonymous() => {
                Err(ServiceError::SignInRequired(ADMINS_ONLY))
            }
            Registration::Admin => Err(ServiceError::Forbidden(ADMINS_ONLY)),
        }
    }

    /// Whether this actor may act on the user `id`: themself, or anyone
    /// for an admin (and the operator).
    pub fn may_act_on(&self, id: &UserId) -> Result<(), ServiceError> {
        let own = self.user.as_ref().is_some_and(|u| &u.id == id);
        if own || self.has_admin_rights() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden("you may only act on your own user"))
        }
    }

    /// The user a request may act on, from a path's `{id}` (`me` meaning
    /// the actor): their own for anyone, any other only for an admin. A
    /// non-admin is refused for every other id, existing, unknown or
    /// malformed alike; an admin gets "not found" for a malformed one.
    pub fn authorize_target(&self, id: &str) -> Result<UserId, ServiceError> {
        let own = &self.row()?.id;
        if id == "me" || id == own.as_str() {
            return Ok(own.clone());
        }
        if self.must_enrol {
            return Err(ServiceError::MfaEnrolmentRequired);
        }
        if !self.is_admin() {
            return Err(ServiceError::Forbidden("you may only act on your own user"));
        }
        UserId::parse(id).ok_or(ServiceError::NotFound)
    }

    /// The user a request reads, after [`Actor::authorize_target`].
    pub async fn target(&self, state: &AppState, id: &str) -> Result<UserRow, ServiceError> {
        let id = self.authorize_target(id)?;
        if let Some(own) = self.user.as_ref().filter(|u| u.id == id) {
            return Ok(UserRow::clone(own));
        }
        super::users::find(state, id).await
    }
}

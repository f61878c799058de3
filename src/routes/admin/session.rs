//! The console's sign-in session: the signed-in admin, the CSRF token of
//! every form and the one-time message. The session itself lives in the
//! store (see `auth::console_store`).

use super::chrome::{Chrome, Flash};
use super::error::PageError;
use crate::auth::console_store::USER_ID;
use crate::auth::password::fill_random;
use crate::client::ClientInfo;
use crate::db::models::UserRow;
use crate::domain::{Role, UserId};
use crate::service::{Actor, ServiceError, users};
use crate::state::{AppState, constant_time_eq};
use actix_session::{Session, SessionExt};
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;

const CSRF: &str = "csrf";
const SIGNED_IN_AT: &str = "signed_in_at";
const FLASH: &str = "flash";

/// The session's CSRF token, made on first use.
pub fn csrf_token(session: &Session) -> Result<String, PageError> {
    if let Ok(Some(token)) = session.get::<String>(CSRF) {
        return Ok(token);
    }
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    session.insert(CSRF, &token)?;
    Ok(token)
}

/// Refuses a form without the session's CSRF token, or sent from another
/// site (`Sec-Fetch-Site` cross-site or same-site; an `Origin` that is
/// neither this server's nor `null`).
pub fn check_form(req: &HttpRequest, session: &Session, presented: &str) -> Result<(), PageError> {
    let fetch_site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return Err(PageError::Csrf);
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let info = req.connection_info();
        let own = format!("{}://{}", info.scheme(), info.host());
        let origin = origin.to_str().unwrap_or("");
        if origin != "null" && origin != own {
            return Err(PageError::Csrf);
        }
    }
    let expected = session
        .get::<String>(CSRF)
        .ok()
        .flatten()
        .unwrap_or_default();
    if !expected.is_empty() && constant_time_eq(expected.as_bytes(), presented.as_bytes()) {
        Ok(())
    } else {
        Err(PageError::Csrf)
    }
}

/// Shows `text` on the next page.
pub fn flash(session: &Session, kind: &str, text: impl Into<String>) -> Result<(), PageError> {
    session.insert(
        FLASH,
        Flash {
            kind: kind.into(),
            text: text.into(),
        },
    )?;
    Ok(())
}

fn take_flash(session: &Session) -> Option<Flash> {
    session.remove_as::<Flash>(FLASH).and_then(Result::ok)
}

/// The layout for a page seen without signing in (sign-in, set-up).
pub fn anonymous_chrome(session: &Session) -> Result<Chrome, PageError> {
    Ok(Chrome {
        admin_email: None,
        csrf: csrf_token(session)?,
        flash: take_flash(session),
        nav: "",
    })
}

/// Marks the session as signed in as `user`, under a new session id.
pub fn start_session(session: &Session, state: &AppState, user: &UserRow) -> Result<(), PageError> {
    session.renew();
    session.insert(USER_ID, user.id.as_str())?;
    session.insert(SIGNED_IN_AT, state.now().timestamp())?;
    session.remove(CSRF);
    csrf_token(session)?;
    Ok(())
}

/// A request from a signed-in admin. Anonymous: redirect to sign-in; a
/// signed-in user who is not (or no longer) an admin: 403.
pub struct ConsoleAdmin {
    pub user: UserRow,
    pub session: Session,
    req: HttpRequest,
}

impl ConsoleAdmin {
    /// The layout for a page, taking the flash message.
    pub fn chrome(&self, nav: &'static str) -> Result<Chrome, PageError> {
        Ok(Chrome {
            admin_email: Some(self.user.email.clone()),
            csrf: csrf_token(&self.session)?,
            flash: take_flash(&self.session),
            nav,
        })
    }

    pub fn check_form(&self, presented: &str) -> Result<(), PageError> {
        check_form(&self.req, &self.session, presented)
    }

    pub fn flash(&self, kind: &str, text: impl Into<String>) -> Result<(), PageError> {
        flash(&self.session, kind, text)
    }

    pub fn client(&self) -> ClientInfo {
        crate::routes::client::client_of(&self.req)
    }

    /// The signed-in admin as the service layer's actor.
    pub fn actor(&self) -> Actor {
        Actor::from_row(self.user.clone())
    }
}

impl FromRequest for ConsoleAdmin {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| {
                    PageError::Unexpected(anyhow::anyhow!("AppState is not registered"))
                })?;
            let session = req.get_session();
            let user_id = session
                .get::<String>(USER_ID)
                .ok()
                .flatten()
                .ok_or(PageError::SignIn)?;
            let signed_in_at = session.get::<i64>(SIGNED_IN_AT).ok().flatten().unwrap_or(0);
            let max_age = state.settings.console_max_age.as_secs() as i64;
            if state.now().timestamp() - signed_in_at >= max_age {
                session.purge();
                return Err(PageError::SignIn);
            }
            let user = match UserId::parse(&user_id) {
                Some(id) => match users::find(&state, id).await {
                    Ok(user) => Some(user),
                    Err(ServiceError::NotFound) => None,
                    Err(err) => return Err(err.into()),
                },
                None => None,
            };
            match user {
                Some(user) if !user.disabled && user.role == Role::Admin => {
                    // MFA_REQUIRED_FOR_ADMINS: an admin without it may only
                    // set it up (and sign out).
                    let path = req.path();
                    let free = path == "/admin/account"
                        || path.starts_with("/admin/account/")
                        || path == "/admin/logout";
                    if state.settings.mfa_required_for_admins && !user.mfa && !free {
                        flash(
                            &session,
                            "error",
                            "Set up two-factor sign-in first: admins need it here.",
                        )?;
                        return Err(PageError::Redirect("/admin/account"));
                    }
                    Ok(ConsoleAdmin { user, session, req })
                }
                Some(user) if !user.disabled => {
                    Err(PageError::Forbidden("This console is for admins"))
                }
                _ => {
                    session.purge();
                    Err(PageError::SignIn)
                }
            }
        })
    }
}

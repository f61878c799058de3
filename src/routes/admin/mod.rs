//! The admin console under `/admin`: server-rendered pages for admins,
//! signed in with a server-side session (see `auth::console_store`).
//!
//! Every page is rendered from an askama template; every form that changes
//! something carries the session's CSRF token and is refused from another
//! site; every change answers with a redirect and a flash message
//! (post/redirect/get).

pub mod audit;
pub mod dashboard;
pub mod keys;
pub mod signin;
pub mod users;

use crate::auth::console_store::USER_ID;
use crate::auth::password::fill_random;
use crate::db::{models::UserRow, users as user_store};
use crate::domain::Role;
use crate::errors::ApiError;
use crate::state::{AppState, constant_time_eq};
use actix_session::{Session, SessionExt};
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};
use askama::Template;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

/// The Content-Security-Policy of every console page (SECURITY.md 25).
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                            form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSRF: &str = "csrf";
const SIGNED_IN_AT: &str = "signed_in_at";
const FLASH: &str = "flash";

/// A one-time message shown on the page after a redirect.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    /// `ok` or `error`.
    pub kind: String,
    pub text: String,
}

/// What every page's layout needs.
pub struct Chrome {
    /// The signed-in admin, when there is one.
    pub admin_email: Option<String>,
    pub csrf: String,
    pub flash: Option<Flash>,
    /// Which navigation entry is current.
    pub nav: &'static str,
}

/// Errors as the console shows them: a readable page, or a redirect to
/// the sign-in page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign-in needed")]
    SignIn,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("form refused")]
    Csrf,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    title: &'a str,
    message: String,
}

impl PageError {
    fn message(&self) -> String {
        match self {
            PageError::SignIn => "Please sign in.".into(),
            PageError::Forbidden(why) => format!("{why}."),
            PageError::NotFound => "There is no such page or user.".into(),
            PageError::BadRequest(why) => why.clone(),
            PageError::Csrf => {
                "This form has expired or was sent from another site. Go back, reload the page \
                                and try again."
                    .into()
            }
            PageError::TooManyRequests { retry_after } => {
                format!("Too many failed sign-ins. Try again in {retry_after} seconds.")
            }
            PageError::Unavailable(_) => "The service is busy. Try again in a moment.".into(),
            PageError::Unexpected(_) => {
                "Something went wrong on our side. It has been logged.".into()
            }
            PageError::MethodNotAllowed { allow } => format!("This page only answers {allow}."),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn => StatusCode::SEE_OTHER,
            PageError::Forbidden(_) | PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            PageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PageError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::SignIn => return redirect("/admin/login"),
            PageError::Unexpected(err) => log::error!("console error: {err:#}"),
            PageError::Unavailable(why) => log::warn!("console answering 503: {why}"),
            _ => {}
        }
        let status = self.status_code();
        let page = ErrorPage {
            chrome: Chrome {
                admin_email: None,
                csrf: String::new(),
                flash: None,
                nav: "",
            },
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            message: self.message(),
        };
        let mut response = HttpResponse::build(status);
        match self {
            PageError::TooManyRequests { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            PageError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            PageError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, *allow));
            }
            _ => {}
        }
        match page.render() {
            Ok(html) => response.content_type("text/html; charset=utf-8").body(html),
            Err(_) => response
                .content_type("text/plain; charset=utf-8")
                .body(self.message()),
        }
    }
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::BadRequest(why) => PageError::BadRequest(why),
            ApiError::Unauthorized { .. } => PageError::SignIn,
            ApiError::Forbidden(why) => PageError::Forbidden(why),
            ApiError::NotFound => PageError::NotFound,
            ApiError::TooManyRequests { retry_after } => PageError::TooManyRequests { retry_after },
            ApiError::Unavailable(why) => PageError::Unavailable(why),
            ApiError::Unexpected(err) => PageError::Unexpected(err),
            other => PageError::BadRequest(other.problem().detail),
        }
    }
}

impl From<actix_session::SessionInsertError> for PageError {
    fn from(err: actix_session::SessionInsertError) -> Self {
        PageError::Unexpected(anyhow::anyhow!("session insert: {err}"))
    }
}

/// `a=1&b=x%20y`: a query string with each value percent-encoded.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let encode = |value: &str| -> String {
        value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Renders a page.
pub fn render(page: &impl Template) -> Result<HttpResponse, PageError> {
    let html = page
        .render()
        .map_err(|e| PageError::Unexpected(anyhow::anyhow!("template: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// Renders a page with another status (a form shown again with its errors).
pub fn render_with(status: StatusCode, page: &impl Template) -> Result<HttpResponse, PageError> {
    let mut response = render(page)?;
    *response.status_mut() = status;
    Ok(response)
}

/// 303 See Other: after a form, the browser GETs the next page.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

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
    session.insert(USER_ID, &user.id)?;
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

    pub fn client(&self) -> crate::client::ClientInfo {
        crate::client::ClientInfo::of(&self.req)
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
            let user = state
                .read(move |conn| Ok(user_store::find(conn, &user_id)?))
                .await?;
            match user {
                Some(user) if !user.disabled && user.role == Role::Admin.as_str() => {
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

/// The console's stylesheet, compiled into the binary.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../../static/admin.css"))
}

/// The console's answer for a path it does not serve.
pub async fn not_found() -> Result<HttpResponse, PageError> {
    Err(PageError::NotFound)
}

/// A handler answering 405 with the methods a console page does serve.
pub fn method_not_allowed(
    allow: &'static str,
) -> impl Fn() -> std::future::Ready<Result<HttpResponse, PageError>> + Clone + 'static {
    move || std::future::ready(Err(PageError::MethodNotAllowed { allow }))
}

fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed(allow)))
}

/// The console's routes (inside the `/admin` scope, behind the session
/// middleware).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(crate::BODY_LIMIT)
            .error_handler(|err, _req| {
                PageError::BadRequest(format!("The form could not be read: {err}.")).into()
            }),
    )
    .app_data(web::QueryConfig::default().error_handler(|err, _req| {
        PageError::BadRequest(format!("The address could not be read: {err}.")).into()
    }))
    .service(resource("", "GET").route(web::get().to(dashboard::dashboard)))
    .service(
        resource("/setup", "GET, POST")
            .route(web::get().to(signin::setup_page))
            .route(web::post().to(signin::setup)),
    )
    .service(
        resource("/login", "GET, POST")
            .route(web::get().to(signin::login_page))
            .route(web::post().to(signin::login)),
    )
    .service(resource("/logout", "POST").route(web::post().to(signin::logout)))
    .service(resource("/users", "GET").route(web::get().to(users::list)))
    .service(
        resource("/users/new", "GET, POST")
            .route(web::get().to(users::new_page))
            .route(web::post().to(users::create)),
    )
    .service(
        resource("/users/{id}", "GET, POST")
            .route(web::get().to(users::edit))
            .route(web::post().to(users::update)),
    )
    .service(
        resource("/users/{id}/password", "POST").route(web::post().to(users::set_new_password)),
    )
    .service(resource("/users/{id}/unlock", "POST").route(web::post().to(users::unlock)))
    .service(
        resource("/users/{id}/sessions/revoke-all", "POST")
            .route(web::post().to(users::revoke_all_sessions)),
    )
    .service(
        resource("/users/{id}/sessions/{sid}/revoke", "POST")
            .route(web::post().to(users::revoke_session)),
    )
    .service(
        resource("/users/{id}/delete", "GET, POST")
            .route(web::get().to(users::confirm_delete))
            .route(web::post().to(users::delete)),
    )
    .service(resource("/keys", "GET").route(web::get().to(keys::list)))
    .service(resource("/keys/rotate", "POST").route(web::post().to(keys::rotate)))
    .service(resource("/audit", "GET").route(web::get().to(audit::list)))
    .default_service(web::to(not_found));
}

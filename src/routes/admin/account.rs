//! `/admin/account`: the signed-in admin's own account, for now two-factor
//! sign-in: set it up (a QR code drawn here, as inline SVG: no script, no
//! external resource), confirm it, replace the recovery codes, turn it off.

use super::chrome::Chrome;
use super::error::PageError;
use super::page::{redirect, render, render_with};
use super::session::ConsoleAdmin;
use crate::domain::{FieldErrors, TotpCode};
use crate::service::{ServiceError, mfa};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

/// A started enrolment, as the page shows it.
pub struct EnrolmentLine {
    pub secret: String,
    /// The `otpauth://` URL as an SVG QR code.
    pub qr: String,
}

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    chrome: Chrome,
    mfa: bool,
    recovery_left: i64,
    enrolment: Option<EnrolmentLine>,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "admin/recovery_codes.html")]
struct CodesPage {
    chrome: Chrome,
    codes: Vec<String>,
}

/// An SVG QR code of `text`, fit to sit in a page.
fn qr_svg(text: &str) -> Result<String, PageError> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| PageError::Unexpected(anyhow::anyhow!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    let svg = svg
        .split_once("?>")
        .map_or(svg.as_str(), |(_, rest)| rest)
        .replacen(
            "<svg ",
            "<svg role=\"img\" aria-label=\"QR code for your authenticator app\" ",
            1,
        );
    Ok(svg)
}

fn line(enrolment: mfa::Enrolment) -> Result<EnrolmentLine, PageError> {
    Ok(EnrolmentLine {
        qr: qr_svg(&enrolment.otpauth_url)?,
        secret: enrolment.secret,
    })
}

/// The page; an enrolment waiting for its code is shown again.
async fn page(
    state: &AppState,
    admin: &ConsoleAdmin,
    errors: FieldErrors,
) -> Result<AccountPage, PageError> {
    let user = admin.actor().row()?.clone();
    let (recovery_left, enrolment) = if user.mfa {
        (mfa::recovery_codes_left(state, &admin.actor()).await?, None)
    } else {
        let pending = mfa::pending(state, &admin.actor()).await?;
        (0, pending.map(line).transpose()?)
    };
    Ok(AccountPage {
        chrome: admin.chrome("account")?,
        mfa: user.mfa,
        recovery_left,
        enrolment,
        errors,
    })
}

pub async fn show(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
) -> Result<HttpResponse, PageError> {
    render(&page(&state, &admin, FieldErrors::default()).await?)
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

pub async fn enrol(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    mfa::enrol(&state, &admin.actor(), &admin.client()).await?;
    Ok(redirect("/admin/account"))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
}

/// The page again with why a form was refused beside its field (`code_field`
/// names the code's field of that form), or the error page for anything else.
async fn refused(
    state: &AppState,
    admin: &ConsoleAdmin,
    err: ServiceError,
    code_field: &str,
) -> Result<HttpResponse, PageError> {
    let mut errors = FieldErrors::default();
    let status = match err {
        ServiceError::Invalid(invalid) => {
            for message in invalid.get("code").unwrap_or_default() {
                errors.add(code_field, message.clone());
            }
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ServiceError::BadMfaCode => {
            errors.add(code_field, "is not right (or was used already)");
            StatusCode::UNAUTHORIZED
        }
        ServiceError::BadCredentials => {
            errors.add("password", "is not right");
            StatusCode::UNAUTHORIZED
        }
        err => return Err(err.into()),
    };
    render_with(status, &page(state, admin, errors).await?)
}

/// The code of a form, as the service reads it; a malformed one is an
/// `Invalid` error of the field `code`.
fn code(input: &str) -> Result<TotpCode, ServiceError> {
    TotpCode::parse(input).map_err(|why| ServiceError::field("code", why))
}

fn codes_page(admin: &ConsoleAdmin, codes: Vec<String>) -> Result<HttpResponse, PageError> {
    render(&CodesPage {
        chrome: admin.chrome("account")?,
        codes,
    })
}

pub async fn confirm(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    // A wrong code leaves the enrolment pending; the page shows it again.
    let confirmed = match code(&form.code) {
        Ok(code) => mfa::confirm(&state, &admin.actor(), &admin.client(), code).await,
        Err(err) => Err(err),
    };
    match confirmed {
        Ok(codes) => codes_page(&admin, codes),
        Err(err) => refused(&state, &admin, err, "code").await,
    }
}

pub async fn replace_recovery_codes(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let replaced = match code(&form.code) {
        Ok(code) => {
            mfa::replace_recovery_codes(&state, &admin.actor(), &admin.client(), code).await
        }
        Err(err) => Err(err),
    };
    match replaced {
        Ok(codes) => codes_page(&admin, codes),
        Err(err) => refused(&state, &admin, err, "code").await,
    }
}

pub async fn turn_off(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let (actor, client) = (admin.actor(), admin.client());
    let off = match code(&form.code) {
        Ok(code) => mfa::turn_off(&state, &actor, &client, &form.password, code).await,
        Err(err) => Err(err),
    };
    match off {
        Ok(()) => {
            admin.flash("ok", "Two-factor sign-in is off.")?;
            Ok(redirect("/admin/account"))
        }
        Err(err) => refused(&state, &admin, err, "off_code").await,
    }
}

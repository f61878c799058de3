//! `/admin/clients`: service clients, with create (the secret shown once)
//! and revoke.

use super::chrome::Chrome;
use super::error::PageError;
use super::page::{redirect, render, render_with};
use super::session::ConsoleAdmin;
use super::when::When;
use crate::domain::{ClientName, FieldErrors};
use crate::service::clients;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

pub struct ClientLine {
    pub id: String,
    pub name: String,
    pub created_at: When,
    pub last_used_at: Option<When>,
    pub revoked_at: Option<When>,
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
struct ClientsPage {
    chrome: Chrome,
    clients: Vec<ClientLine>,
    /// The name typed into the form, shown again with its errors.
    name: String,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "admin/client_created.html")]
struct CreatedPage {
    chrome: Chrome,
    id: String,
    name: String,
    secret: String,
}

async fn page(
    state: &AppState,
    admin: &ConsoleAdmin,
    name: String,
    errors: FieldErrors,
) -> Result<ClientsPage, PageError> {
    let rows = clients::list(state, &admin.actor()).await?;
    let now = state.now_naive();
    let clients = rows
        .into_iter()
        .map(|row| ClientLine {
            created_at: When::at(row.created_at, now),
            last_used_at: row.last_used_at.map(|at| When::at(at, now)),
            revoked_at: row.revoked_at.map(|at| When::at(at, now)),
            id: row.id,
            name: row.name,
        })
        .collect();
    Ok(ClientsPage {
        chrome: admin.chrome("clients")?,
        clients,
        name,
        errors,
    })
}

pub async fn list(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
) -> Result<HttpResponse, PageError> {
    render(&page(&state, &admin, String::new(), FieldErrors::default()).await?)
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrf_token: String,
}

/// Creates a client and shows its secret on the answer itself: a redirect
/// would have to keep the secret somewhere until the next page.
pub async fn create(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let form = form.into_inner();
    let name = match ClientName::parse(&form.name) {
        Ok(name) => name,
        Err(message) => {
            let mut errors = FieldErrors::default();
            errors.add("name", message);
            let page = page(&state, &admin, form.name, errors).await?;
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let (row, secret) = clients::create(&state, &admin.actor(), &admin.client(), name).await?;
    render(&CreatedPage {
        chrome: admin.chrome("clients")?,
        id: row.id,
        name: row.name,
        secret,
    })
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf_token: String,
}

pub async fn revoke(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    id: web::Path<String>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let row = clients::revoke(&state, &admin.actor(), &admin.client(), &id).await?;
    admin.flash(
        "ok",
        format!(
            "Revoked {}: its secret works no more, on every instance.",
            row.name
        ),
    )?;
    Ok(redirect("/admin/clients"))
}

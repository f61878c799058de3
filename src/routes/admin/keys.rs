//! `/admin/keys`: the key ring, with rotate and emergency rotate.

use super::chrome::Chrome;
use super::dashboard::describe_age;
use super::error::PageError;
use super::page::{redirect, render};
use super::session::ConsoleAdmin;
use super::when::When;
use crate::service::keys;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

pub struct KeyLine {
    pub kid: String,
    pub algorithm: String,
    pub state: String,
    pub created_at: When,
    pub age: String,
    pub retired_at: Option<When>,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<KeyLine>,
}

pub async fn list(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
) -> Result<HttpResponse, PageError> {
    let rows = keys::list(&state, &admin.actor()).await?;
    let now = state.now_naive();
    let keys = rows
        .iter()
        .map(|row| KeyLine {
            kid: row.kid.clone(),
            algorithm: row.algorithm.to_string(),
            state: row.state.to_string(),
            created_at: When::at(row.created_at, now),
            age: describe_age(now - row.created_at),
            retired_at: row.retired_at.map(|at| When::at(at, now)),
        })
        .collect();
    render(&KeysPage {
        chrome: admin.chrome("keys")?,
        keys,
    })
}

#[derive(Deserialize)]
pub struct RotateForm {
    /// A checkbox: present when ticked.
    revoke_previous: Option<String>,
    #[serde(default)]
    csrf_token: String,
}

pub async fn rotate(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    form: web::Form<RotateForm>,
) -> Result<HttpResponse, PageError> {
    admin.check_form(&form.csrf_token)?;
    let revoke_previous = form.revoke_previous.is_some();
    let key = keys::rotate(&state, &admin.actor(), &admin.client(), revoke_previous).await?;
    let message = if revoke_previous {
        format!(
            "Emergency rotation done: {} signs now and every earlier access token has stopped working; \
                 clients recover with one refresh.",
            key.kid
        )
    } else {
        format!(
            "Rotated: {} signs new tokens; tokens already issued keep working until they expire.",
            key.kid
        )
    };
    admin.flash("ok", message)?;
    Ok(redirect("/admin/keys"))
}

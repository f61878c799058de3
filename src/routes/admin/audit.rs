//! `/admin/audit`: the audit log, newest first, filtered and paged.

use super::chrome::Chrome;
use super::error::PageError;
use super::page::{query_string, render};
use super::session::ConsoleAdmin;
use crate::rfc3339::format as rfc3339;
use crate::service::audit;
use crate::service::listing::{AuditListing, AuditParams};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

pub struct AuditLine {
    pub at: String,
    pub actor: String,
    pub actor_short: String,
    pub target_short: String,
    pub action: String,
    pub target: String,
    pub client_addr: String,
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    action: String,
    before: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<AuditLine>,
    actor: String,
    target: String,
    action: String,
    filters: String,
    next: Option<String>,
    first_page: bool,
}

/// The start of a long id (the whole one is in the link and its title).
fn short_id(id: &str) -> String {
    if id.chars().count() > 12 {
        format!("{}…", id.chars().take(8).collect::<String>())
    } else {
        id.to_owned()
    }
}

pub async fn list(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let listing = AuditListing::parse(AuditParams {
        actor: Some(&query.actor),
        target: Some(&query.target),
        action: Some(&query.action),
        cursor: query.before.as_deref().filter(|b| !b.is_empty()),
    })?;
    let page = audit::list(&state, &admin.actor(), listing).await?;
    let filters = query_string(&[
        ("actor", &query.actor),
        ("target", &query.target),
        ("action", &query.action),
    ]);
    let next = page.next.map(|cursor| format!("{filters}&before={cursor}"));
    let first_page = query.before.as_deref().is_none_or(str::is_empty);
    let entries = page
        .items
        .into_iter()
        .map(|row| AuditLine {
            at: rfc3339(row.at)
                .replace('T', " ")
                .trim_end_matches('Z')
                .to_owned(),
            actor_short: short_id(&row.actor),
            target_short: row.target.as_deref().map(short_id).unwrap_or_default(),
            actor: row.actor,
            action: row.action,
            target: row.target.unwrap_or_default(),
            client_addr: row.client_addr.unwrap_or_default(),
            outcome: row.outcome,
            detail: row.detail.unwrap_or_default(),
        })
        .collect();
    let page = AuditPage {
        chrome: admin.chrome("audit")?,
        entries,
        first_page,
        filters,
        actor: query.actor,
        target: query.target,
        action: query.action,
        next,
    };
    render(&page)
}

//! `/admin/audit`: the audit log, newest first, filtered and paged.

use super::{Chrome, ConsoleAdmin, PageError, query_string, render};
use crate::db::audit::{self, AuditFilter};
use crate::routes::api::views::rfc3339;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

const PAGE_SIZE: i64 = 50;

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

fn non_empty(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

pub async fn list(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let before = match query.before.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(
            raw.parse::<i32>()
                .map_err(|_| PageError::BadRequest("That page link is not valid.".into()))?,
        ),
    };
    let filter = AuditFilter {
        actor: non_empty(&query.actor),
        target: non_empty(&query.target),
        action: non_empty(&query.action),
        before,
        limit: PAGE_SIZE + 1,
    };
    let mut rows = state
        .read(move |conn| Ok(audit::list(conn, &filter)?))
        .await?;
    let filters = query_string(&[
        ("actor", &query.actor),
        ("target", &query.target),
        ("action", &query.action),
    ]);
    let next = if rows.len() as i64 > PAGE_SIZE {
        rows.truncate(PAGE_SIZE as usize);
        rows.last()
            .map(|last| format!("{filters}&before={}", last.id))
    } else {
        None
    };
    let entries = rows
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
        first_page: before.is_none(),
        filters,
        actor: query.actor,
        target: query.target,
        action: query.action,
        next,
    };
    render(&page)
}

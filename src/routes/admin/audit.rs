//! `/admin/audit`: the audit log, newest first, filtered and paged, with
//! people shown by their email; `/admin/audit/export`: the filtered
//! entries as CSV or JSON lines, for an incident report.

use super::chrome::Chrome;
use super::error::PageError;
use super::page::{query_string, render};
use super::session::ConsoleAdmin;
use super::when::When;
use crate::db::models::AuditRow;
use crate::rfc3339::format as rfc3339;
use crate::service::audit::{self, ACTIONS, USERS_PER_FILTER};
use crate::service::listing::{AuditListing, AuditParams};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;
use serde::Deserialize;
use std::collections::HashMap;

/// Someone (or something) an entry names, as the page shows them.
pub struct Party {
    /// An email, `anonymous`, `system`, or the start of an id.
    pub label: String,
    /// The whole id, or the name.
    pub title: String,
    /// The user's page, when the party is a user now.
    pub page: Option<String>,
    /// This party's entries (the filter link).
    pub entries: String,
}

pub struct AuditLine {
    pub when: When,
    pub actor: Party,
    pub target: Option<Party>,
    pub action: String,
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
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<String>,
    /// Export only: `csv` or `jsonl`.
    format: Option<String>,
}

impl AuditQuery {
    fn listing(&self, paged: bool) -> Result<AuditListing, PageError> {
        Ok(AuditListing::parse(AuditParams {
            actor: Some(&self.actor),
            target: Some(&self.target),
            action: Some(&self.action),
            outcome: Some(&self.outcome),
            from: Some(&self.from),
            to: Some(&self.to),
            cursor: self.before.as_deref().filter(|b| paged && !b.is_empty()),
        })?)
    }

    /// The filters, as a query string (links keep them).
    fn filters(&self) -> String {
        query_string(&[
            ("actor", &self.actor),
            ("target", &self.target),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ])
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    chrome: Chrome,
    entries: Vec<AuditLine>,
    actor: String,
    target: String,
    action: String,
    outcome: String,
    from: String,
    to: String,
    actions: &'a [&'a str],
    filters: String,
    next: Option<String>,
    first_page: bool,
    /// Filters that matched more users than a page's filter takes.
    broad: Vec<&'static str>,
    users_per_filter: usize,
}

/// The start of a long id (the whole one is in the link's title).
fn short_id(id: &str) -> String {
    if id.chars().count() > 12 {
        format!("{}…", id.chars().take(8).collect::<String>())
    } else {
        id.to_owned()
    }
}

fn party(id: &str, emails: &HashMap<String, String>) -> Party {
    match emails.get(id) {
        Some(email) => Party {
            label: email.clone(),
            title: id.to_owned(),
            page: Some(format!("/admin/users/{id}")),
            entries: email.clone(),
        },
        None => Party {
            label: short_id(id),
            title: id.to_owned(),
            page: None,
            entries: id.to_owned(),
        },
    }
}

/// A failed or refused sign-in: nobody signed in tried the account's
/// password. (Entries written before this was the rule name the account
/// as the actor as well.)
fn is_refused_sign_in(row: &AuditRow) -> bool {
    row.action == "login" && row.outcome != "ok"
}

fn line(row: AuditRow, emails: &HashMap<String, String>, now: NaiveDateTime) -> AuditLine {
    let actor = if is_refused_sign_in(&row) {
        crate::audit::ANONYMOUS
    } else {
        row.actor.as_str()
    };
    AuditLine {
        when: When::at(row.at, now),
        actor: party(actor, emails),
        target: row.target.as_deref().map(|target| party(target, emails)),
        action: row.action,
        client_addr: row.client_addr.unwrap_or_default(),
        outcome: row.outcome,
        detail: row.detail.unwrap_or_default(),
    }
}

pub async fn list(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let view = audit::list(&state, &admin.actor(), query.listing(true)?).await?;
    let filters = query.filters();
    let next = view
        .page
        .next
        .map(|cursor| format!("{filters}&before={cursor}"));
    let first_page = query.before.as_deref().is_none_or(str::is_empty);
    let now = state.now_naive();
    let entries = view
        .page
        .items
        .into_iter()
        .map(|row| line(row, &view.emails, now))
        .collect();
    let page = AuditPage {
        chrome: admin.chrome("audit")?,
        entries,
        first_page,
        filters,
        actor: query.actor,
        target: query.target,
        action: query.action,
        outcome: query.outcome,
        from: query.from,
        to: query.to,
        actions: ACTIONS,
        next,
        broad: view.broad,
        users_per_filter: USERS_PER_FILTER,
    };
    render(&page)
}

/// `GET /admin/audit/export?format=csv|jsonl&…`: every entry the filters
/// match (up to `audit::EXPORT_LIMIT`), as a download.
pub async fn export(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let format = match query.format.as_deref() {
        Some("csv") | None => "csv",
        Some("jsonl") => "jsonl",
        Some(_) => {
            return Err(PageError::BadRequest(
                "The export format must be csv or jsonl.".into(),
            ));
        }
    };
    let listing = query.listing(false)?;
    let (rows, emails) =
        audit::export(&state, &admin.actor(), &admin.client(), listing, format).await?;
    let stamp = state.now_naive().format("%Y%m%d-%H%M%S");
    let (body, content_type) = match format {
        "jsonl" => (
            json_lines(&rows, &emails).into_bytes(),
            "application/x-ndjson",
        ),
        _ => (csv(&rows, &emails)?, "text/csv; charset=utf-8"),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"latchkey-audit-{stamp}.{format}\""),
        ))
        .body(body))
}

/// What one exported entry says.
fn exported(row: &AuditRow, emails: &HashMap<String, String>) -> serde_json::Value {
    let email = |id: Option<&String>| id.and_then(|id| emails.get(id)).cloned();
    serde_json::json!({
        "id": row.id,
        "at": rfc3339(row.at),
        "actor": row.actor,
        "actor_email": email(Some(&row.actor)),
        "action": row.action,
        "target": row.target,
        "target_email": email(row.target.as_ref()),
        "client_addr": row.client_addr,
        "outcome": row.outcome,
        "detail": row
            .detail
            .as_deref()
            .map(|d| serde_json::from_str::<serde_json::Value>(d).unwrap_or_else(|_| d.into())),
    })
}

fn json_lines(rows: &[AuditRow], emails: &HashMap<String, String>) -> String {
    rows.iter()
        .map(|row| exported(row, emails).to_string() + "\n")
        .collect()
}

/// A cell a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, a
/// tab or a carriage return first) starts with `'` instead, so that an
/// email someone typed cannot run in the incident report.
fn cell(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    }
}

fn csv(rows: &[AuditRow], emails: &HashMap<String, String>) -> Result<Vec<u8>, PageError> {
    let failed = |e: csv::Error| PageError::Unexpected(anyhow::anyhow!("writing CSV: {e}"));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "id",
        "at",
        "actor",
        "actor_email",
        "action",
        "target",
        "target_email",
        "client_addr",
        "outcome",
        "detail",
    ])
    .map_err(failed)?;
    for row in rows {
        let email = |id: Option<&String>| {
            id.and_then(|id| emails.get(id))
                .cloned()
                .unwrap_or_default()
        };
        let record = [
            row.id.to_string(),
            rfc3339(row.at),
            row.actor.clone(),
            email(Some(&row.actor)),
            row.action.clone(),
            row.target.clone().unwrap_or_default(),
            email(row.target.as_ref()),
            row.client_addr.clone().unwrap_or_default(),
            row.outcome.clone(),
            row.detail.clone().unwrap_or_default(),
        ];
        out.write_record(record.iter().map(|value| cell(value)))
            .map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| PageError::Unexpected(anyhow::anyhow!("writing CSV: {e}")))
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn a_cell_that_a_spreadsheet_would_run_is_defused() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("ada@example.com"), "ada@example.com");
        assert_eq!(cell(""), "");
    }
}

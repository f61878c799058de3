//! `GET /admin`: the dashboard.

use super::chrome::Chrome;
use super::error::PageError;
use super::page::render;
use super::session::ConsoleAdmin;
use crate::db::{audit, sessions, users};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::TimeDelta;

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    users: i64,
    admins: i64,
    disabled: i64,
    sessions: i64,
    logins: i64,
    failures: i64,
    key_id: String,
    key_age: String,
}

/// "3 days", "5 hours", "12 minutes", "a few seconds".
pub fn describe_age(age: TimeDelta) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match age {
        a if a.num_days() >= 1 => plural(a.num_days(), "day"),
        a if a.num_hours() >= 1 => plural(a.num_hours(), "hour"),
        a if a.num_minutes() >= 1 => plural(a.num_minutes(), "minute"),
        _ => "a few seconds".into(),
    }
}

pub async fn dashboard(
    state: web::Data<AppState>,
    admin: ConsoleAdmin,
) -> Result<HttpResponse, PageError> {
    let now = state.now_naive();
    let day_ago = now - TimeDelta::hours(24);
    let (users, admins, disabled, sessions, logins, failures) = state
        .read(move |conn| {
            let (users, admins, disabled) = users::counts(conn)?;
            let sessions = sessions::count_live(conn, now)?;
            let logins = audit::count_since(conn, "login", "ok", day_ago)?;
            let failures = audit::count_since(conn, "login", "failed", day_ago)?;
            Ok::<_, PageError>((users, admins, disabled, sessions, logins, failures))
        })
        .await?;
    let key = state.keys.active();
    let page = DashboardPage {
        chrome: admin.chrome("dashboard")?,
        users,
        admins,
        disabled,
        sessions,
        logins,
        failures,
        key_id: key.kid.clone(),
        key_age: describe_age(state.now() - key.created_at),
    };
    render(&page)
}

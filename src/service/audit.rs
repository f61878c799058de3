//! Reading the audit log (writing it is `crate::audit`, inside each
//! operation's transaction): pages for the console, and an export of the
//! filtered entries for an incident report.
//!
//! The actor and target filters take what an admin knows at 3 a.m.: an
//! email or part of one (or of a name), which matches the entries of every
//! such user, as well as an exact id (a user, session, key or client) or
//! `system`, `cli`, `anonymous`.

use super::listing::{AuditListing, Page, audit_cursor, search_terms};
use super::{Actor, ServiceError};
use crate::audit::{Event, Outcome};
use crate::client::ClientInfo;
use crate::db::audit::AuditFilter;
use crate::db::{DbConnection, audit, models::AuditRow, users};
use crate::domain::UserId;
use crate::state::AppState;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

/// Users one actor or target filter matches at most; past it the page
/// says so, and shows the entries of the first ones.
pub const USERS_PER_FILTER: usize = 100;
/// Entries one export holds at most.
pub const EXPORT_LIMIT: usize = 100_000;
const EXPORT_BATCH: i64 = 2_000;

/// Every action the log holds, for the console's list.
pub const ACTIONS: &[&str] = &[
    "client.auth",
    "client.create",
    "client.revoke",
    "client.throttled",
    "email.verify",
    "email.verify_request",
    "key.rotate",
    "login",
    "login.mfa_required",
    "login.throttled",
    "mfa.disable",
    "mfa.enable",
    "mfa.enrol",
    "mfa.recovery_codes",
    "mfa.reset",
    "password.change",
    "password.forgot",
    "password.reset",
    "password.reset_link",
    "refresh.reuse",
    "session.logout",
    "session.logout_all",
    "session.revoke",
    "session.revoke_all",
    "setup",
    "store.copy",
    "audit.export",
    "user.create",
    "user.delete",
    "user.password_change",
    "user.password_set",
    "user.unlock",
    "user.update",
];

/// Actors that are not users.
const NAMED_ACTORS: &[&str] = &[crate::audit::ANONYMOUS, "system", "cli"];

/// A page of the log, with the emails of the users it names.
#[derive(Debug)]
pub struct AuditView {
    pub page: Page<AuditRow>,
    /// User id → email, for every actor and target that is a user now.
    pub emails: HashMap<String, String>,
    /// The filters (`actor`, `target`) that matched more users than
    /// [`USERS_PER_FILTER`].
    pub broad: Vec<&'static str>,
}

/// One page of the audit log, newest first.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    listing: AuditListing,
) -> Result<AuditView, ServiceError> {
    actor.require_admin()?;
    state
        .read(move |conn| {
            let (actor, target) = (listing.actor.clone(), listing.target.clone());
            let (mut filter, limit) = listing.into_filter();
            let broad = resolve(conn, &mut filter, actor, target)?;
            let rows = audit::list(conn, &filter)?;
            let emails = emails_in(conn, &rows)?;
            Ok(AuditView {
                page: Page::of(rows, limit, audit_cursor),
                emails,
                broad,
            })
        })
        .await
}

/// Every entry the filters match (at most [`EXPORT_LIMIT`], newest first),
/// with the emails of the users they name. The export itself is audited.
pub async fn export(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    listing: AuditListing,
    format: &'static str,
) -> Result<(Vec<AuditRow>, HashMap<String, String>), ServiceError> {
    actor.require_admin()?;
    let detail = json!({
        "format": format,
        "actor": listing.actor,
        "target": listing.target,
    });
    let (rows, emails) = state
        .read(move |conn| {
            let (actor, target) = (listing.actor.clone(), listing.target.clone());
            let (mut filter, batch) = listing.in_batches_of(EXPORT_BATCH).into_filter();
            resolve(conn, &mut filter, actor, target)?;
            filter.limit = batch;
            let mut rows: Vec<AuditRow> = Vec::new();
            loop {
                let page = audit::list(conn, &filter)?;
                let done = (page.len() as i64) < batch;
                filter.before = page.last().map(|row| row.id);
                rows.extend(page);
                if done || rows.len() >= EXPORT_LIMIT {
                    break;
                }
            }
            rows.truncate(EXPORT_LIMIT);
            let emails = emails_in(conn, &rows)?;
            Ok::<_, ServiceError>((rows, emails))
        })
        .await?;
    let (now, client, actor_id, count) = (
        state.now_naive(),
        client.clone(),
        actor.audit_name(),
        rows.len(),
    );
    state
        .write(move |conn| {
            let mut detail = detail;
            detail["entries"] = json!(count);
            Event::new(&actor_id, "audit.export", Outcome::Ok)
                .client(&client)
                .detail(detail)
                .write(conn, now)?;
            Ok::<_, ServiceError>(())
        })
        .await?;
    Ok((rows, emails))
}

/// Turns the typed actor and target filters into sets of ids; the names
/// of the filters that matched too many users.
fn resolve(
    conn: &mut DbConnection,
    filter: &mut AuditFilter,
    actor: Option<String>,
    target: Option<String>,
) -> Result<Vec<&'static str>, ServiceError> {
    let mut broad = Vec::new();
    if let Some(text) = actor {
        let (ids, more) = who(conn, &text)?;
        filter.actors = Some(ids);
        if more {
            broad.push("actor");
        }
    }
    if let Some(text) = target {
        let (ids, more) = who(conn, &text)?;
        filter.targets = Some(ids);
        if more {
            broad.push("target");
        }
    }
    Ok(broad)
}

/// What an actor or target filter stands for: the text itself (an exact
/// id or a named actor) and, unless it is one, the users whose email or
/// name holds it; and whether more users matched than are taken.
fn who(conn: &mut DbConnection, text: &str) -> Result<(Vec<String>, bool), ServiceError> {
    let mut ids = vec![text.to_owned()];
    if UserId::parse(text).is_some() || NAMED_ACTORS.contains(&text) {
        return Ok((ids, false));
    }
    let found = users::ids_matching(conn, &search_terms(text), USERS_PER_FILTER as i64 + 1)?;
    let more = found.len() > USERS_PER_FILTER;
    ids.extend(found.into_iter().take(USERS_PER_FILTER));
    Ok((ids, more))
}

/// The emails of the users among the entries' actors and targets.
fn emails_in(
    conn: &mut DbConnection,
    rows: &[AuditRow],
) -> Result<HashMap<String, String>, ServiceError> {
    let ids: BTreeSet<String> = rows
        .iter()
        .flat_map(|row| [Some(&row.actor), row.target.as_ref()])
        .flatten()
        .filter(|id| UserId::parse(id).is_some())
        .cloned()
        .collect();
    let ids: Vec<String> = ids.into_iter().collect();
    Ok(users::emails_of(conn, &ids)?)
}

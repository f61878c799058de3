//! Reading the audit log (writing it is `crate::audit`, inside each
//! operation's transaction).

use super::listing::{AuditListing, Page, audit_cursor};
use super::{Actor, ServiceError};
use crate::db::{audit, models::AuditRow};
use crate::state::AppState;

/// One page of the audit log, newest first.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    listing: AuditListing,
) -> Result<Page<AuditRow>, ServiceError> {
    actor.require_admin()?;
    let (filter, limit) = listing.into_filter();
    let rows = state
        .read(move |conn| Ok::<_, ServiceError>(audit::list(conn, &filter)?))
        .await?;
    Ok(Page::of(rows, limit, audit_cursor))
}

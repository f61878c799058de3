//! Queries on `service_clients`: the credentials other services introspect
//! tokens with.

use super::models::ServiceClientRow;
use super::schema::service_clients;
use super::{DbConnection, per_backend};
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &ServiceClientRow) -> QueryResult<usize> {
    diesel::insert_into(service_clients::table)
        .values(row)
        .execute(conn)
}

/// Every client, revoked ones too, newest first.
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<ServiceClientRow>> {
    service_clients::table
        .order((
            service_clients::created_at.desc(),
            service_clients::id.desc(),
        ))
        .select(ServiceClientRow::as_select())
        .load(conn)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<ServiceClientRow>> {
    service_clients::table
        .find(id)
        .select(ServiceClientRow::as_select())
        .first(conn)
        .optional()
}

/// Revokes the client `id` if it is not revoked yet; the row it revoked.
pub fn revoke(
    conn: &mut DbConnection,
    id: &str,
    at: NaiveDateTime,
) -> QueryResult<Option<ServiceClientRow>> {
    let revoke = diesel::update(
        service_clients::table
            .filter(service_clients::id.eq(id))
            .filter(service_clients::revoked_at.is_null()),
    )
    .set(service_clients::revoked_at.eq(at));
    // RETURNING is per backend in Diesel's MultiConnection.
    per_backend!(conn, |c| revoke
        .returning(ServiceClientRow::as_returning())
        .get_result(c)
        .optional())
}

/// Records a use at `at`, unless one at or after `since` is recorded
/// already (so a busy client costs a write a minute, not one a request).
pub fn touch(
    conn: &mut DbConnection,
    id: &str,
    at: NaiveDateTime,
    since: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        service_clients::table
            .filter(service_clients::id.eq(id))
            .filter(
                service_clients::last_used_at
                    .is_null()
                    .or(service_clients::last_used_at.lt(since)),
            ),
    )
    .set(service_clients::last_used_at.eq(at))
    .execute(conn)
}

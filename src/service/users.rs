//! Users: register, create, read, change, delete, list, unlock.

use super::listing::{Page, UserListing};
use super::mailroom::{self, Mailroom};
use super::sessions::{self, reason};
use super::{Actor, ServiceError};
use crate::audit::{Event, Outcome};
use crate::client::ClientInfo;
use crate::db::DbConnection;
use crate::db::models::{NewUserRow, UserChangeset, UserRow, search_text};
use crate::db::{self, StoreError, users};
use crate::domain::{NewUser, Role, UserChanges, UserId};
use crate::state::AppState;
use serde_json::{Value, json};

/// A user by id.
pub async fn find(state: &AppState, id: UserId) -> Result<UserRow, ServiceError> {
    state
        .read(move |conn| users::find(conn, &id)?.ok_or(ServiceError::NotFound))
        .await
}

/// A user by email as typed (normalised here).
pub async fn find_by_email(state: &AppState, email: &str) -> Result<UserRow, ServiceError> {
    let email = crate::domain::Email::normalise(email);
    state
        .read(move |conn| users::find_by_email(conn, &email)?.ok_or(ServiceError::NotFound))
        .await
}

/// Self-registration (`POST /api/user`): [`create`] for whoever
/// `REGISTRATION` lets in.
pub async fn register(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    new_user: NewUser,
) -> Result<UserRow, ServiceError> {
    actor.may_register(state.settings.registration)?;
    if new_user.role != Role::User || new_user.disabled {
        actor.may_set_admin_fields()?;
    }
    create(state, actor, client, new_user).await
}

/// Creates a user: hashing off the async threads, the row, its audit
/// entry and (when verification is on) the verification mail in one
/// transaction.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    new_user: NewUser,
) -> Result<UserRow, ServiceError> {
    create_as(state, actor, client, new_user, false).await
}

/// Creates a user whose address the operator vouches for (the first admin,
/// made at start, at `/admin/setup` or from the shell): verified, no mail.
pub async fn create_vouched(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    new_user: NewUser,
) -> Result<UserRow, ServiceError> {
    create_as(state, actor, client, new_user, true).await
}

async fn create_as(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    new_user: NewUser,
    vouched: bool,
) -> Result<UserRow, ServiceError> {
    let email = new_user.email.as_str().to_owned();
    // Checked before hashing so a taken email does not cost an Argon2 run;
    // the unique index still decides a race.
    if state
        .read(move |conn| Ok::<_, ServiceError>(users::email_taken(conn, &email)?))
        .await?
    {
        return Err(ServiceError::EmailTaken);
    }
    let hash = state.hasher.hash(&new_user.password).await?;
    let now = state.now_naive();
    let actor_id = actor.audit_name();
    let client = client.clone();
    let mailroom = Mailroom::configured(state).filter(|_| !vouched);
    let user = state
        .write(move |conn| {
            let id = UserId::generate();
            let user = users::insert(
                conn,
                &NewUserRow {
                    id: &id,
                    email: new_user.email.as_str(),
                    first_name: new_user.first_name.as_str(),
                    last_name: new_user.last_name.as_str(),
                    password_hash: &hash,
                    role: new_user.role,
                    disabled: new_user.disabled,
                    created_at: now,
                    updated_at: now,
                    search_text: search_text(
                        new_user.email.as_str(),
                        new_user.first_name.as_str(),
                        new_user.last_name.as_str(),
                    ),
                    email_verified: vouched,
                },
            )
            .map_err(email_conflict)?;
            Event::new(&actor_id, "user.create", Outcome::Ok)
                .target(user.id.as_str())
                .client(&client)
                .detail(
                    json!({ "email": user.email, "role": user.role, "disabled": user.disabled }),
                )
                .write(conn, now)?;
            if let Some(mailroom) = &mailroom {
                mailroom.verification(conn, &user, now)?;
            }
            Ok::<_, ServiceError>(user)
        })
        .await?;
    state.mail_queued.notify_one();
    Ok(user)
}

/// A unique violation on insert or update can only be the email.
fn email_conflict(err: diesel::result::Error) -> ServiceError {
    match StoreError::from(err) {
        StoreError::Duplicate(_) => ServiceError::EmailTaken,
        other => other.into(),
    }
}

/// Applies a profile change in one transaction: the last-admin rule, the
/// unique email, ending every session when the user is disabled, and the
/// audit entry with the fields before and after. Role and disabled only
/// from an admin.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    id: UserId,
    changes: UserChanges,
) -> Result<UserRow, ServiceError> {
    actor.may_act_on(&id)?;
    if changes.role.is_some() || changes.disabled.is_some() {
        actor.may_set_admin_fields()?;
    }
    let now = state.now_naive();
    let (actor_id, client) = (actor.audit_name(), client.clone());
    let mailroom = Mailroom::configured(state);
    let updated = state
        .write_revoking(move |conn, revoked| {
            if changes.removes_admin() {
                db::serialize(conn, db::Serialize::Admins)?;
            }
            let before = users::find(conn, &id)?.ok_or(ServiceError::NotFound)?;
            revoked.user_changed(&id);
            if changes.removes_admin() && is_last_admin(conn, &before)? {
                return Err(ServiceError::LastAdmin);
            }
            let new_email = changes.email.map(|e| e.into_string());
            let email_changes = new_email.as_ref().is_some_and(|e| *e != before.email);
            let changeset = UserChangeset {
                first_name: changes.first_name.map(|n| n.into_string()),
                last_name: changes.last_name.map(|n| n.into_string()),
                email: new_email,
                email_verified: email_changes.then_some(false),
                role: changes.role,
                disabled: changes.disabled,
                updated_at: now,
                search_text: None,
            };
            let after = users::update(conn, &id, changeset)
                .map_err(email_conflict)?
                .ok_or(ServiceError::NotFound)?;
            if after.disabled && !before.disabled {
                sessions::end_all_of_user(conn, revoked, &id, None, reason::USER_DISABLED, now)?;
                mailroom::void_reset_links(conn, id.as_str(), now)?;
            }
            Event::new(&actor_id, "user.update", Outcome::Ok)
                .target(id.as_str())
                .client(&client)
                .detail(changed_fields(&before, &after))
                .write(conn, now)?;
            let mailed = match &mailroom {
                Some(mailroom) if email_changes => {
                    mailroom.email_changed(conn, &before, &after, now)?;
                    true
                }
                _ => false,
            };
            Ok((after, mailed))
        })
        .await?;
    let (after, mailed) = updated;
    if mailed {
        state.mail_queued.notify_one();
    }
    Ok(after)
}

/// Whether `user` is an enabled admin and no other enabled admin exists.
fn is_last_admin(conn: &mut DbConnection, user: &UserRow) -> Result<bool, ServiceError> {
    Ok(user.role == Role::Admin
        && !user.disabled
        && users::count_other_enabled_admins(conn, &user.id)? == 0)
}

fn changed_fields(before: &UserRow, after: &UserRow) -> Value {
    let mut changed = serde_json::Map::new();
    let mut compare = |field: &str, old: Value, new: Value| {
        if old != new {
            changed.insert(field.into(), json!({ "before": old, "after": new }));
        }
    };
    compare(
        "first_name",
        json!(before.first_name),
        json!(after.first_name),
    );
    compare("last_name", json!(before.last_name), json!(after.last_name));
    compare("email", json!(before.email), json!(after.email));
    compare("role", json!(before.role), json!(after.role));
    compare("disabled", json!(before.disabled), json!(after.disabled));
    Value::Object(changed)
}

/// Deletes a user in one transaction: the last-admin rule, every session
/// ended (the rows stay, so the revocation survives a restart), the row
/// deleted, the audit entry written.
pub async fn delete(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    id: UserId,
) -> Result<(), ServiceError> {
    actor.may_act_on(&id)?;
    let now = state.now_naive();
    let (actor_id, client) = (actor.audit_name(), client.clone());
    state
        .write_revoking(move |conn, revoked| {
            db::serialize(conn, db::Serialize::Admins)?;
            let user = users::find(conn, &id)?.ok_or(ServiceError::NotFound)?;
            revoked.user_changed(&id);
            if is_last_admin(conn, &user)? {
                return Err(ServiceError::LastAdmin);
            }
            sessions::end_all_of_user(conn, revoked, &id, None, reason::USER_DELETED, now)?;
            users::delete(conn, &id)?;
            Event::new(&actor_id, "user.delete", Outcome::Ok)
                .target(id.as_str())
                .client(&client)
                .detail(json!({ "email": user.email }))
                .write(conn, now)?;
            Ok(())
        })
        .await
}

/// Clears a user's sign-in lock (too many failed sign-ins).
pub async fn unlock(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    user: &UserRow,
) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let (actor_id, client, now) = (actor.audit_name(), client.clone(), state.now_naive());
    let (target, email, throttle) = (user.id.clone(), user.email.clone(), state.throttle.clone());
    state
        .write(move |conn| {
            throttle.unlock(conn, &email)?;
            Event::new(&actor_id, "user.unlock", Outcome::Ok)
                .target(target.as_str())
                .client(&client)
                .write(conn, now)?;
            Ok(())
        })
        .await
}

/// One page of users.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    listing: UserListing,
) -> Result<Page<UserRow>, ServiceError> {
    actor.require_admin()?;
    let (filter, limit) = listing.into_filter();
    let sort = filter.sort;
    let rows = state
        .read(move |conn| Ok::<_, ServiceError>(users::list(conn, &filter)?))
        .await?;
    Ok(Page::of(rows, limit, |last| {
        super::listing::user_cursor(sort, last)
    }))
}

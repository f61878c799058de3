//! The signing key ring: list it, rotate it.

use super::{Actor, ServiceError};
use crate::audit::{Event, Outcome};
use crate::auth::keys;
use crate::client::ClientInfo;
use crate::db::keys as key_store;
use crate::db::models::SigningKeyRow;
use crate::state::AppState;

/// The ring as it is now, newest first, with keys past their verify
/// window retired first.
pub async fn list(state: &AppState, actor: &Actor) -> Result<Vec<SigningKeyRow>, ServiceError> {
    actor.require_admin()?;
    let now = state.now_naive();
    let window = state.keys.verify_window();
    state
        .write(move |conn| {
            keys::retire_expired(conn, now, window)?;
            Ok(key_store::all(conn)?)
        })
        .await
}

/// Rotates the ring in the store, then swaps the in-memory ring, so the
/// next token is signed with the new key. With `revoke_previous` every
/// other key retires at once (after a leak).
pub async fn rotate(
    state: &AppState,
    actor: &Actor,
    client: &ClientInfo,
    revoke_previous: bool,
) -> Result<SigningKeyRow, ServiceError> {
    actor.require_admin()?;
    let (actor_id, client, now) = (actor.audit_name(), client.clone(), state.now_naive());
    let algorithm = state.settings.jwt_algorithm;
    let _ring = state.key_updates.lock().await;
    let (key, rows) = state
        .write(move |conn| {
            let key = keys::rotate(conn, algorithm, revoke_previous, now)?;
            Event::new(&actor_id, "key.rotate", Outcome::Ok)
                .target(&key.kid)
                .client(&client)
                .detail(serde_json::json!({
                    "revoke_previous": revoke_previous,
                    "algorithm": algorithm.as_str(),
                }))
                .write(conn, now)?;
            Ok::<_, ServiceError>((key, key_store::all(conn)?))
        })
        .await?;
    state
        .keys
        .replace(&rows)
        .map_err(|e| ServiceError::Unexpected(e.into()))?;
    log::info!(
        "signing key rotated; new kid {} (revoke_previous: {revoke_previous})",
        key.kid
    );
    Ok(key)
}

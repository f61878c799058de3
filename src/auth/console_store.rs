//! The admin console's session store: actix-session state kept in the
//! store, so a session can be ended on the server (sign-out, a disabled
//! admin, a changed password). The cookie carries a random session key;
//! the store keeps only its SHA-256, so a copy of the database opens no
//! console.

use crate::auth::password::fill_random;
use crate::auth::sessions::sha256_hex;
use crate::clock::Clock;
use crate::db::{self, DbPool, StoreError, console_sessions};
use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use chrono::{NaiveDateTime, TimeDelta};
use std::collections::HashMap;
use std::sync::Arc;

/// The session entry naming the signed-in user; kept in its own column so
/// that all of a user's console sessions can be ended at once.
pub const USER_ID: &str = "uid";

type State = HashMap<String, String>;

#[derive(Clone)]
pub struct DieselSessionStore {
    pool: DbPool,
    clock: Arc<dyn Clock>,
}

impl DieselSessionStore {
    pub fn new(pool: DbPool, clock: Arc<dyn Clock>) -> Self {
        Self { pool, clock }
    }

    fn expiry(&self, ttl: &Duration) -> (NaiveDateTime, NaiveDateTime) {
        let now = self.clock.now().naive_utc();
        (now, now + TimeDelta::seconds(ttl.whole_seconds().max(1)))
    }
}

/// A new session key: 256 bits, base64url.
fn new_key() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// actix-session stores each value JSON-encoded; the user id is a string.
fn user_id(state: &State) -> Option<String> {
    state
        .get(USER_ID)
        .and_then(|raw| serde_json::from_str::<String>(raw).ok())
}

impl SessionStore for DieselSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let hash = sha256_hex(session_key.as_ref());
        let now = self.clock.now().naive_utc();
        let row = db::run(&self.pool, move |conn| {
            console_sessions::find_live(conn, &hash, now).map_err(StoreError::from)
        })
        .await
        .map_err(|e| LoadError::Other(e.into()))?;
        row.map(|row| {
            serde_json::from_str(&row.state).map_err(|e| LoadError::Deserialization(e.into()))
        })
        .transpose()
    }

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let key = new_key();
        let hash = sha256_hex(&key);
        let json = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let (now, expires_at) = self.expiry(ttl);
        db::run(&self.pool, move |conn| {
            console_sessions::insert(
                conn,
                &hash,
                user_id(&state).as_deref(),
                &json,
                now,
                expires_at,
            )
            .map_err(StoreError::from)
        })
        .await
        .map_err(|e| SaveError::Other(e.into()))?;
        SessionKey::try_from(key).map_err(|e| SaveError::Other(e.into()))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let hash = sha256_hex(session_key.as_ref());
        let json =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let (_, expires_at) = self.expiry(ttl);
        let uid = user_id(&state);
        let updated = db::run(&self.pool, move |conn| {
            console_sessions::update(conn, &hash, uid.as_deref(), &json, expires_at)
                .map_err(StoreError::from)
        })
        .await
        .map_err(|e| UpdateError::Other(e.into()))?;
        if updated {
            return Ok(session_key);
        }
        // The session was ended on the server while this request ran: never
        // bring it back; start an anonymous one instead.
        self.save(State::new(), ttl)
            .await
            .map_err(|e| UpdateError::Other(anyhow::anyhow!("{e}")))
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &Duration,
    ) -> Result<(), anyhow::Error> {
        let hash = sha256_hex(session_key.as_ref());
        let (_, expires_at) = self.expiry(ttl);
        db::run(&self.pool, move |conn| {
            console_sessions::extend(conn, &hash, expires_at).map_err(StoreError::from)
        })
        .await?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        let hash = sha256_hex(session_key.as_ref());
        db::run(&self.pool, move |conn| {
            console_sessions::delete(conn, &hash).map_err(StoreError::from)
        })
        .await?;
        Ok(())
    }
}

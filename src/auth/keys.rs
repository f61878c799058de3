//! The key ring: the HMAC keys that sign and verify access tokens.
//!
//! The store is the truth; this module keeps an in-memory copy that the
//! token verifier reads without I/O, swapped whole (`ArcSwap`) whenever the
//! store changes. A `kid` is only ever a look-up in that map.

use crate::audit::{self, Event, Outcome};
use crate::auth::password::fill_random;
use crate::db::DbConnection;
use crate::db::changes;
use crate::db::keys as store;
use crate::db::models::SigningKeyRow;
use crate::domain::KeyState;
use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::QueryResult;
use jsonwebtoken::{DecodingKey, EncodingKey};
use std::collections::HashMap;
use std::sync::Arc;

/// The key that signs new tokens.
pub struct ActiveKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub created_at: DateTime<Utc>,
}

struct VerifyKey {
    decoding: DecodingKey,
    /// A `previous` key verifies until then; the active key has no end.
    until: Option<DateTime<Utc>>,
}

struct Ring {
    active: Arc<ActiveKey>,
    verifiers: HashMap<String, VerifyKey>,
    /// The (kid, state) pairs it was built from, to notice a change made
    /// by another process (the command line, another instance).
    fingerprint: Vec<(String, KeyState)>,
}

fn fingerprint(rows: &[SigningKeyRow]) -> Vec<(String, KeyState)> {
    let mut pairs: Vec<(String, KeyState)> =
        rows.iter().map(|r| (r.kid.clone(), r.state)).collect();
    pairs.sort();
    pairs
}

/// The in-memory key ring.
pub struct KeyRing {
    ring: ArcSwap<Ring>,
    /// How long a key keeps verifying after it stopped signing: the access
    /// token lifetime plus the leeway, so no token it signed outlives it.
    verify_window: TimeDelta,
}

#[derive(Debug, thiserror::Error)]
#[error("the key ring has no active key")]
pub struct NoActiveKey;

impl KeyRing {
    /// Builds the ring from the store's rows.
    pub fn new(rows: &[SigningKeyRow], verify_window: TimeDelta) -> Result<Self, NoActiveKey> {
        let ring = build(rows, verify_window)?;
        Ok(Self {
            ring: ArcSwap::from_pointee(ring),
            verify_window,
        })
    }

    /// Replaces the in-memory ring with the store's current rows.
    pub fn replace(&self, rows: &[SigningKeyRow]) -> Result<(), NoActiveKey> {
        self.ring.store(Arc::new(build(rows, self.verify_window)?));
        Ok(())
    }

    /// Whether the in-memory ring was built from rows like these.
    pub fn is_current(&self, rows: &[SigningKeyRow]) -> bool {
        self.ring.load().fingerprint == fingerprint(rows)
    }

    pub fn active(&self) -> Arc<ActiveKey> {
        self.ring.load().active.clone()
    }

    /// The key that verifies tokens naming `kid` at `now`, if any.
    pub fn verifier(&self, kid: &str, now: DateTime<Utc>) -> Option<DecodingKey> {
        let ring = self.ring.load();
        let key = ring.verifiers.get(kid)?;
        match key.until {
            Some(until) if now >= until => None,
            _ => Some(key.decoding.clone()),
        }
    }

    /// Whether a token signed by `kid` still verifies at `now` (what
    /// [`KeyRing::verifier`] answers, without making the key).
    pub fn accepts(&self, kid: &str, now: DateTime<Utc>) -> bool {
        let ring = self.ring.load();
        ring.verifiers
            .get(kid)
            .is_some_and(|key| key.until.is_none_or(|until| now < until))
    }

    pub fn verify_window(&self) -> TimeDelta {
        self.verify_window
    }
}

fn build(rows: &[SigningKeyRow], verify_window: TimeDelta) -> Result<Ring, NoActiveKey> {
    let active = rows
        .iter()
        .find(|row| row.state == KeyState::Active)
        .ok_or(NoActiveKey)?;
    let verifiers = rows
        .iter()
        .filter(|row| row.state.verifies())
        .map(|row| {
            let until = match row.state {
                KeyState::Previous => {
                    Some(row.deactivated_at.unwrap_or(row.created_at).and_utc() + verify_window)
                }
                _ => None,
            };
            (
                row.kid.clone(),
                VerifyKey {
                    decoding: DecodingKey::from_secret(&row.secret),
                    until,
                },
            )
        })
        .collect();
    Ok(Ring {
        active: Arc::new(ActiveKey {
            kid: active.kid.clone(),
            encoding: EncodingKey::from_secret(&active.secret),
            created_at: active.created_at.and_utc(),
        }),
        verifiers,
        fingerprint: fingerprint(rows),
    })
}

/// A fresh key row: 256 random bits under a random `kid`.
fn new_key(secret: Vec<u8>, now: NaiveDateTime) -> SigningKeyRow {
    let mut kid = [0u8; 12];
    fill_random(&mut kid);
    SigningKeyRow {
        kid: URL_SAFE_NO_PAD.encode(kid),
        secret,
        state: KeyState::Active,
        created_at: now,
        deactivated_at: None,
        retired_at: None,
    }
}

fn random_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 32];
    fill_random(&mut secret);
    secret
}

/// What start-up did to the ring, for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Prepared {
    Unchanged,
    Generated,
    SecretKeyRotatedIn,
    /// `SECRET_KEY` names a key that was retired (after a leak): not used.
    SecretKeyRetired,
}

/// Brings the stored ring to what start-up needs, inside the caller's write
/// transaction: verify-only keys past their window retire; `SECRET_KEY`,
/// when set and new to the ring, becomes the active key as if rotated in
/// (and the audit log says so, as a `key.rotate` by `system`);
/// otherwise a ring without an active key gets a generated one.
pub fn prepare(
    conn: &mut DbConnection,
    secret_key: Option<&[u8]>,
    now: NaiveDateTime,
    verify_window: TimeDelta,
) -> QueryResult<Prepared> {
    crate::db::serialize(conn, crate::db::Serialize::KeyRing)?;
    let retired = store::retire_previous(conn, Some(now - verify_window), now)?;
    let prepared = prepare_active(conn, secret_key, now)?;
    if retired > 0 || prepared != Prepared::Unchanged {
        changed(conn, now)?;
    }
    Ok(prepared)
}

/// The part of [`prepare`] that decides the active key.
fn prepare_active(
    conn: &mut DbConnection,
    secret_key: Option<&[u8]>,
    now: NaiveDateTime,
) -> QueryResult<Prepared> {
    let rows = store::all(conn)?;
    let has_active = rows.iter().any(|row| row.state == KeyState::Active);
    if let Some(secret) = secret_key {
        return match rows.iter().find(|row| row.secret == secret) {
            Some(row) if row.state == KeyState::Retired => {
                if !has_active {
                    store::insert(conn, &new_key(random_secret(), now))?;
                }
                Ok(Prepared::SecretKeyRetired)
            }
            Some(_) => Ok(Prepared::Unchanged),
            None => {
                store::demote_active(conn, now)?;
                let key = new_key(secret.to_vec(), now);
                store::insert(conn, &key)?;
                Event::new(audit::SYSTEM, "key.rotate", Outcome::Ok)
                    .target(&key.kid)
                    .detail(serde_json::json!({ "source": "SECRET_KEY", "revoke_previous": false }))
                    .write(conn, now)?;
                Ok(Prepared::SecretKeyRotatedIn)
            }
        };
    }
    if has_active {
        Ok(Prepared::Unchanged)
    } else {
        store::insert(conn, &new_key(random_secret(), now))?;
        Ok(Prepared::Generated)
    }
}

/// Makes a new random key active and the old one verify-only; with
/// `revoke_previous`, every other key retires at once (every outstanding
/// access token then fails; sessions survive and refresh). Returns the new
/// key's row.
pub fn rotate(
    conn: &mut DbConnection,
    revoke_previous: bool,
    now: NaiveDateTime,
) -> QueryResult<SigningKeyRow> {
    crate::db::serialize(conn, crate::db::Serialize::KeyRing)?;
    store::demote_active(conn, now)?;
    if revoke_previous {
        store::retire_previous(conn, None, now)?;
    }
    let row = new_key(random_secret(), now);
    store::insert(conn, &row)?;
    changed(conn, now)?;
    Ok(row)
}

/// Retires verify-only keys whose window has passed.
pub fn retire_expired(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    verify_window: TimeDelta,
) -> QueryResult<usize> {
    let retired = store::retire_previous(conn, Some(now - verify_window), now)?;
    if retired > 0 {
        changed(conn, now)?;
    }
    Ok(retired)
}

/// Tells every instance the ring changed (they reload it from the store).
fn changed(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<()> {
    changes::record(conn, changes::Kind::Keys, &[""], now)
}

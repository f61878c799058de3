//! The key ring: the keys that sign and verify access tokens, HMAC
//! (`HS256`) or Ed25519 (`EdDSA`) as `JWT_ALGORITHM` says. Each key has one
//! algorithm; a token is verified with the key its `kid` names, by that
//! key's algorithm, never by the one the token's header claims.
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
use crate::domain::{KeyAlgorithm, KeyState};
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
    pub algorithm: KeyAlgorithm,
    pub encoding: EncodingKey,
    pub created_at: DateTime<Utc>,
}

struct VerifyKey {
    algorithm: KeyAlgorithm,
    decoding: DecodingKey,
    /// An Ed25519 key's public half, for the JWKS.
    public: Option<[u8; 32]>,
    /// A `previous` key verifies until then; the active key has no end.
    until: Option<DateTime<Utc>>,
}

/// A public key as the JWKS publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    /// The raw 32 bytes of an Ed25519 public key.
    pub x: [u8; 32],
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

    /// The key that verifies tokens naming `kid` at `now`, if any, and
    /// the algorithm it verifies by.
    pub fn verifier(&self, kid: &str, now: DateTime<Utc>) -> Option<(KeyAlgorithm, DecodingKey)> {
        let ring = self.ring.load();
        let key = ring.verifiers.get(kid)?;
        match key.until {
            Some(until) if now >= until => None,
            _ => Some((key.algorithm, key.decoding.clone())),
        }
    }

    /// The public halves of the Ed25519 keys that verify at `now` (the
    /// active key and those previous keys still in their window), the
    /// active one first. HMAC keys have nothing to publish.
    pub fn public_keys(&self, now: DateTime<Utc>) -> Vec<PublicKey> {
        let ring = self.ring.load();
        let mut keys: Vec<(Option<DateTime<Utc>>, PublicKey)> = ring
            .verifiers
            .iter()
            .filter(|(_, key)| key.until.is_none_or(|until| now < until))
            .filter_map(|(kid, key)| {
                let x = key.public?;
                Some((
                    key.until,
                    PublicKey {
                        kid: kid.clone(),
                        x,
                    },
                ))
            })
            .collect();
        // The active key (no end) first, then the newest previous ones.
        keys.sort_by(|(a, ka), (b, kb)| match (a, b) {
            (None, None) => ka.kid.cmp(&kb.kid),
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(a), Some(b)) => b.cmp(a).then_with(|| ka.kid.cmp(&kb.kid)),
        });
        keys.into_iter().map(|(_, key)| key).collect()
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

/// What is wrong with a key row the ring cannot use.
#[derive(Debug, thiserror::Error)]
pub enum NoActiveKey {
    #[error("the key ring has no active key")]
    Missing,
    #[error("the key {0} is not a 32-byte Ed25519 private key")]
    BadEd25519(String),
}

/// The public half of an Ed25519 key given by its 32-byte seed.
fn ed25519_public(row: &SigningKeyRow) -> Result<[u8; 32], NoActiveKey> {
    let seed: [u8; 32] = row
        .secret
        .as_slice()
        .try_into()
        .map_err(|_| NoActiveKey::BadEd25519(row.kid.clone()))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes())
}

/// An Ed25519 private key (its seed) as PKCS#8 DER (RFC 8410 §7), the
/// form the signer reads.
fn ed25519_pkcs8(seed: &[u8]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    [&PREFIX[..], seed].concat()
}

fn build(rows: &[SigningKeyRow], verify_window: TimeDelta) -> Result<Ring, NoActiveKey> {
    let active = rows
        .iter()
        .find(|row| row.state == KeyState::Active)
        .ok_or(NoActiveKey::Missing)?;
    let mut verifiers = HashMap::new();
    for row in rows.iter().filter(|row| row.state.verifies()) {
        let until = match row.state {
            KeyState::Previous => {
                Some(row.deactivated_at.unwrap_or(row.created_at).and_utc() + verify_window)
            }
            _ => None,
        };
        let (decoding, public) = match row.algorithm {
            KeyAlgorithm::Hs256 => (DecodingKey::from_secret(&row.secret), None),
            KeyAlgorithm::EdDsa => {
                let public = ed25519_public(row)?;
                (DecodingKey::from_ed_der(&public), Some(public))
            }
        };
        let key = VerifyKey {
            algorithm: row.algorithm,
            decoding,
            public,
            until,
        };
        verifiers.insert(row.kid.clone(), key);
    }
    let encoding = match active.algorithm {
        KeyAlgorithm::Hs256 => EncodingKey::from_secret(&active.secret),
        KeyAlgorithm::EdDsa => EncodingKey::from_ed_der(&ed25519_pkcs8(&active.secret)),
    };
    Ok(Ring {
        active: Arc::new(ActiveKey {
            kid: active.kid.clone(),
            algorithm: active.algorithm,
            encoding,
            created_at: active.created_at.and_utc(),
        }),
        verifiers,
        fingerprint: fingerprint(rows),
    })
}

/// A fresh key row under a random `kid`: `secret` is the HMAC secret or
/// the Ed25519 seed.
fn new_key(algorithm: KeyAlgorithm, secret: Vec<u8>, now: NaiveDateTime) -> SigningKeyRow {
    let mut kid = [0u8; 12];
    fill_random(&mut kid);
    SigningKeyRow {
        kid: URL_SAFE_NO_PAD.encode(kid),
        secret,
        state: KeyState::Active,
        created_at: now,
        deactivated_at: None,
        retired_at: None,
        algorithm,
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
    /// `JWT_ALGORITHM` changed: a key of the new algorithm was rotated in;
    /// the old one verifies what it signed until that expires.
    AlgorithmChanged,
}

/// Brings the stored ring to what start-up needs, inside the caller's write
/// transaction: verify-only keys past their window retire; `SECRET_KEY`,
/// when set and new to the ring, becomes the active key as if rotated in
/// (and the audit log says so, as a `key.rotate` by `system`); an active
/// key of another algorithm than `algorithm` (`JWT_ALGORITHM`) is rotated
/// out the same way; a ring without an active key gets a generated one.
pub fn prepare(
    conn: &mut DbConnection,
    algorithm: KeyAlgorithm,
    secret_key: Option<&[u8]>,
    now: NaiveDateTime,
    verify_window: TimeDelta,
) -> QueryResult<Prepared> {
    crate::db::serialize(conn, crate::db::Serialize::KeyRing)?;
    let retired = store::retire_previous(conn, Some(now - verify_window), now)?;
    let prepared = prepare_active(conn, algorithm, secret_key, now)?;
    if retired > 0 || prepared != Prepared::Unchanged {
        changed(conn, now)?;
    }
    Ok(prepared)
}

/// Makes `key` the active key, the active one verify-only, and writes the
/// audit entry of a rotation by the system, saying why.
fn rotate_in(
    conn: &mut DbConnection,
    key: &SigningKeyRow,
    source: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    store::demote_active(conn, now)?;
    store::insert(conn, key)?;
    Event::new(audit::SYSTEM, "key.rotate", Outcome::Ok)
        .target(&key.kid)
        .detail(serde_json::json!({
            "source": source,
            "algorithm": key.algorithm.as_str(),
            "revoke_previous": false,
        }))
        .write(conn, now)
}

/// The part of [`prepare`] that decides the active key.
fn prepare_active(
    conn: &mut DbConnection,
    algorithm: KeyAlgorithm,
    secret_key: Option<&[u8]>,
    now: NaiveDateTime,
) -> QueryResult<Prepared> {
    let rows = store::all(conn)?;
    let active = rows.iter().find(|row| row.state == KeyState::Active);
    // `SECRET_KEY` is an HMAC secret (the settings refuse it with EdDSA).
    if let Some(secret) = secret_key.filter(|_| algorithm == KeyAlgorithm::Hs256) {
        let known = rows
            .iter()
            .find(|row| row.algorithm == KeyAlgorithm::Hs256 && row.secret == secret);
        match known {
            Some(row) if row.state == KeyState::Retired => {
                if active.is_none_or(|key| key.algorithm != algorithm) {
                    let key = new_key(algorithm, random_secret(), now);
                    rotate_in(conn, &key, "JWT_ALGORITHM", now)?;
                }
                return Ok(Prepared::SecretKeyRetired);
            }
            Some(_) => {}
            None => {
                let key = new_key(KeyAlgorithm::Hs256, secret.to_vec(), now);
                rotate_in(conn, &key, "SECRET_KEY", now)?;
                return Ok(Prepared::SecretKeyRotatedIn);
            }
        }
    }
    match active {
        Some(key) if key.algorithm == algorithm => Ok(Prepared::Unchanged),
        Some(_) => {
            let key = new_key(algorithm, random_secret(), now);
            rotate_in(conn, &key, "JWT_ALGORITHM", now)?;
            Ok(Prepared::AlgorithmChanged)
        }
        None => {
            store::insert(conn, &new_key(algorithm, random_secret(), now))?;
            Ok(Prepared::Generated)
        }
    }
}

/// Makes a new random key of `algorithm` active and the old one
/// verify-only; with `revoke_previous`, every other key retires at once
/// (every outstanding access token then fails; sessions survive and
/// refresh). Returns the new key's row.
pub fn rotate(
    conn: &mut DbConnection,
    algorithm: KeyAlgorithm,
    revoke_previous: bool,
    now: NaiveDateTime,
) -> QueryResult<SigningKeyRow> {
    crate::db::serialize(conn, crate::db::Serialize::KeyRing)?;
    store::demote_active(conn, now)?;
    if revoke_previous {
        store::retire_previous(conn, None, now)?;
    }
    let row = new_key(algorithm, random_secret(), now);
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

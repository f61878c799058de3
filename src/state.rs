//! What every handler shares: settings, the store, the clock, the key ring,
//! the revocation set and the hasher.

use crate::auth::keys::KeyRing;
use crate::auth::password::Hasher;
use crate::auth::revocation::RevocationSet;
use crate::auth::sessions::Lifetimes;
use crate::auth::throttle::Throttle;
use crate::auth::tokens::{AccessClaims, TokenError, TokenService};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::errors::ApiError;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::sqlite::SqliteConnection;
use std::sync::{Arc, Mutex};

pub struct AppState {
    pub settings: Settings,
    pub pool: DbPool,
    pub clock: Arc<dyn Clock>,
    pub keys: KeyRing,
    pub tokens: TokenService,
    pub revocations: RevocationSet,
    pub hasher: Hasher,
    pub throttle: Throttle,
    pub lifetimes: Lifetimes,
    /// The one-time token of `/admin/setup`, while no admin exists.
    pub setup_token: Mutex<Option<String>>,
    /// Held while the key ring changes in the store and in memory, so the
    /// last change committed is the one in memory.
    pub key_updates: tokio::sync::Mutex<()>,
    pub metrics: crate::metrics::Metrics,
    pub users: crate::auth::user_cache::UserCache,
}

/// What a write transaction revoked and changed, for the in-memory views
/// (the revocation set, the user cache) once it has committed.
#[derive(Debug, Default)]
pub struct Revoked {
    sessions: Vec<String>,
    users: Vec<String>,
}

impl Revoked {
    pub fn add(&mut self, session_id: String) {
        self.sessions.push(session_id);
    }

    pub fn extend(&mut self, session_ids: Vec<String>) {
        self.sessions.extend(session_ids);
    }

    /// The user's row changed (profile, role, disabled, password, deleted).
    pub fn user_changed(&mut self, user_id: &str) {
        self.users.push(user_id.to_owned());
    }
}

impl AppState {
    /// Whether `token` is the current set-up token (compared in constant time).
    pub fn setup_token_matches(&self, token: &str) -> bool {
        let current = self.setup_token.lock().unwrap_or_else(|e| e.into_inner());
        current
            .as_deref()
            .is_some_and(|expected| constant_time_eq(expected.as_bytes(), token.as_bytes()))
    }

    /// Uses the set-up token up: true for exactly one caller.
    pub fn take_setup_token(&self, token: &str) -> bool {
        let mut current = self.setup_token.lock().unwrap_or_else(|e| e.into_inner());
        let matches = current
            .as_deref()
            .is_some_and(|expected| constant_time_eq(expected.as_bytes(), token.as_bytes()));
        if matches {
            *current = None;
        }
        matches
    }

    /// Puts a taken set-up token back (the admin could not be created).
    pub fn restore_setup_token(&self, token: String) {
        *self.setup_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// `now` as the store keeps times.
    pub fn now_naive(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    pub fn verify_access_token(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.tokens
            .verify(token, &self.keys, &self.revocations, self.now())
    }

    /// A read on a pooled connection, off the async threads.
    pub async fn read<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        db::run(&self.pool, work).await
    }

    /// One write transaction, off the async threads.
    pub async fn write<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        db::run(&self.pool, move |conn| db::write(conn, work)).await
    }

    /// A write transaction that may revoke sessions. This is the one way
    /// sessions are revoked: the store first, then, once the transaction
    /// has committed, the in-memory set that the token check reads, so a
    /// revocation holds from the very next request.
    pub async fn write_revoking<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut SqliteConnection, &mut Revoked) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let (value, revoked) = self
            .write(move |conn| {
                let mut revoked = Revoked::default();
                let value = work(conn, &mut revoked)?;
                Ok((value, revoked))
            })
            .await?;
        if !revoked.sessions.is_empty() {
            self.revocations.insert_all(revoked.sessions, self.now());
        }
        for user in &revoked.users {
            self.users.forget(user);
        }
        Ok(value)
    }
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

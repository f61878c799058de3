//! What every operation shares: settings, the store, the clock, the key
//! ring, the revocation set, the user cache and the hasher; and the three
//! ways to reach the store (a read, a write transaction, a write that
//! revokes), each off the async threads.

use crate::auth::keys::{self, KeyRing, Prepared};
use crate::auth::password::Hasher;
use crate::auth::revocation::RevocationSet;
use crate::auth::sessions::Lifetimes;
use crate::auth::throttle::Throttle;
use crate::auth::tokens::{AccessClaims, TokenError, TokenService};
use crate::auth::user_cache::UserCache;
use crate::clock::Clock;
use crate::config::{ConfigError, Settings};
use crate::db::DbConnection;
use crate::db::{self, DbPool, StoreError, changes, keys as key_store, sessions};
use crate::domain::UserId;
use crate::metrics::Metrics;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use std::sync::{Arc, Mutex};

/// Users kept in memory at most (each a few hundred bytes).
const USER_CACHE_CAPACITY: usize = 100_000;

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
    pub metrics: Metrics,
    pub users: UserCache,
    /// The change feed's newest id when this instance started, read before
    /// the revocation set was loaded: the store watcher reads on from it.
    pub feed_start: i64,
    /// Woken when this instance queues mail, so the outbox worker sends it
    /// at once rather than at its next look.
    pub mail_queued: tokio::sync::Notify,
}

/// What a write transaction revoked and changed, for the in-memory views
/// (the revocation set, the user cache) once it has committed.
#[derive(Debug, Default)]
pub struct Revoked {
    sessions: Vec<String>,
    users: Vec<UserId>,
}

impl Revoked {
    pub fn add(&mut self, session_id: String) {
        self.sessions.push(session_id);
    }

    pub fn extend(&mut self, session_ids: Vec<String>) {
        self.sessions.extend(session_ids);
    }

    /// The user's row changed (profile, role, disabled, password, deleted).
    pub fn user_changed(&mut self, user_id: &UserId) {
        self.users.push(user_id.clone());
    }

    /// Writes what changed to the change feed, in the same transaction, so
    /// that every other instance learns it too.
    fn record(&self, conn: &mut DbConnection, now: NaiveDateTime) -> diesel::QueryResult<()> {
        let sessions: Vec<&str> = self.sessions.iter().map(String::as_str).collect();
        changes::record(conn, changes::Kind::Session, &sessions, now)?;
        let users: Vec<&str> = self.users.iter().map(UserId::as_str).collect();
        changes::record(conn, changes::Kind::User, &users, now)
    }
}

impl AppState {
    /// Opens and migrates the store, prepares the key ring, starts the
    /// hasher and loads the revocation set: everything but the listener.
    pub fn open(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let store = |reason: String| ConfigError::new("DATABASE_URL", reason);
        let pool = db::open(&settings.database, settings.database_pool_size).map_err(store)?;
        let hasher = Hasher::start(settings.hasher_threads, settings.hasher_queue)
            .map_err(|e| ConfigError::new("HASHER_THREADS", e.to_string()))?;
        let window = TimeDelta::from_std(settings.access_token_ttl + settings.token_leeway)
            .map_err(|e| ConfigError::new("ACCESS_TOKEN_TTL", e.to_string()))?;
        let now = clock.now();
        let mut conn = pool
            .get()
            .map_err(|e| store(format!("cannot open the store: {e}")))?;
        let (secret, algorithm) = (settings.secret_key.clone(), settings.jwt_algorithm);
        let prepared = db::write(&mut conn, |conn| {
            keys::prepare(conn, algorithm, secret.as_deref(), now.naive_utc(), window)
        })
        .map_err(|e: diesel::result::Error| store(format!("cannot prepare the key ring: {e}")))?;
        match prepared {
            Prepared::Generated => log::info!("generated a new signing key"),
            Prepared::SecretKeyRotatedIn => {
                log::info!("SECRET_KEY is new to the key ring: it is now the active key")
            }
            Prepared::SecretKeyRetired => {
                log::warn!("SECRET_KEY names a retired key; it is not used for signing")
            }
            Prepared::AlgorithmChanged => log::info!(
                "JWT_ALGORITHM is {algorithm}: a new {algorithm} key is active; tokens signed \
                 before keep working until they expire"
            ),
            Prepared::Unchanged => {}
        }
        let rows = key_store::all(&mut conn).map_err(|e| store(e.to_string()))?;
        let keys = KeyRing::new(&rows, window).map_err(|e| store(e.to_string()))?;
        let feed_start = changes::latest(&mut conn).map_err(|e| store(e.to_string()))?;
        let revocations = RevocationSet::new(window);
        let revoked = sessions::revoked_since(&mut conn, revocations.since(now).naive_utc())
            .map_err(|e| store(e.to_string()))?;
        for (id, at) in revoked {
            revocations.insert_all([id], at.and_utc());
        }
        drop(conn);
        Ok(AppState {
            tokens: TokenService::new(&settings),
            throttle: Throttle::new(&settings),
            lifetimes: Lifetimes::new(&settings),
            settings,
            pool,
            clock,
            keys,
            revocations,
            hasher,
            setup_token: Mutex::new(None),
            key_updates: tokio::sync::Mutex::new(()),
            metrics: Metrics::new(),
            users: UserCache::new(USER_CACHE_CAPACITY),
            feed_start,
            mail_queued: tokio::sync::Notify::new(),
        })
    }

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
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        db::run(&self.pool, work).await
    }

    /// One write transaction, off the async threads.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + From<diesel::result::Error> + Send + 'static,
    {
        db::run(&self.pool, move |conn| db::write(conn, work)).await
    }

    /// A write transaction that may revoke sessions. This is the one way
    /// sessions are revoked: the store first, then, once the transaction
    /// has committed, the in-memory set that the token check reads, so a
    /// revocation holds from the very next request.
    pub async fn write_revoking<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection, &mut Revoked) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + From<diesel::result::Error> + Send + 'static,
    {
        let now = self.now_naive();
        let (value, revoked) = self
            .write(move |conn| {
                let mut revoked = Revoked::default();
                let value = work(conn, &mut revoked)?;
                revoked.record(conn, now)?;
                Ok::<_, E>((value, revoked))
            })
            .await?;
        if !revoked.sessions.is_empty() {
            self.revocations.insert_all(revoked.sessions, self.now());
        }
        for user in &revoked.users {
            self.users.forget(user.as_str());
        }
        Ok(value)
    }
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

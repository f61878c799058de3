//! The in-memory set of recently revoked sessions.
//!
//! An access token lives at most `ACCESS_TOKEN_TTL` (+ leeway), so only a
//! session revoked within that window can still have a live token: the set
//! that matters is small, and checking it costs a hash look-up, no I/O.
//! Every path that revokes writes the store first, then adds the session
//! ids here (see `AppState::write_revoking`); at start the set is loaded
//! from the store.

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::sync::RwLock;

pub struct RevocationSet {
    revoked: RwLock<HashMap<String, DateTime<Utc>>>,
    /// Entries older than this can no longer matter.
    window: TimeDelta,
}

impl RevocationSet {
    pub fn new(window: TimeDelta) -> Self {
        Self {
            revoked: RwLock::new(HashMap::new()),
            window,
        }
    }

    pub fn is_revoked(&self, session_id: &str) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(session_id)
    }

    /// Adds sessions revoked at `at`.
    pub fn insert_all<I: IntoIterator<Item = String>>(&self, session_ids: I, at: DateTime<Utc>) {
        let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        for id in session_ids {
            revoked.insert(id, at);
        }
    }

    /// Drops the entries whose tokens have all expired by `now`.
    pub fn prune(&self, now: DateTime<Utc>) {
        let cutoff = now - self.window;
        self.revoked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, at| *at >= cutoff);
    }

    /// Since when a revocation still matters at `now`.
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.window
    }

    pub fn len(&self) -> usize {
        self.revoked.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_leave_once_their_tokens_expired() {
        let set = RevocationSet::new(TimeDelta::seconds(300));
        let t0 = Utc::now();
        set.insert_all(["a".to_string()], t0);
        set.prune(t0 + TimeDelta::seconds(299));
        assert!(set.is_revoked("a"));
        set.prune(t0 + TimeDelta::seconds(301));
        assert!(!set.is_revoked("a"));
    }
}

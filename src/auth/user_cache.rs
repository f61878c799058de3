//! Users as the store last gave them, kept in memory so a signed-in
//! request (`GET /api/user/me`, the authorization of the others) costs no
//! store round-trip. Every path that changes a user forgets it after its
//! transaction commits (`AppState::write_revoking`, the sign-in); changes
//! made by another process are noticed by the store watcher within a
//! second. Bounded: when full it starts over, which costs one read per
//! user, never a wrong answer.

use crate::db::models::UserRow;
use crate::domain::UserId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub struct UserCache {
    users: RwLock<HashMap<UserId, Arc<UserRow>>>,
    capacity: usize,
    /// Bumped by every `forget`: a row read from the store before a change
    /// committed must not be cached after it.
    generation: AtomicU64,
}

impl UserCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            users: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
            generation: AtomicU64::new(0),
        }
    }

    /// Call before reading a user from the store; pass the value to
    /// [`UserCache::insert`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, id: &str) -> Option<Arc<UserRow>> {
        self.users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Caches a row read at `generation`, unless a user changed since.
    pub fn insert(&self, generation: u64, user: Arc<UserRow>) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if users.len() >= self.capacity {
            users.clear();
        }
        users.insert(user.id.clone(), user);
    }

    /// Forgets every user (this instance may have missed changes).
    pub fn forget_all(&self) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        users.clear();
    }

    pub fn forget(&self, id: &str) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        users.remove(id);
    }
}

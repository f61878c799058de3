//! Access tokens that already passed the full check, so a client sending
//! the same token again skips the base64, HMAC and JSON work (about half of
//! what the guarded route cost).
//!
//! Only what cannot change is remembered: the exact token bytes, the `kid`
//! that signed them and the claims they carry. Everything that can change
//! is still checked on every request by the caller: that the key still
//! verifies at this instant (a retired or revoked key ends its tokens on the
//! next request), the expiry against the app's clock, and the session's
//! revocation. A token is compared in constant time, so a lookup reveals
//! nothing about the tokens kept. Bounded: when full, expired entries go
//! and, if that frees nothing, it starts over, which costs one full check
//! per token, never a wrong answer.

use super::claims::AccessClaims;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;

/// How many tokens are kept (each about 1 KiB).
pub const CAPACITY: usize = 4096;

pub struct VerifiedToken {
    pub kid: String,
    pub claims: AccessClaims,
}

/// A token's bytes, equal only in constant time. Unsized, so a lookup can
/// borrow the request's token instead of copying it.
#[repr(transparent)]
struct TokenBytes([u8]);

impl TokenBytes {
    fn of(token: &str) -> &Self {
        // SAFETY: `TokenBytes` is a `repr(transparent)` wrapper of `[u8]`,
        // so the two references have the same layout and metadata.
        unsafe { &*(token.as_bytes() as *const [u8] as *const TokenBytes) }
    }
}

impl PartialEq for TokenBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for TokenBytes {}

impl Hash for TokenBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

/// The stored key: owns the bytes, compares and hashes as [`TokenBytes`].
struct TokenKey(Box<[u8]>);

impl Borrow<TokenBytes> for TokenKey {
    fn borrow(&self) -> &TokenBytes {
        // SAFETY: as in `TokenBytes::of`.
        unsafe { &*(&*self.0 as *const [u8] as *const TokenBytes) }
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        Borrow::<TokenBytes>::borrow(self) == Borrow::<TokenBytes>::borrow(other)
    }
}

impl Eq for TokenKey {}

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Borrow::<TokenBytes>::borrow(self).hash(state);
    }
}

type Map = HashMap<TokenKey, Arc<VerifiedToken>, foldhash::fast::RandomState>;

pub struct VerifiedTokens {
    entries: RwLock<Map>,
    capacity: usize,
}

impl VerifiedTokens {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(Map::default()),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, token: &str) -> Option<Arc<VerifiedToken>> {
        // The map compares with `TokenBytes`' constant-time `eq`.
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(TokenBytes::of(token)).cloned()
    }

    /// Remembers a token that passed every check at `now` (seconds).
    pub fn insert(&self, token: &str, kid: &str, claims: &AccessClaims, now: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, entry| entry.claims.exp > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            TokenKey(token.as_bytes().into()),
            Arc::new(VerifiedToken {
                kid: kid.to_owned(),
                claims: claims.clone(),
            }),
        );
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "latchkey".into(),
            aud: "latchkey".into(),
            sub: "1".into(),
            sid: "s".into(),
            jti: "j".into(),
            iat: 0,
            exp,
            nbf: None,
            role: Role::User,
        }
    }

    #[test]
    fn only_the_exact_token_is_found() {
        let cache = VerifiedTokens::new(8);
        cache.insert("a.b.c", "k1", &claims(100), 0);
        assert_eq!(cache.get("a.b.c").unwrap().kid, "k1");
        assert!(cache.get("a.b.d").is_none());
        assert!(cache.get("a.b.c.").is_none());
        assert!(cache.get("a.b.").is_none());
    }

    #[test]
    fn when_full_expired_entries_go_first_then_everything() {
        let cache = VerifiedTokens::new(2);
        cache.insert("old", "k", &claims(10), 0);
        cache.insert("live", "k", &claims(100), 0);
        cache.insert("new", "k", &claims(100), 50);
        assert!(cache.get("old").is_none());
        assert!(cache.get("live").is_some() && cache.get("new").is_some());
        cache.insert("newer", "k", &claims(100), 60);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("newer").is_some());
    }
}

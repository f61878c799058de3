//! The one source of "now" for every rule that depends on time (token
//! expiry, session lifetimes, the reuse grace window, throttling windows,
//! key retirement). Tests that need time to pass inject a [`ManualClock`].

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use std::sync::Mutex;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock to the microsecond: what both backends keep (SQLite
/// would keep nanoseconds, PostgreSQL rounds them), so a time read back
/// from either store equals the time that was written.
fn wall_clock() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        wall_clock()
    }
}

/// The wall clock plus an offset that a test can move forward, so that a
/// test can let fourteen days pass without sleeping.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset: Mutex<TimeDelta>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves this clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset += TimeDelta::seconds(seconds);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        wall_clock() + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}

//! Sign-in throttling: failure counters per account and per client address,
//! kept in the store so they hold across restarts (and, later, instances).
//!
//! An attempt is counted *before* the password is checked, in one upsert
//! that returns the new count, and taken back when it turns out not to be a
//! failure. So however many attempts run in parallel, at most
//! `LOGIN_MAX_FAILURES` of them get to try a password in one window.

use crate::db::throttle as store;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::QueryResult;
use diesel::sqlite::SqliteConnection;

#[derive(Debug, Clone)]
pub struct Throttle {
    max_failures: i32,
    max_failures_per_address: i32,
    window: TimeDelta,
}

/// An attempt that was let through, holding its place in the counters.
#[derive(Debug, Clone)]
pub struct Attempt {
    account: (String, NaiveDateTime),
    address: Option<(String, NaiveDateTime)>,
}

/// What the throttle says about one attempt.
#[derive(Debug, Clone)]
pub enum Gate {
    Open(Attempt),
    /// Refused; try again after this many seconds.
    Closed {
        retry_after: u64,
    },
}

pub fn account_subject(email: &str) -> String {
    format!("email:{email}")
}

fn address_subject(addr: &str) -> String {
    format!("addr:{addr}")
}

impl Throttle {
    pub fn new(settings: &crate::config::Settings) -> Self {
        let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        Self {
            max_failures: count(settings.login_max_failures),
            max_failures_per_address: count(settings.login_max_failures_per_address),
            window: TimeDelta::from_std(settings.login_window).unwrap_or(TimeDelta::MAX),
        }
    }

    /// Counts an attempt for `email` (normalised) from `addr`, or refuses it
    /// when either counter is full. A refused attempt is not counted.
    pub fn admit(
        &self,
        conn: &mut SqliteConnection,
        email: &str,
        addr: Option<&str>,
        now: NaiveDateTime,
    ) -> QueryResult<Gate> {
        let cutoff = now - self.window;
        let account_subject = account_subject(email);
        let (count, start) = store::count_attempt(conn, &account_subject, now, cutoff)?;
        if count > self.max_failures {
            store::uncount_attempt(conn, &account_subject, start)?;
            return Ok(Gate::Closed {
                retry_after: self.retry_after(start, now),
            });
        }
        let account = (account_subject, start);
        let Some(addr) = addr else {
            return Ok(Gate::Open(Attempt {
                account,
                address: None,
            }));
        };
        let address_subject = address_subject(addr);
        let (count, addr_start) = store::count_attempt(conn, &address_subject, now, cutoff)?;
        if count > self.max_failures_per_address {
            store::uncount_attempt(conn, &address_subject, addr_start)?;
            store::uncount_attempt(conn, &account.0, account.1)?;
            return Ok(Gate::Closed {
                retry_after: self.retry_after(addr_start, now),
            });
        }
        Ok(Gate::Open(Attempt {
            account,
            address: Some((address_subject, addr_start)),
        }))
    }

    /// The password was right: the account's counter is cleared and the
    /// attempt does not count against the address.
    pub fn succeeded(&self, conn: &mut SqliteConnection, attempt: &Attempt) -> QueryResult<()> {
        store::clear(conn, &attempt.account.0)?;
        if let Some((subject, start)) = &attempt.address {
            store::uncount_attempt(conn, subject, *start)?;
        }
        Ok(())
    }

    /// The attempt was not a failure (a disabled user with the right
    /// password): it counts against nothing.
    pub fn withdraw(&self, conn: &mut SqliteConnection, attempt: &Attempt) -> QueryResult<()> {
        store::uncount_attempt(conn, &attempt.account.0, attempt.account.1)?;
        if let Some((subject, start)) = &attempt.address {
            store::uncount_attempt(conn, subject, *start)?;
        }
        Ok(())
    }

    /// Deletes the counters of windows that have passed.
    pub fn sweep(&self, conn: &mut SqliteConnection, now: NaiveDateTime) -> QueryResult<usize> {
        store::sweep(conn, now - self.window)
    }

    /// Clears an account's counter (an admin unlocking it).
    pub fn unlock(&self, conn: &mut SqliteConnection, email: &str) -> QueryResult<()> {
        store::clear(conn, &account_subject(email)).map(|_| ())
    }

    /// Whether an account is locked now, and for how long.
    pub fn locked_for(
        &self,
        conn: &mut SqliteConnection,
        email: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Option<u64>> {
        Ok(store::get(conn, &account_subject(email))?
            .filter(|(count, start)| *count >= self.max_failures && *start > now - self.window)
            .map(|(_, start)| self.retry_after(start, now)))
    }

    /// Whole seconds until the window that began at `start` ends, 1 at least.
    fn retry_after(&self, start: NaiveDateTime, now: NaiveDateTime) -> u64 {
        let left = (start + self.window - now).num_milliseconds();
        let secs = (left + 999) / 1000;
        secs.clamp(1, self.window.num_seconds().max(1)) as u64
    }
}

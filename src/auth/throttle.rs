//! Sign-in throttling: failure counters per account and per client address,
//! kept in the store so they hold across restarts (and, later, instances).
//!
//! A locked account or address is refused before any password is checked.
//! A wrong password is counted afterwards, in one upsert that returns the
//! new count, so however many attempts run in parallel, at most
//! `LOGIN_MAX_FAILURES` of them are told "wrong password" in one window;
//! the rest get 429 and count for nothing. Right passwords are never held
//! back by attempts still in flight.

use crate::db::DbConnection;
use crate::db::throttle as store;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::QueryResult;

/// What [`Throttle::check`] found.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Locked for this many seconds (the account or the address).
    pub locked: Option<u64>,
    /// The account has a failure counter, which a right password clears.
    pub account_has_failures: bool,
}

#[derive(Debug, Clone)]
pub struct Throttle {
    max_failures: i32,
    max_failures_per_address: i32,
    window: TimeDelta,
}

/// What failures are counted against, besides the client address: a
/// user's account (by email) or a service client (by id).
#[derive(Debug, Clone, Copy)]
pub enum Account<'a> {
    Email(&'a str),
    ServiceClient(&'a str),
}

impl Account<'_> {
    fn subject(&self) -> String {
        match self {
            Account::Email(email) => account_subject(email),
            Account::ServiceClient(id) => format!("client:{id}"),
        }
    }
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

    /// Before a password is checked, in one read: whether the account or
    /// the address is locked now. Counts nothing.
    pub fn check(
        &self,
        conn: &mut DbConnection,
        account: Account<'_>,
        addr: Option<&str>,
        now: NaiveDateTime,
    ) -> QueryResult<Check> {
        let account = account.subject();
        let address = addr.map(address_subject);
        let subjects: Vec<&str> = std::iter::once(account.as_str())
            .chain(address.as_deref())
            .collect();
        let counters = store::get_all(conn, &subjects)?;
        let counter = |subject: &str| {
            counters
                .iter()
                .find(|(s, _, _)| s == subject)
                .map(|(_, count, start)| (*count, *start))
        };
        let account_counter = counter(&account);
        let locked = self
            .lock_of(account_counter, self.max_failures, now)
            .or_else(|| {
                let counter = counter(address.as_deref()?);
                self.lock_of(counter, self.max_failures_per_address, now)
            });
        Ok(Check {
            locked,
            account_has_failures: account_counter.is_some(),
        })
    }

    /// `Some(seconds)` when a counter has reached `max` in a window that has
    /// not ended.
    fn lock_of(
        &self,
        counter: Option<(i32, NaiveDateTime)>,
        max: i32,
        now: NaiveDateTime,
    ) -> Option<u64> {
        counter
            .filter(|(count, start)| *count >= max && *start > now - self.window)
            .map(|(_, start)| self.retry_after(start, now))
    }

    fn full(
        &self,
        conn: &mut DbConnection,
        subject: &str,
        max: i32,
        now: NaiveDateTime,
    ) -> QueryResult<Option<u64>> {
        Ok(self.lock_of(store::get(conn, subject)?, max, now))
    }

    /// A wrong password: counts one failure for the account and the address
    /// in one upsert each. When either count goes past its limit (parallel
    /// attempts that all passed [`Throttle::locked`]), the failure is taken
    /// back and `Some(seconds)` says to answer 429 instead of 401: at most
    /// `LOGIN_MAX_FAILURES` attempts in a window ever learn "wrong password".
    pub fn record_failure(
        &self,
        conn: &mut DbConnection,
        account: Account<'_>,
        addr: Option<&str>,
        now: NaiveDateTime,
    ) -> QueryResult<Option<u64>> {
        let cutoff = now - self.window;
        let mut counted = Vec::new();
        let mut refused = None;
        let subjects = std::iter::once((account.subject(), self.max_failures))
            .chain(addr.map(|addr| (address_subject(addr), self.max_failures_per_address)));
        for (subject, max) in subjects {
            let (count, start) = store::count_attempt(conn, &subject, now, cutoff)?;
            counted.push((subject, start));
            if count > max {
                refused = Some(self.retry_after(start, now));
                break;
            }
        }
        if refused.is_some() {
            for (subject, start) in &counted {
                store::uncount_attempt(conn, subject, *start)?;
            }
        }
        Ok(refused)
    }

    /// The right password (or secret): the account's failures are forgotten.
    pub fn succeeded(&self, conn: &mut DbConnection, account: Account<'_>) -> QueryResult<()> {
        store::clear(conn, &account.subject()).map(|_| ())
    }

    /// Deletes the counters of windows that have passed.
    pub fn sweep(&self, conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
        store::sweep(conn, now - self.window)
    }

    /// Counts one request that may send mail (a forgotten password) from
    /// the client address `addr`, in the sign-in window; the count so far.
    /// Past a limit such requests are answered alike but send nothing.
    pub fn count_mail_request(
        &self,
        conn: &mut DbConnection,
        addr: &str,
        now: NaiveDateTime,
    ) -> QueryResult<i32> {
        store::count_attempt(conn, &format!("mail:{addr}"), now, now - self.window)
            .map(|(count, _)| count)
    }

    /// Clears an account's counter (an admin unlocking it).
    pub fn unlock(&self, conn: &mut DbConnection, email: &str) -> QueryResult<()> {
        store::clear(conn, &account_subject(email)).map(|_| ())
    }

    /// Whether an account is locked now, and for how long.
    pub fn locked_for(
        &self,
        conn: &mut DbConnection,
        email: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Option<u64>> {
        self.full(conn, &account_subject(email), self.max_failures, now)
    }

    /// Whole seconds until the window that began at `start` ends, 1 at least.
    fn retry_after(&self, start: NaiveDateTime, now: NaiveDateTime) -> u64 {
        let left = (start + self.window - now).num_milliseconds();
        let secs = (left + 999) / 1000;
        secs.clamp(1, self.window.num_seconds().max(1)) as u64
    }
}

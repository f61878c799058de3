//! Times as every face shows them: RFC 3339 in UTC, whole seconds
//! (`2026-11-23T18:20:59Z`). Owned by no face, so both can use it.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// `at` (a UTC time as the store keeps it) in RFC 3339.
pub fn format(at: NaiveDateTime) -> String {
    DateTime::<Utc>::from_naive_utc_and_offset(at, Utc).to_rfc3339_opts(SecondsFormat::Secs, true)
}

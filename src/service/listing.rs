//! Listings, for every face the same: one parser for a listing's query
//! (user table and audit log), one pager ("fetch one more than a page; if
//! it came, the last row shown is where the next page starts"), and the
//! opaque cursors it hands out. A cursor this server did not give out, or
//! one from another sort, is refused.

use super::ServiceError;
use crate::db::audit::AuditFilter;
use crate::db::models::{AuditRow, UserRow};
use crate::db::users::{After, UserFilter, UserSort};
use crate::domain::{Role, UserId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime};

/// A page size when none is asked for.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest page size a client may ask for.
pub const MAX_LIMIT: i64 = 200;

/// One page of a listing and where the next one starts.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last one.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// `rows` were read with a limit of `limit + 1`: one more tells whether
    /// there is a next page, which starts after the last row kept.
    pub fn of(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page { items: rows, next }
    }
}

/// A listing's query as it arrived: each parameter absent or as typed.
#[derive(Debug, Default, Clone, Copy)]
pub struct ListParams<'a> {
    pub q: Option<&'a str>,
    pub role: Option<&'a str>,
    pub disabled: Option<&'a str>,
    pub sort: Option<&'a str>,
    pub limit: Option<&'a str>,
    pub cursor: Option<&'a str>,
}

/// A user listing, every parameter checked.
#[derive(Debug, Clone)]
pub struct UserListing {
    filter: UserFilter,
    limit: i64,
}

impl UserListing {
    pub fn parse(params: ListParams<'_>) -> Result<Self, ServiceError> {
        let bad = |why: &str| ServiceError::BadRequest(why.to_owned());
        let sort = match params.sort {
            None | Some("created") => UserSort::Newest,
            Some("email") => UserSort::Email,
            Some("last_login") => UserSort::LastLogin,
            Some(_) => return Err(bad("`sort` must be `created`, `email` or `last_login`")),
        };
        let limit = parse_limit(params.limit)?;
        let role = params
            .role
            .map(|raw| Role::parse(raw).map_err(|_| bad("`role` must be `user` or `admin`")))
            .transpose()?;
        let disabled = params.disabled.map(parse_bool).transpose()?;
        let after = params
            .cursor
            .map(|raw| decode(sort, raw).ok_or_else(|| not_given_out("cursor")))
            .transpose()?;
        let q = params.q.map(search_terms).filter(|q| !q.is_empty());
        Ok(Self {
            filter: UserFilter {
                q,
                role,
                disabled,
                sort,
                after,
                limit: limit + 1,
            },
            limit,
        })
    }

    /// The store's filter (asking for one row more than a page) and the
    /// page size.
    pub fn into_filter(self) -> (UserFilter, i64) {
        (self.filter, self.limit)
    }
}

/// An audit listing: filters and where the page starts. The actor and
/// target filters are kept as typed (an id, or an email or part of one):
/// `service::audit` resolves them against the users.
#[derive(Debug, Clone)]
pub struct AuditListing {
    pub actor: Option<String>,
    pub target: Option<String>,
    filter: AuditFilter,
    limit: i64,
}

/// An audit listing's query as it arrived.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuditParams<'a> {
    pub actor: Option<&'a str>,
    pub target: Option<&'a str>,
    pub action: Option<&'a str>,
    pub outcome: Option<&'a str>,
    /// UTC, `2026-12-04T22:30` (as a `datetime-local` field sends it),
    /// with seconds, RFC 3339, or a date alone.
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub cursor: Option<&'a str>,
}

impl AuditListing {
    pub fn parse(params: AuditParams<'_>) -> Result<Self, ServiceError> {
        let before = params
            .cursor
            .map(|raw| raw.parse::<i32>().map_err(|_| not_given_out("before")))
            .transpose()?;
        let text =
            |value: Option<&str>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let time =
            |name: &str, value: Option<&str>| -> Result<Option<NaiveDateTime>, ServiceError> {
                text(value)
                    .map(|raw| {
                        parse_time(&raw).ok_or_else(|| {
                            ServiceError::BadRequest(format!(
                                "`{name}` must be a UTC date and time such as 2026-12-04T22:30"
                            ))
                        })
                    })
                    .transpose()
            };
        Ok(Self {
            actor: text(params.actor),
            target: text(params.target),
            filter: AuditFilter {
                actors: None,
                targets: None,
                action: text(params.action),
                outcome: text(params.outcome),
                from: time("from", params.from)?,
                to: time("to", params.to)?,
                before,
                limit: DEFAULT_LIMIT + 1,
            },
            limit: DEFAULT_LIMIT,
        })
    }

    /// The same filters, `rows` at a time (an export reads in batches).
    pub fn in_batches_of(mut self, rows: i64) -> Self {
        self.filter.limit = rows + 1;
        self.limit = rows;
        self
    }

    pub fn into_filter(self) -> (AuditFilter, i64) {
        (self.filter, self.limit)
    }
}

/// A time as the audit filters take it, in UTC.
fn parse_time(raw: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
    .or_else(|| {
        DateTime::parse_from_rfc3339(raw)
            .ok()
            .map(|t| t.naive_utc())
    })
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
}

/// A page position the server did not hand out.
fn not_given_out(parameter: &str) -> ServiceError {
    ServiceError::BadRequest(format!("`{parameter}` is not one this server gave out"))
}

fn parse_limit(raw: Option<&str>) -> Result<i64, ServiceError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ServiceError::BadRequest(format!("`limit` must be 1 to {MAX_LIMIT}"))),
    }
}

fn parse_bool(raw: &str) -> Result<bool, ServiceError> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ServiceError::BadRequest(
            "`disabled` must be `true` or `false`".into(),
        )),
    }
}

/// A search as typed, trimmed, without control characters (a NUL would end
/// SQLite's pattern early and match everything).
pub fn search_terms(q: &str) -> String {
    q.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The cursor of the page after `last` in the order `sort`.
pub fn user_cursor(sort: UserSort, last: &UserRow) -> String {
    encode(&After::of(sort, last))
}

/// The cursor of the page after the audit entry `last`.
pub fn audit_cursor(last: &AuditRow) -> String {
    last.id.to_string()
}

/// The sort key of the last row shown, base64url-encoded.
pub fn encode(after: &After) -> String {
    let micros = |at: &NaiveDateTime| at.and_utc().timestamp_micros().to_string();
    let raw = match after {
        After::Newest(at, id) => format!("n:{}:{id}", micros(at)),
        After::Email(email) => format!("e:{email}"),
        After::LastLogin(Some(at), id) => format!("l:{}:{id}", micros(at)),
        After::LastLogin(None, id) => format!("l:-:{id}"),
    };
    URL_SAFE_NO_PAD.encode(raw)
}

pub fn decode(sort: UserSort, cursor: &str) -> Option<After> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (kind, rest) = raw.split_once(':')?;
    let time_and_id = |rest: &str| -> Option<(Option<NaiveDateTime>, UserId)> {
        let (micros, id) = rest.split_once(':')?;
        let id = UserId::parse(id)?;
        let at = match micros {
            "-" => None,
            m => Some(DateTime::from_timestamp_micros(m.parse().ok()?)?.naive_utc()),
        };
        Some((at, id))
    };
    match (sort, kind) {
        (UserSort::Newest, "n") => match time_and_id(rest)? {
            (Some(at), id) => Some(After::Newest(at, id)),
            (None, _) => None,
        },
        (UserSort::Email, "e") => Some(After::Email(rest.to_owned())),
        (UserSort::LastLogin, "l") => time_and_id(rest).map(|(at, id)| After::LastLogin(at, id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let at = DateTime::from_timestamp_micros(1_796_000_000_123_456)
            .unwrap()
            .naive_utc();
        let id = UserId::parse("3f1c0a52-8a8e-4a55-9a0b-3b0b8f7a9c11").unwrap();
        for (sort, after) in [
            (UserSort::Newest, After::Newest(at, id.clone())),
            (UserSort::Email, After::Email("a:b@example.com".into())),
            (UserSort::LastLogin, After::LastLogin(Some(at), id.clone())),
            (UserSort::LastLogin, After::LastLogin(None, id.clone())),
        ] {
            assert_eq!(decode(sort, &encode(&after)), Some(after));
        }
        assert_eq!(
            decode(UserSort::Email, &encode(&After::Newest(at, id))),
            None
        );
        for garbage in ["", "!!", "bm9wZQ", "bjoxOjI"] {
            assert_eq!(decode(UserSort::Newest, garbage), None, "{garbage}");
        }
    }

    #[test]
    fn a_page_keeps_its_limit_and_points_after_its_last_row() {
        let full = Page::of(vec![1, 2, 3, 4], 3, |n| n.to_string());
        assert_eq!((full.items, full.next), (vec![1, 2, 3], Some("3".into())));
        let last = Page::of(vec![1, 2], 3, |n| n.to_string());
        assert_eq!((last.items, last.next), (vec![1, 2], None));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decoding_any_text_never_panics(cursor in "\\PC{0,200}") {
            for sort in [UserSort::Newest, UserSort::Email, UserSort::LastLogin] {
                let _ = decode(sort, &cursor);
            }
        }

        #[test]
        fn decoding_any_bytes_behind_base64_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let cursor = URL_SAFE_NO_PAD.encode(bytes);
            for sort in [UserSort::Newest, UserSort::Email, UserSort::LastLogin] {
                let _ = decode(sort, &cursor);
            }
        }
    }
}

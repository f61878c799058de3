//! Queries on `changes`: the feed every instance reads to learn what
//! another one (or the command line) revoked or changed.

use super::schema::changes;
use super::{DbConnection, Prepare, Serialize};
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Text};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A session was revoked; the subject is its id.
    Session,
    /// A user's row changed or went; the subject is their id.
    User,
    /// The key ring changed; no subject.
    Keys,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::User => "user",
            Kind::Keys => "keys",
        }
    }
}

/// The PostgreSQL channel a commit with changes notifies (it is also
/// spelled out in the two literal statements below).
pub const CHANNEL: &str = "latchkey_changes";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = changes)]
pub struct ChangeRow {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub at: NaiveDateTime,
}

impl ChangeRow {
    pub fn kind(&self) -> Option<Kind> {
        [Kind::Session, Kind::User, Kind::Keys]
            .into_iter()
            .find(|k| k.as_str() == self.kind)
    }
}

/// Records changes inside the caller's write transaction. On PostgreSQL
/// one statement takes the feed's lock before drawing ids, so that ids
/// become visible in the order they were given out (a reader never skips
/// one committed late), inserts the rows and notifies the listeners, who
/// hear it when the transaction commits. Call it last in the transaction:
/// the lock is held to the commit, and a transaction that asked for row
/// locks after taking it could deadlock with one that waits for it while
/// holding those rows. `at` (when the rows may be swept) is the writer's
/// clock on SQLite, the database server's on PostgreSQL.
pub fn record(
    conn: &mut DbConnection,
    kind: Kind,
    subjects: &[&str],
    at: NaiveDateTime,
) -> QueryResult<()> {
    insert(conn, kind, subjects, at, Wake::Now)
}

/// [`record`] for a change that no other instance needs before its next
/// poll (at most a second later): a user's `last_login_at`, which only
/// shows. Other instances are not woken: under a sign-in storm each would
/// otherwise read the feed once per sign-in.
pub fn record_for_next_poll(
    conn: &mut DbConnection,
    kind: Kind,
    subjects: &[&str],
    at: NaiveDateTime,
) -> QueryResult<()> {
    insert(conn, kind, subjects, at, Wake::AtNextPoll)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wake {
    Now,
    AtNextPoll,
}

fn insert(
    conn: &mut DbConnection,
    kind: Kind,
    subjects: &[&str],
    at: NaiveDateTime,
    wake: Wake,
) -> QueryResult<()> {
    if subjects.is_empty() {
        return Ok(());
    }
    let conn = match conn {
        DbConnection::Sqlite(conn) => conn,
        DbConnection::Postgres(conn) => {
            // One statement: the lock (taken before any id is drawn), the
            // rows and, unless the change can wait, the notification.
            let query = match wake {
                Wake::Now => diesel::sql_query(
                    "WITH locked AS (SELECT pg_advisory_xact_lock($1, $2)), \
                          notified AS (SELECT pg_notify('latchkey_changes', '')) \
                     INSERT INTO changes (kind, subject, at) \
                     SELECT $3, subject, now() AT TIME ZONE 'UTC' \
                     FROM locked, notified, unnest($4::text[]) AS subject",
                ),
                Wake::AtNextPoll => diesel::sql_query(
                    "WITH locked AS (SELECT pg_advisory_xact_lock($1, $2)) \
                     INSERT INTO changes (kind, subject, at) \
                     SELECT $3, subject, now() AT TIME ZONE 'UTC' \
                     FROM locked, unnest($4::text[]) AS subject",
                ),
            };
            return query
                .bind::<Integer, _>(Serialize::Changes.key().0)
                .bind::<Integer, _>(Serialize::Changes.key().1)
                .bind::<Text, _>(kind.as_str())
                .bind::<Array<Text>, _>(subjects)
                .prepared()
                .execute(conn)
                .map(|_| ());
        }
    };
    for chunk in subjects.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|subject| {
                (
                    changes::kind.eq(kind.as_str()),
                    changes::subject.eq(*subject),
                    changes::at.eq(at),
                )
            })
            .collect();
        diesel::insert_into(changes::table)
            .values(&rows)
            .execute(conn)?;
    }
    Ok(())
}

/// Up to `limit` changes after `after`, oldest first.
pub fn after(conn: &mut DbConnection, after: i64, limit: i64) -> QueryResult<Vec<ChangeRow>> {
    changes::table
        .filter(changes::id.gt(after))
        .order(changes::id.asc())
        .limit(limit)
        .select(ChangeRow::as_select())
        .load(conn)
}

/// The newest change's id (0 for none): where a starting instance begins.
pub fn latest(conn: &mut DbConnection) -> QueryResult<i64> {
    changes::table
        .select(diesel::dsl::max(changes::id))
        .first::<Option<i64>>(conn)
        .map(Option::unwrap_or_default)
}

/// Deletes changes older than `kept`. On PostgreSQL the rows' times are the
/// database server's (see [`record`]) and so is the cutoff: instances whose
/// clocks disagree still keep every row as long.
pub fn sweep(conn: &mut DbConnection, now: NaiveDateTime, kept: TimeDelta) -> QueryResult<usize> {
    match conn {
        DbConnection::Sqlite(_) => {
            diesel::delete(changes::table.filter(changes::at.lt(now - kept))).execute(conn)
        }
        DbConnection::Postgres(conn) => diesel::sql_query(
            "DELETE FROM changes WHERE at < (now() AT TIME ZONE 'UTC') - make_interval(secs => $1)",
        )
        .bind::<diesel::sql_types::Double, _>(kept.num_seconds() as f64)
        .execute(conn),
    }
}

/// On PostgreSQL, listens for commits that recorded changes, on a
/// connection of its own on a thread of its own. It calls `heard` about
/// every 20 ms, with `true` when something was committed since (and after
/// every (re)connection, since a notification may have been missed while
/// it was down), and stops when `heard` returns false. On SQLite there is
/// nothing to listen to: the feed is read on a timer.
pub fn listen(database: &crate::config::Database, heard: impl Fn(bool) -> bool + Send + 'static) {
    use diesel::Connection;
    use diesel::pg::PgConnection;
    use std::time::Duration;
    let crate::config::Database::Postgres { url } = database else {
        return;
    };
    let url = url.clone();
    let database = database.clone();
    let described = database.describe();
    let spawned = std::thread::Builder::new()
        .name("latchkey-listen".into())
        .spawn(move || {
            // Doubles up to half a minute while the server stays away; the
            // feed is still read every second meanwhile.
            let mut backoff = Duration::from_secs(1);
            loop {
                let connected = PgConnection::establish(&url)
                    .map_err(|e| e.to_string())
                    .and_then(|mut conn| {
                        diesel::sql_query("LISTEN latchkey_changes")
                            .execute(&mut conn)
                            .map(|_| conn)
                            .map_err(|e| e.to_string())
                    });
                let mut conn = match connected {
                    Ok(conn) => conn,
                    Err(e) => {
                        if backoff == Duration::from_secs(1) {
                            let e =
                                database.scrub(&e.split_whitespace().collect::<Vec<_>>().join(" "));
                            log::warn!(
                                "listening for changes on {described} failed ({e}); will retry"
                            );
                        }
                        let waited = std::time::Instant::now();
                        while waited.elapsed() < backoff {
                            if !heard(false) {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                };
                if backoff > Duration::from_secs(1) {
                    log::info!("listening for changes on {described} again");
                }
                backoff = Duration::from_secs(1);
                if !heard(true) {
                    return;
                }
                loop {
                    std::thread::sleep(Duration::from_millis(20));
                    let mut news = false;
                    let mut broken = None;
                    for notification in conn.notifications_iter() {
                        match notification {
                            Ok(_) => news = true,
                            Err(e) => {
                                broken = Some(e);
                                break;
                            }
                        }
                    }
                    if !heard(news) {
                        return;
                    }
                    if let Some(e) = broken {
                        let e = database.scrub(&e.to_string());
                        log::warn!("the change listener lost {described} ({e}); reconnecting");
                        break;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the change listener: {e}");
    }
}

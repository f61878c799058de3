//! The store. Every SQL statement latchkey runs lives in this module: plain
//! synchronous functions that take a connection and return `QueryResult`.
//! Handlers reach them through [`run`], which checks a connection out of the
//! pool and runs the work on a blocking thread.
//!
//! Two backends, one code path: [`DbConnection`] is SQLite or PostgreSQL,
//! and most statements are written once for both (Diesel's
//! `MultiConnection`). Where the SQL differs (an upsert, the search index,
//! the start of a write transaction, backups) the statement has a body per
//! backend, with [`per_backend!`], here in `db` and nowhere else.

pub mod audit;
pub mod changes;
pub mod clients;
pub mod console_sessions;
pub mod copy;
pub mod email_tokens;
pub mod keys;
pub mod mfa;
pub mod models;
pub mod outbox;
pub mod refresh_tokens;
#[rustfmt::skip]
pub mod schema;
pub mod server_secrets;
pub mod sessions;
pub mod throttle;
mod types;
pub mod users;

use crate::config::Database;
use diesel::backend::Backend;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::time::Duration;

/// A connection to the store, whichever backend it is.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs `$body` with `$conn` bound to the concrete connection, once per
/// backend: for the few statements whose SQL (or whose Diesel support)
/// differs between SQLite and PostgreSQL.
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($c) => $body,
            $crate::db::DbConnection::Postgres($c) => $body,
        }
    };
}
pub(crate) use per_backend;

/// A statement kept prepared on its connection, looked up by its text:
/// for the writes of the hot paths (a sign-in, a refresh).
///
/// Diesel prepares a SELECT once per connection and then runs it by name,
/// but parses and plans every INSERT and UPDATE anew: their text may vary
/// with the values (`DEFAULT` for a missing one), and its cache may key a
/// statement by its Rust type. Keyed by the text and the parameters'
/// types, as this wrapper has it (no static query id), any statement is
/// safe to keep. Only statements of a fixed shape are wrapped (no batch
/// insert, no list of varying length): each adds at most a few entries
/// per connection.
///
/// It works on the concrete connections, through [`per_backend!`]. How:
/// Diesel asks whether a statement may be kept by walking it with a pass
/// that notes any part that says no; this wrapper writes the statement's
/// text itself, in one piece, so that pass sees nothing to refuse, and
/// hands every other pass (the bind values) to the statement. Telling
/// the passes apart uses the helper Diesel's own `MultiConnection` derive
/// uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prepared<Q>(Q);

/// `.prepared()` on a statement: see [`Prepared`].
pub(crate) trait Prepare: Sized {
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q> Prepare for Q {}

/// The backends [`Prepared`] writes statements for: each has its own
/// query builder (the `MultiConnection`'s would need the right variant).
trait Concrete: Backend<QueryBuilder: Default> {}
impl Concrete for diesel::pg::Pg {}
impl Concrete for diesel::sqlite::Sqlite {}

impl<Q, DB> QueryFragment<DB> for Prepared<Q>
where
    DB: Concrete,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        use diesel::internal::derives::multiconnection::AstPassHelper;
        use diesel::query_builder::QueryBuilder;
        if pass.bind_collector().is_some() || pass.debug_binds().is_some() {
            return self.0.walk_ast(pass);
        }
        let mut sql = DB::QueryBuilder::default();
        self.0.to_sql(&mut sql, pass.backend())?;
        pass.push_sql(&sql.finish());
        Ok(())
    }
}

/// No static id: the cache keys it by its text, never by its Rust type.
impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, C> RunQueryDsl<C> for Prepared<Q> {}

pub type DbPool = Pool<Manager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a request waits for a free connection before it gets a 503.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);

/// The advisory lock instances hold while one of them migrates a
/// PostgreSQL store, so that instances started together migrate once.
const MIGRATION_LOCK: i64 = 0x6c61_7463_686b_6579; // "latchkey"

/// What can go wrong talking to the store, sorted by what the caller should
/// tell the client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The pool is exhausted or the database stayed locked: try again soon.
    #[error("the store is busy: {0}")]
    Busy(String),
    /// A unique index refused the row (an email that is taken).
    #[error("a unique constraint was violated: {0}")]
    Duplicate(String),
    #[error("store query failed: {0}")]
    Query(DieselError),
    /// The store's file (or a copy's) could not be made.
    #[error("{0}")]
    File(String),
}

impl From<DieselError> for StoreError {
    fn from(err: DieselError) -> Self {
        match &err {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Duplicate(info.message().to_owned())
            }
            // PostgreSQL: two transactions collided, or the server went
            // away; either is worth one more try.
            DieselError::DatabaseError(
                DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection,
                info,
            ) => StoreError::Busy(info.message().to_owned()),
            DieselError::DatabaseError(_, info)
                if info.message().contains("database is locked")
                    || info.message().contains("database is busy")
                    || info.message().contains("lock timeout")
                    || info.message().contains("statement timeout") =>
            {
                StoreError::Busy(info.message().to_owned())
            }
            _ => StoreError::Query(err),
        }
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        StoreError::Busy(err.to_string())
    }
}

/// Opens connections of the backend `DATABASE_URL` names, and only that one
/// (a PostgreSQL URL is never mistaken for a file name).
#[derive(Debug, Clone)]
pub struct Manager {
    database: Database,
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        match &self.database {
            Database::Sqlite { path } => {
                SqliteConnection::establish(path).map(DbConnection::Sqlite)
            }
            Database::Postgres { url } => PgConnection::establish(url).map(DbConnection::Postgres),
        }
        .map(|conn| Pooled {
            conn,
            answered_at: None,
        })
        .map_err(diesel::r2d2::Error::ConnectionError)
    }

    /// A connection whose last work ended well within [`TRUSTED_FOR`] is
    /// handed out as it is; any other is pinged first (and replaced if
    /// that fails). Under load that saves two round trips per sign-in,
    /// while a connection the database dropped is still found: its work
    /// fails (one 503), and the next checkout pings it.
    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), Self::Error> {
        if pooled
            .answered_at
            .is_some_and(|at| at.elapsed() < TRUSTED_FOR)
        {
            return Ok(());
        }
        pooled.conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        std::thread::panicking() || pooled.conn.is_broken()
    }
}

/// How long after its last work ended without an error a connection is
/// handed out without a ping.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// A connection in the pool, and when its last work ended without an
/// error (see [`Manager::is_valid`]). It dereferences to the connection.
pub struct Pooled {
    conn: DbConnection,
    answered_at: Option<std::time::Instant>,
}

impl std::ops::Deref for Pooled {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// Sets what every SQLite connection needs: WAL so readers never block the
/// writer, a busy timeout instead of an immediate "database is locked",
/// foreign keys enforced, and `synchronous=NORMAL`, which in WAL mode keeps
/// every commit across a process crash (SIGKILL) at a fraction of FULL's cost.
/// Each connection's page cache is held to 1 MiB (SQLite's default is
/// 2 MiB, times every pooled connection): the operating system caches the
/// file anyway, and the server's resident memory stays small. PostgreSQL
/// needs nothing per connection.
#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<Pooled, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, pooled: &mut Pooled) -> Result<(), diesel::r2d2::Error> {
        match &mut pooled.conn {
            // The busy timeout comes first, so that the other pragmas wait
            // for a lock instead of failing while another connection holds one.
            DbConnection::Sqlite(conn) => conn
                .batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                     PRAGMA cache_size = -1024;",
                )
                .map_err(diesel::r2d2::Error::QueryError),
            // A session left idle in a transaction (a frozen client, a
            // partition) must not hold its locks, nor a statement wait on
            // one, for longer than a request is worth.
            DbConnection::Postgres(conn) => conn
                .batch_execute(
                    "SET idle_in_transaction_session_timeout = '30s'; \
                     SET lock_timeout = '10s'; SET statement_timeout = '30s';",
                )
                .map_err(diesel::r2d2::Error::QueryError),
        }
    }
}

/// Opens the store and its pool: a SQLite file (created if needed, owner
/// only) or a PostgreSQL database.
pub fn connect(database: &Database, size: u32) -> Result<DbPool, String> {
    let described = database.describe();
    match database {
        Database::Sqlite { path } => prepare_sqlite_file(path)?,
        // One try first, so that a server that is not there is one clear
        // line now, not a pool retrying until its timeout.
        Database::Postgres { url } => {
            PgConnection::establish(url).map_err(|e| {
                format!(
                    "cannot connect to {described}: {}",
                    database.scrub(&one_line(&e))
                )
            })?;
        }
    }
    Pool::builder()
        .max_size(size)
        .connection_timeout(CHECKOUT_TIMEOUT)
        .connection_customizer(Box::new(Pragmas))
        .build(Manager {
            database: database.clone(),
        })
        .map_err(|e| format!("cannot open {described}: {}", database.scrub(&one_line(&e))))
}

/// [`connect`], then [`migrate`]: a store ready for this version.
pub fn open(database: &Database, size: u32) -> Result<DbPool, String> {
    let pool = connect(database, size)?;
    migrate(&pool)?;
    Ok(pool)
}

/// An error as one line (libpq's messages span several).
fn one_line(error: &dyn std::fmt::Display) -> String {
    error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Creates the SQLite file's directory and the file itself (owner only),
/// and switches it to WAL once, on one connection: that takes an exclusive
/// lock, which the pool opening several connections at once would fight
/// over.
fn prepare_sqlite_file(path: &str) -> Result<(), String> {
    if let Some(dir) = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
    }
    create_owner_only(path)?;
    let mut conn =
        SqliteConnection::establish(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")
        .map_err(|e| format!("cannot open {path}: {e}"))
}

/// Creates the store's file, if it does not exist yet, readable and
/// writable by its owner only (0600), whatever the umask: it holds password
/// hashes and signing keys. SQLite gives the `-wal` and `-shm` files it
/// makes beside it the same permissions. An existing file is left as the
/// operator set it.
fn create_owner_only(path: &str) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // The mode asked for above is still masked by the umask: set it.
        Ok(file) => file
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot restrict {path} to its owner: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {path}: {e}")),
    }
}

/// Brings the schema up to date with the migrations compiled into the
/// binary, the ones of the pool's backend. On PostgreSQL this runs under
/// an advisory lock: of several instances started together, one migrates
/// and the others wait, then find nothing left to do.
pub fn migrate(pool: &DbPool) -> Result<(), String> {
    let mut conn = pool
        .get()
        .map_err(|e| format!("cannot open the store: {e}"))?;
    let failed = |e: &dyn std::fmt::Display| format!("cannot migrate the store: {e}");
    match &mut **conn {
        DbConnection::Sqlite(conn) => conn
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| failed(&e)),
        DbConnection::Postgres(conn) => {
            diesel::sql_query("SELECT pg_advisory_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK)
                .execute(conn)
                .map_err(|e| failed(&e))?;
            let result = conn
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| failed(&e));
            let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK)
                .execute(conn)
                .map(|_| ())
                .map_err(|e| failed(&e));
            result.and(unlocked)
        }
    }
}

/// Runs `work` with a pooled connection on a blocking thread, so neither the
/// checkout nor the query holds up the async workers.
pub async fn run<T, E, F>(pool: &DbPool, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    run_within(pool, CHECKOUT_TIMEOUT, work).await
}

/// [`run`], waiting at most `within` for a connection (a readiness check
/// must answer before a balancer's health check gives up).
pub async fn run_within<T, E, F>(pool: &DbPool, within: Duration, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut pooled = pool.get_timeout(within).map_err(StoreError::from)?;
        let done = work(&mut pooled);
        pooled.answered_at = done.is_ok().then(std::time::Instant::now);
        done
    })
    .await
    .map_err(|e| E::from(StoreError::Busy(e.to_string())))?
}

/// One write transaction. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of
/// one failing when it tries to upgrade a read lock; PostgreSQL locks rows
/// as they are written.
pub fn write<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<DieselError>,
{
    transaction(conn, "BEGIN IMMEDIATE", "BEGIN", work)
}

/// One read-only transaction that sees a single snapshot of the whole
/// store, however long it takes and whatever commits meanwhile (SQLite's
/// WAL gives a deferred transaction that; PostgreSQL needs repeatable read).
pub fn snapshot<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<DieselError>,
{
    transaction(
        conn,
        "BEGIN DEFERRED",
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        work,
    )
}

/// `work` in a transaction begun with the backend's statement; committed
/// when it returns `Ok`, rolled back otherwise.
fn transaction<T, E, F>(
    conn: &mut DbConnection,
    sqlite: &str,
    postgres: &str,
    work: F,
) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<DieselError>,
{
    match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, sqlite)?,
        DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction_sql(c, postgres)?,
    }
    match work(conn) {
        Ok(value) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            match <DbConnection as Connection>::TransactionManager::rollback_transaction(conn) {
                Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(error),
                Err(rollback) => Err(rollback.into()),
            }
        }
    }
}

/// A lock on a kind of change, held to the end of the write transaction
/// it is taken in, so that two instances cannot both pass a rule that
/// holds across rows ("one admin stays", "one key is active"). SQLite's
/// write transactions are serial already.
#[derive(Debug, Clone, Copy)]
pub enum Serialize {
    Admins = 1,
    KeyRing = 2,
    /// Writers of the change feed (see `changes::record`).
    Changes = 3,
}

impl Serialize {
    /// The advisory lock's two keys: latchkey's, then this kind's.
    pub(crate) fn key(self) -> (i32, i32) {
        (MIGRATION_LOCK as i32, self as i32)
    }
}

pub fn serialize(conn: &mut DbConnection, what: Serialize) -> diesel::QueryResult<()> {
    match conn {
        DbConnection::Sqlite(_) => Ok(()),
        DbConnection::Postgres(conn) => diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind::<diesel::sql_types::Integer, _>(what.key().0)
            .bind::<diesel::sql_types::Integer, _>(what.key().1)
            .execute(conn)
            .map(|_| ()),
    }
}

/// Whether the store answers a query that reads a table (for `/readyz`).
pub fn ping(conn: &mut DbConnection) -> Result<(), StoreError> {
    use diesel::prelude::*;
    diesel::select(diesel::dsl::exists(
        schema::signing_keys::table.select(schema::signing_keys::kid),
    ))
    .get_result::<bool>(conn)
    .map(|_| ())
    .map_err(StoreError::from)
}

/// Writes a consistent copy of the whole SQLite store to `path` (`VACUUM
/// INTO`), safe while the server runs: it reads one snapshot. The copy is
/// created owner-only (0600), like the store; a copy that failed half-way
/// is removed. A PostgreSQL store is backed up with `pg_dump`.
pub fn backup(conn: &mut DbConnection, path: &str) -> Result<(), StoreError> {
    use diesel::RunQueryDsl;
    let DbConnection::Sqlite(conn) = conn else {
        return Err(StoreError::File(
            "a PostgreSQL store is backed up with pg_dump (see docs/operations.md)".into(),
        ));
    };
    // VACUUM INTO writes into an empty file as into a new one.
    create_owner_only(path).map_err(StoreError::File)?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<diesel::sql_types::Text, _>(path)
        .execute(conn)
        .map(|_| ())
        .map_err(|e| {
            let _ = std::fs::remove_file(path);
            StoreError::from(e)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::InstrumentationEvent;
    use diesel::{ExpressionMethods, QueryDsl};
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_prepared_write_is_kept_on_its_connection_and_a_plain_update_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::Sqlite {
            path: dir.path().join("store.db").to_str().unwrap().to_owned(),
        };
        let pool = open(&database, 1).unwrap();
        let mut pooled = pool.get().unwrap();
        let conn: &mut DbConnection = &mut pooled;
        let kept = Arc::new(Mutex::new(Vec::new()));
        let noted = kept.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                noted.lock().unwrap().push(sql.to_owned());
            }
        });
        let spends = |kept: &Arc<Mutex<Vec<String>>>| {
            let kept = kept.lock().unwrap();
            kept.iter()
                .filter(|sql| sql.starts_with("UPDATE `refresh_tokens`"))
                .count()
        };
        let now = chrono::Utc::now().naive_utc();
        // The statement as Diesel writes it: parsed anew each time.
        for _ in 0..3 {
            diesel::update(
                schema::refresh_tokens::table
                    .filter(schema::refresh_tokens::token_hash.eq("unknown"))
                    .filter(schema::refresh_tokens::spent_at.is_null()),
            )
            .set(schema::refresh_tokens::spent_at.eq(now))
            .execute(conn)
            .unwrap();
        }
        assert_eq!(spends(&kept), 0);
        // The same, prepared: kept the first time, reused after.
        for _ in 0..3 {
            assert!(!refresh_tokens::spend(conn, "unknown", now).unwrap());
        }
        assert_eq!(spends(&kept), 1, "{:?}", kept.lock().unwrap());
    }
}

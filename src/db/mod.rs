//! The store. Every SQL statement latchkey runs lives in this module: plain
//! synchronous functions that take a connection and return `QueryResult`.
//! Handlers reach them through [`run`], which checks a connection out of the
//! pool and runs the work on a blocking thread.

pub mod audit;
pub mod console_sessions;
pub mod keys;
pub mod models;
pub mod refresh_tokens;
#[rustfmt::skip]
pub mod schema;
pub mod server_secrets;
pub mod sessions;
pub mod throttle;
mod types;
pub mod users;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::time::Duration;

pub type DbPool = Pool<ConnectionManager<SqliteConnection>>;
pub type DbConn = PooledConnection<ConnectionManager<SqliteConnection>>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a request waits for a free connection before it gets a 503.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);

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
            DieselError::DatabaseError(_, info)
                if info.message().contains("database is locked")
                    || info.message().contains("database is busy") =>
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

/// Sets the pragmas every connection needs: WAL so readers never block the
/// writer, a busy timeout instead of an immediate "database is locked",
/// foreign keys enforced, and `synchronous=NORMAL`, which in WAL mode keeps
/// every commit across a process crash (SIGKILL) at a fraction of FULL's cost.
/// Each connection's page cache is held to 1 MiB (SQLite's default is
/// 2 MiB, times every pooled connection): the operating system caches the
/// file anyway, and the server's resident memory stays small.
#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // The busy timeout comes first, so that the other pragmas wait for
        // a lock instead of failing while another connection holds one.
        conn.batch_execute(
            "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
             PRAGMA cache_size = -1024;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens (creating if needed) the SQLite file at `path` and its pool.
pub fn connect(path: &str, size: u32) -> Result<DbPool, String> {
    if let Some(dir) = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
    }
    create_owner_only(path)?;
    // Switching a new file to WAL takes an exclusive lock: do it once, on
    // one connection, before the pool opens several at the same time.
    {
        use diesel::Connection;
        let mut conn =
            SqliteConnection::establish(path).map_err(|e| format!("cannot open {path}: {e}"))?;
        conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")
            .map_err(|e| format!("cannot open {path}: {e}"))?;
    }
    Pool::builder()
        .max_size(size)
        .connection_timeout(CHECKOUT_TIMEOUT)
        .connection_customizer(Box::new(Pragmas))
        .build(ConnectionManager::<SqliteConnection>::new(path))
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

/// Brings the schema up to date with the migrations compiled into the binary.
pub fn migrate(pool: &DbPool) -> Result<(), String> {
    let mut conn = pool
        .get()
        .map_err(|e| format!("cannot open the store: {e}"))?;
    conn.run_pending_migrations(MIGRATIONS)
        .map(|_| ())
        .map_err(|e| format!("cannot migrate the store: {e}"))
}

/// Runs `work` with a pooled connection on a blocking thread, so neither the
/// checkout nor the query holds up the async workers.
pub async fn run<T, E, F>(pool: &DbPool, work: F) -> Result<T, E>
where
    F: FnOnce(&mut SqliteConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get().map_err(StoreError::from)?;
        work(&mut conn)
    })
    .await
    .map_err(|e| E::from(StoreError::Busy(e.to_string())))?
}

/// A write transaction that takes the write lock up front (SQLite's
/// `BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of
/// one failing when it tries to upgrade a read lock. This is the one place
/// where a PostgreSQL backend would differ.
pub fn write<T, E, F>(conn: &mut SqliteConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut SqliteConnection) -> Result<T, E>,
    E: From<DieselError>,
{
    conn.immediate_transaction(work)
}

/// Whether the store answers a query that reads a table (for `/readyz`).
pub fn ping(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    use diesel::prelude::*;
    diesel::select(diesel::dsl::exists(
        schema::signing_keys::table.select(schema::signing_keys::kid),
    ))
    .get_result::<bool>(conn)
    .map(|_| ())
    .map_err(StoreError::from)
}

/// Writes a consistent copy of the whole store to `path` (SQLite's
/// `VACUUM INTO`), safe while the server runs: it reads one snapshot.
/// The copy is created owner-only (0600), like the store; a copy that
/// failed half-way is removed.
pub fn backup(conn: &mut SqliteConnection, path: &str) -> Result<(), StoreError> {
    use diesel::RunQueryDsl;
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

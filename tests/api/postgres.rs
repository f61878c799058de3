//! A throwaway PostgreSQL cluster for the suite, started by the tests
//! themselves when `LATCHKEY_TEST_BACKEND=postgres`: Debian's PostgreSQL
//! (`initdb`, `postgres`), run as the `postgres` user through `runuser`
//! when the tests run as root (PostgreSQL refuses root). Every test app
//! gets a database of its own, cloned from one migrated template.
//!
//! The server is stopped when the test process ends: it runs under a small
//! shell that waits on a pipe held by this process, and stops the server
//! and removes its directory when that pipe closes, however the process
//! ends (the suite's shared cluster is a static, never dropped).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Which backend the suite runs against.
pub fn on_postgres() -> bool {
    match std::env::var("LATCHKEY_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("LATCHKEY_TEST_BACKEND={other}: use sqlite or postgres"),
    }
}

/// A PostgreSQL server of the tests' own, with a template database that
/// is migrated.
pub struct Cluster {
    port: u16,
    /// The shell that runs the server: it stops and starts it again on
    /// the lines `stop` and `start`, and stops it for good, then removes
    /// the cluster's directory, once this process lets go of its standard
    /// input.
    keeper: Mutex<Child>,
}

impl Drop for Cluster {
    /// Lets go of the keeper and waits until it has stopped the server and
    /// removed the directory.
    fn drop(&mut self) {
        let keeper = self.keeper.get_mut().unwrap_or_else(|e| e.into_inner());
        drop(keeper.stdin.take());
        let _ = keeper.wait();
    }
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

const TEMPLATE: &str = "latchkey_template";

/// A PostgreSQL program: Debian keeps them out of `PATH`, under
/// `/usr/lib/postgresql/<version>/bin`; the newest version there wins.
fn bin(name: &str) -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let program = entry.path().join("bin").join(name);
            program.exists().then_some((version, program))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map_or_else(|| PathBuf::from(name), |(_, program)| program)
}

/// Whether the tests run as root (PostgreSQL and nginx need telling).
pub fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args…`, as the `postgres` user when we are root.
fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A port nothing listens on now.
pub use crate::processes::free_port;

fn start() -> Cluster {
    // The keeper removes it, not a `TempDir`: the process may end without
    // dropping the cluster, and the files are the `postgres` user's.
    let dir = tempfile::Builder::new()
        .prefix("latchkey-pg-")
        .tempdir()
        .expect("a directory for the cluster")
        .keep();
    let data = dir.join("data");
    if running_as_root() {
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("chown runs");
        assert!(chown.success(), "chown the cluster directory to postgres");
    }
    let initdb = as_postgres(&bin("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .output()
        .expect("initdb runs (apt-get install postgresql)");
    assert!(
        initdb.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );
    let port = free_port();
    let server = format!(
        "'{}' -D '{}' -p {port} -k '{}' -c listen_addresses=127.0.0.1 -c max_connections=400 \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=64MB",
        bin("postgres").display(),
        data.display(),
        dir.display(),
    );
    let log = dir.join("server.log");
    let serve = format!("{server} >>'{}' 2>&1 & pid=$!", log.display());
    // SIGINT is PostgreSQL's fast shutdown: clients are cut off at once.
    let script = format!(
        "{serve}; while read command; do case $command in \
         stop) kill -INT $pid; wait $pid;; start) {serve};; esac; done; \
         kill -INT $pid; wait $pid; rm -rf '{}'",
        dir.display()
    );
    let keeper = as_postgres(Path::new("sh"))
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut admin = ready(port);
    execute(&mut admin, &format!("CREATE DATABASE {TEMPLATE}"));
    let database = latchkey::config::Database::Postgres {
        url: url(port, TEMPLATE),
    };
    let pool = latchkey::db::open(&database, 1).expect("the template opens and migrates");
    drop(pool);
    Cluster {
        port,
        keeper: Mutex::new(keeper),
    }
}

/// Waits (up to 30 s) until the server on `port` answers queries, and
/// returns a connection to its `postgres` database.
fn ready(port: u16) -> diesel::PgConnection {
    use diesel::Connection;
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "PostgreSQL did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Accepting connections is not yet accepting queries; ask until it does.
    loop {
        match diesel::PgConnection::establish(&url(port, "postgres")) {
            Ok(conn) => return conn,
            Err(e) => {
                assert!(Instant::now() < deadline, "PostgreSQL is not ready: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Cluster {
    /// A server of its own, for a test that stops it.
    pub fn start() -> Cluster {
        start()
    }

    fn tell(&self, command: &str) {
        use std::io::Write;
        let mut keeper = self.keeper.lock().unwrap_or_else(|e| e.into_inner());
        let stdin = keeper.stdin.as_mut().expect("the keeper's input");
        writeln!(stdin, "{command}").expect("the keeper listens");
    }

    /// Stops the server (fast shutdown: every connection is cut) and waits
    /// until its port refuses connections.
    pub fn stop(&self) {
        self.tell("stop");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "PostgreSQL did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the stopped server again and waits until it answers.
    pub fn resume(&self) {
        self.tell("start");
        ready(self.port);
    }

    /// A new database of its own on this server, cloned from the migrated
    /// template (or empty), and its URL.
    pub fn new_database(&self, migrated: bool) -> String {
        use diesel::Connection;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = diesel::PgConnection::establish(&url(self.port, "postgres"))
            .expect("the cluster answers");
        // One clone of the template at a time: PostgreSQL refuses a second
        // while the first is copying.
        static CLONING: Mutex<()> = Mutex::new(());
        let _one = CLONING.lock().unwrap_or_else(|e| e.into_inner());
        let from = if migrated {
            format!(" TEMPLATE {TEMPLATE}")
        } else {
            String::new()
        };
        execute(&mut admin, &format!("CREATE DATABASE {name}{from}"));
        url(self.port, &name)
    }
}

fn url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}

fn execute(conn: &mut diesel::PgConnection, sql: &str) {
    use diesel::RunQueryDsl;
    diesel::sql_query(sql)
        .execute(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A new database of its own, migrated, and its URL.
pub fn new_database() -> String {
    create_database(true)
}

/// A new empty database (not migrated), and its URL; the cluster is
/// started if no test started it yet, whichever backend the suite runs on.
pub fn new_empty_database() -> String {
    create_database(false)
}

fn create_database(migrated: bool) -> String {
    CLUSTER.get_or_init(start).new_database(migrated)
}

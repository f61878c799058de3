//! The command line: with no arguments latchkey serves; the subcommands are
//! for the operator at the machine. They work on the store directly, with
//! the server running or not; a running server notices their changes within
//! a second (it watches the store for revocations and key changes).

use crate::audit::{Event, Outcome};
use crate::client::ClientInfo;
use crate::clock::SystemClock;
use crate::config::{ConfigError, Database, Settings};
use crate::db;
use crate::domain::{ClientName, NewUser, NewUserInput, Role};
use crate::rfc3339::format as rfc3339;
use crate::service::sessions::Whose;
use crate::service::{Actor, ServiceError, clients, keys, passwords, sessions, users};
use crate::state::AppState;
use clap::{Parser, Subcommand};
use serde_json::json;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The audit log's name for the operator at the shell.
pub const CLI: &str = "cli";

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Users and sign-in for your application, in one binary."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the JSON API and the admin console (what no command does too).
    Serve,
    /// Bring the store's schema up to date, then exit.
    Migrate,
    /// Create admins, reset passwords.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The signing key ring.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Service clients: credentials other services introspect tokens with.
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Sign-in sessions.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Write a consistent copy of the store to PATH (safe while serving).
    Backup {
        /// Where the copy goes; it must not exist yet.
        path: PathBuf,
    },
    /// Copy a whole store into a new, empty database: move a SQLite store
    /// to PostgreSQL (or back). Stop the servers on the old store first;
    /// what they write during the copy is not copied.
    MigrateStore {
        /// The store to copy: a SQLite file (path or sqlite://path) or a
        /// postgres:// URL. It is brought up to date first.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The new store: created and migrated if need be; it must hold no
        /// users, keys or audit entries yet.
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Exit 0 when the server at BIND_ADDRESS answers /readyz (for
    /// container health checks), 1 otherwise.
    Healthcheck,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin; the password is read from standard input.
    Create {
        /// The new admin's email address (their sign-in name).
        #[arg(long)]
        email: String,
        /// Their first name, as the console shows it.
        #[arg(long, default_value = "Admin")]
        first_name: String,
        /// Their last name.
        #[arg(long, default_value = "Admin")]
        last_name: String,
    },
    /// Set a user's password (read from standard input); ends all of their
    /// sessions and clears their sign-in lock.
    ResetPassword {
        /// The email address of the user whose password is set.
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new key active. Tokens already issued keep working until
    /// they expire, unless --revoke-previous is given.
    Rotate {
        /// Retire every other key at once (after a leak): all outstanding
        /// access tokens stop working; clients recover with one refresh.
        #[arg(long)]
        revoke_previous: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Create a client and print its id and secret (shown this once).
    Create {
        /// What the client is, e.g. the service that will use it.
        #[arg(long)]
        name: String,
    },
    /// List every client, revoked ones too.
    List,
    /// Revoke a client: its secret stops working at once.
    Revoke {
        /// The client's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// End every session (of one user with --email).
    RevokeAll {
        /// Only this user's sessions (their email address); without it,
        /// everyone's.
        #[arg(long)]
        email: Option<String>,
    },
}

/// Why a command failed: a configuration it cannot start with (exit 2) or
/// an operation that did not succeed (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Failed(String),
}

impl From<ConfigError> for CliError {
    fn from(err: ConfigError) -> Self {
        CliError::Config(err.to_string())
    }
}

/// The one place where an operation's error becomes the shell's line.
impl From<ServiceError> for CliError {
    fn from(err: ServiceError) -> Self {
        CliError::Failed(match err {
            ServiceError::Unexpected(err) => format!("{err:#}"),
            other => other.to_string(),
        })
    }
}

/// Reads a password: hidden at a terminal, else one line of standard input
/// (without its line ending; nothing else is trimmed). Nothing at all is
/// refused here, so that an empty input is not judged as a short password.
fn read_password() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        rpassword::prompt_password("Password: ").map_err(|e| CliError::Failed(e.to_string()))?
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Failed(format!("cannot read the password: {e}")))?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        password.strip_suffix('\r').unwrap_or(password).to_owned()
    };
    if password.is_empty() {
        return Err(CliError::Failed(
            "no password was given: type it at the prompt, or pipe it to standard input".into(),
        ));
    }
    Ok(password)
}

/// The shared state of a one-off command: the store opened and migrated,
/// the key ring prepared, the hasher started; nothing served.
fn open(settings: Settings) -> Result<AppState, CliError> {
    Ok(AppState::open(settings, Arc::new(SystemClock))?)
}

/// The operator at the shell, as the service layer and the audit log know
/// them.
fn operator() -> Actor {
    Actor::system(CLI)
}

/// Runs one command; returns what to print.
pub async fn run(command: Command, settings: Settings) -> Result<String, CliError> {
    match command {
        Command::Serve => Err(CliError::Failed(
            "`serve` runs the server, not a one-off command".into(),
        )),
        Command::Migrate => migrate(&settings),
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    first_name,
                    last_name,
                },
        } => create_admin(settings, &email, &first_name, &last_name).await,
        Command::Admin {
            command: AdminCommand::ResetPassword { email },
        } => reset_password(settings, &email).await,
        Command::Keys {
            command: KeysCommand::Rotate { revoke_previous },
        } => rotate_keys(settings, revoke_previous).await,
        Command::Clients { command } => manage_clients(settings, command).await,
        Command::Sessions {
            command: SessionsCommand::RevokeAll { email },
        } => revoke_all_sessions(settings, email.as_deref()).await,
        Command::Backup { path } => backup(&settings, &path),
        Command::MigrateStore { from, to } => migrate_store(&from, &to),
        Command::Healthcheck => healthcheck(&settings.bind_address),
    }
}

fn migrate(settings: &Settings) -> Result<String, CliError> {
    db::open(&settings.database, 1).map_err(CliError::Config)?;
    Ok(format!(
        "the store {} is up to date",
        settings.database.describe()
    ))
}

async fn create_admin(
    settings: Settings,
    email: &str,
    first_name: &str,
    last_name: &str,
) -> Result<String, CliError> {
    let password = read_password()?;
    let new_admin = NewUser::parse(NewUserInput {
        first_name,
        last_name,
        email,
        password: &password,
        role: Role::Admin,
        disabled: false,
    })
    .map_err(ServiceError::Invalid)?;
    let state = open(settings)?;
    let admin =
        users::create_vouched(&state, &operator(), &ClientInfo::default(), new_admin).await?;
    Ok(format!("created the admin {} ({})", admin.email, admin.id))
}

/// The user with `email`, or the line saying there is none.
async fn user_by_email(
    state: &AppState,
    email: &str,
) -> Result<crate::db::models::UserRow, CliError> {
    match users::find_by_email(state, email).await {
        Err(ServiceError::NotFound) => {
            Err(CliError::Failed(format!("no user has the email {email}")))
        }
        other => Ok(other?),
    }
}

async fn reset_password(settings: Settings, email: &str) -> Result<String, CliError> {
    let password = read_password()?;
    let state = open(settings)?;
    let user = user_by_email(&state, email).await?;
    let password = passwords::check_new(&user, &password)
        .map_err(|message| CliError::Failed(format!("password {message}")))?;
    passwords::set(&state, &operator(), &ClientInfo::default(), &user, password).await?;
    Ok(format!(
        "set a new password for {}; their sessions have ended",
        user.email
    ))
}

async fn rotate_keys(settings: Settings, revoke_previous: bool) -> Result<String, CliError> {
    let state = open(settings)?;
    let key = keys::rotate(&state, &operator(), &ClientInfo::default(), revoke_previous).await?;
    Ok(format!(
        "{} ({}) is the active key{}",
        key.kid,
        key.algorithm,
        if revoke_previous {
            "; every other key is retired"
        } else {
            ""
        }
    ))
}

async fn manage_clients(settings: Settings, command: ClientsCommand) -> Result<String, CliError> {
    let state = open(settings)?;
    let (operator, client) = (operator(), ClientInfo::default());
    match command {
        ClientsCommand::Create { name } => {
            let name = ClientName::parse(&name)
                .map_err(|why| CliError::Failed(format!("--name {why}")))?;
            let (row, secret) = clients::create(&state, &operator, &client, name).await?;
            Ok(format!(
                "created the service client {:?}\nid:     {}\nsecret: {secret}\n\
                 The secret is shown this once: latchkey keeps only its hash.",
                row.name, row.id
            ))
        }
        ClientsCommand::List => {
            let rows = clients::list(&state, &operator).await?;
            if rows.is_empty() {
                return Ok("no service clients".into());
            }
            let lines: Vec<String> = rows
                .iter()
                .map(|row| {
                    let used = row.last_used_at.map_or("never".into(), rfc3339);
                    let status = row
                        .revoked_at
                        .map_or("active".into(), |at| format!("revoked {}", rfc3339(at)));
                    format!(
                        "{}  {:?}  created {}  last used {used}  {status}",
                        row.id,
                        row.name,
                        rfc3339(row.created_at)
                    )
                })
                .collect();
            Ok(lines.join("\n"))
        }
        ClientsCommand::Revoke { id } => {
            let row = clients::revoke(&state, &operator, &client, &id).await?;
            Ok(format!(
                "revoked the service client {} ({:?}): its secret works no more",
                row.id, row.name
            ))
        }
    }
}

async fn revoke_all_sessions(settings: Settings, email: Option<&str>) -> Result<String, CliError> {
    let state = open(settings)?;
    let whose = match email {
        Some(email) => Whose::User(user_by_email(&state, email).await?.id),
        None => Whose::Everyone,
    };
    let count = sessions::revoke_all(&state, &operator(), &ClientInfo::default(), whose).await?;
    Ok(format!(
        "ended {count} session{} (console sign-ins included)",
        if count == 1 { "" } else { "s" }
    ))
}

fn backup(settings: &Settings, path: &Path) -> Result<String, CliError> {
    if let Database::Postgres { .. } = settings.database {
        return Err(CliError::Failed(
            "a PostgreSQL store is backed up with pg_dump, not `latchkey backup` \
             (see docs/operations.md)"
                .into(),
        ));
    }
    if path.exists() {
        return Err(CliError::Failed(format!(
            "{} exists already",
            path.display()
        )));
    }
    let target = path
        .to_str()
        .ok_or_else(|| CliError::Failed("the path is not UTF-8".into()))?;
    let pool = db::connect(&settings.database, 1).map_err(CliError::Config)?;
    let mut conn = pool.get().map_err(|e| CliError::Failed(e.to_string()))?;
    db::backup(&mut conn, target).map_err(|e| CliError::Failed(format!("backup failed: {e}")))?;
    Ok(format!("wrote a copy of the store to {target}"))
}

fn migrate_store(from: &str, to: &str) -> Result<String, CliError> {
    let source = Database::from_url(from, "--from")?;
    let target = Database::from_url(to, "--to")?;
    if source == target {
        return Err(CliError::Config(
            "--from and --to name the same store".into(),
        ));
    }
    // Opening a SQLite path creates the file: a mistyped source would be
    // an empty store copied without a word.
    if let Database::Sqlite { path } = &source
        && !Path::new(path).is_file()
    {
        return Err(CliError::Config(format!(
            "--from: there is no store at {path}"
        )));
    }
    let open = |database: &Database, flag: &str| {
        let pool =
            db::open(database, 1).map_err(|why| CliError::Config(format!("{flag}: {why}")))?;
        pool.get()
            .map_err(|e| CliError::Config(format!("{flag}: {}", database.scrub(&e.to_string()))))
    };
    let (mut from_conn, mut to_conn) = (open(&source, "--from")?, open(&target, "--to")?);
    let now = crate::clock::Clock::now(&SystemClock).naive_utc();
    let copied = db::copy::copy_store(&mut from_conn, &mut to_conn, |conn, copied| {
        Event::new(CLI, "store.copy", Outcome::Ok)
            .detail(json!({ "from": source.describe(), "copied": copied }))
            .write(conn, now)
    })
    .map_err(|e| {
        CliError::Failed(format!(
            "nothing was copied: {}",
            target.scrub(&e.to_string())
        ))
    })?;
    Ok(format!(
        "copied {copied} from {} to {}",
        source.describe(),
        target.describe()
    ))
}

/// `GET /readyz` on the local server, with nothing but the standard library.
fn healthcheck(bind_address: &str) -> Result<String, CliError> {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    use std::time::Duration;
    let (host, port) = bind_address
        .rsplit_once(':')
        .unwrap_or((bind_address, "8080"));
    let host = match host.trim_start_matches('[').trim_end_matches(']') {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" => "::1",
        other => other,
    };
    let failed = |why: String| CliError::Failed(format!("not ready: {why}"));
    let address = (
        host,
        port.parse::<u16>().map_err(|e| failed(e.to_string()))?,
    )
        .to_socket_addrs()
        .map_err(|e| failed(e.to_string()))?
        .next()
        .ok_or_else(|| failed("no address".into()))?;
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(3))
        .map_err(|e| failed(e.to_string()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| failed(e.to_string()))?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| failed(e.to_string()))?;
    // Only the status line matters; read until it is complete.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 512];
    while !answer.windows(2).any(|w| w == b"\r\n") && answer.len() < 4096 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    match answer.lines().next() {
        Some(status) if status.starts_with("HTTP/1.1 200") => Ok("ready".into()),
        Some(status) => Err(failed(status.to_owned())),
        None => Err(failed("no answer".into())),
    }
}

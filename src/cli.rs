//! The command line: with no arguments latchkey serves; the subcommands are
//! for the operator at the machine. They work on the store directly, with
//! the server running or not; a running server notices their changes within
//! a second (it watches the store for revocations and key changes).

use crate::client::ClientInfo;
use crate::config::Settings;
use crate::db::{self, sessions, users};
use crate::domain::{Email, NewUser, NewUserInput, PasswordPolicy, Role};
use crate::errors::ApiError;
use crate::routes::api::{Actor, keys::rotate_keys, passwords::set_password, users::create_user};
use crate::startup::{StartupError, open_state};
use clap::{Parser, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

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
    /// Exit 0 when the server at BIND_ADDRESS answers /readyz (for
    /// container health checks), 1 otherwise.
    Healthcheck,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Admin")]
        first_name: String,
        #[arg(long, default_value = "Admin")]
        last_name: String,
    },
    /// Set a user's password (read from standard input); ends all of their
    /// sessions and clears their sign-in lock.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new key active; tokens already issued keep working.
    Rotate {
        /// Retire every other key at once (after a leak): all outstanding
        /// access tokens stop working; clients recover with one refresh.
        #[arg(long)]
        revoke_previous: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// End every session (of one user with --email).
    RevokeAll {
        #[arg(long)]
        email: Option<String>,
    },
}

/// Why a command failed: a configuration it cannot start with (exit 2) or
/// an operation that did not succeed (exit 1).
#[derive(Debug)]
pub enum CliError {
    Config(String),
    Failed(String),
}

impl From<StartupError> for CliError {
    fn from(err: StartupError) -> Self {
        CliError::Config(err.to_string())
    }
}

impl From<ApiError> for CliError {
    fn from(err: ApiError) -> Self {
        CliError::Failed(match err {
            ApiError::Unprocessable(errors) => errors
                .into_map()
                .into_iter()
                .map(|(field, messages)| format!("{field} {}", messages.join("; ")))
                .collect::<Vec<_>>()
                .join(", "),
            ApiError::Unexpected(err) => format!("{err:#}"),
            other => other.problem().detail,
        })
    }
}

/// Reads a password: hidden at a terminal, else one line of standard input
/// (without its line ending; nothing else is trimmed).
fn read_password() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return rpassword::prompt_password("Password: ")
            .map_err(|e| CliError::Failed(e.to_string()));
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Failed(format!("cannot read the password: {e}")))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_owned())
}

/// Runs one command; returns what to print.
pub async fn run(command: Command, settings: Settings) -> Result<String, CliError> {
    match command {
        Command::Serve => Err(CliError::Failed(
            "`serve` runs the server, not a one-off command".into(),
        )),
        Command::Migrate => {
            let pool = db::connect(&settings.database_path, 1).map_err(CliError::Config)?;
            db::migrate(&pool).map_err(CliError::Config)?;
            Ok(format!(
                "the store {} is up to date",
                settings.database_path
            ))
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    first_name,
                    last_name,
                },
        } => {
            let password = read_password()?;
            let new_admin = NewUser::parse(NewUserInput {
                first_name: &first_name,
                last_name: &last_name,
                email: &email,
                password: &password,
                role: Role::Admin,
                disabled: false,
            })
            .map_err(ApiError::Unprocessable)?;
            let state = open_state(settings).await?;
            let admin = create_user(
                &state,
                &Actor::system(CLI),
                &ClientInfo::default(),
                new_admin,
            )
            .await?;
            Ok(format!("created the admin {} ({})", admin.email, admin.id))
        }
        Command::Admin {
            command: AdminCommand::ResetPassword { email },
        } => {
            let password = read_password()?;
            let state = open_state(settings).await?;
            let lookup = Email::normalise(&email);
            let user = state
                .read(move |conn| Ok(users::find_by_email(conn, &lookup)?))
                .await?
                .ok_or_else(|| CliError::Failed(format!("no user has the email {email}")))?;
            let password =
                PasswordPolicy::parse(&password, &[&user.email, &user.first_name, &user.last_name])
                    .map_err(|message| CliError::Failed(format!("password {message}")))?;
            set_password(
                &state,
                CLI.into(),
                ClientInfo::default(),
                user.id.clone(),
                password,
            )
            .await?;
            Ok(format!(
                "set a new password for {}; their sessions have ended",
                user.email
            ))
        }
        Command::Keys {
            command: KeysCommand::Rotate { revoke_previous },
        } => {
            let state = open_state(settings).await?;
            let key =
                rotate_keys(&state, CLI.into(), ClientInfo::default(), revoke_previous).await?;
            Ok(format!(
                "{} is the active key{}",
                key.kid,
                if revoke_previous {
                    "; every other key is retired"
                } else {
                    ""
                }
            ))
        }
        Command::Sessions {
            command: SessionsCommand::RevokeAll { email },
        } => {
            let state = open_state(settings).await?;
            let now = state.now_naive();
            let lookup = email.as_deref().map(Email::normalise);
            let count = state
                .write_revoking(move |conn, revoked| {
                    let ids = match &lookup {
                        Some(email) => {
                            let user =
                                users::find_by_email(conn, email)?.ok_or(ApiError::NotFound)?;
                            sessions::revoke_all_for_user(
                                conn,
                                &user.id,
                                None,
                                now,
                                crate::auth::sessions::reason::ADMIN,
                            )?
                        }
                        None => {
                            sessions::revoke_all(conn, now, crate::auth::sessions::reason::ADMIN)?
                        }
                    };
                    let count = ids.len();
                    crate::audit::Event::new(CLI, "session.revoke_all", crate::audit::Outcome::Ok)
                        .detail(serde_json::json!({ "email": lookup, "sessions": count }))
                        .write(conn, now)?;
                    revoked.extend(ids);
                    Ok(count)
                })
                .await
                .map_err(|err| match err {
                    ApiError::NotFound => CliError::Failed(format!(
                        "no user has the email {}",
                        email.clone().unwrap_or_default()
                    )),
                    other => other.into(),
                })?;
            Ok(format!(
                "ended {count} session{}",
                if count == 1 { "" } else { "s" }
            ))
        }
        Command::Backup { path } => {
            if path.exists() {
                return Err(CliError::Failed(format!(
                    "{} exists already",
                    path.display()
                )));
            }
            let target = path
                .to_str()
                .ok_or_else(|| CliError::Failed("the path is not UTF-8".into()))?
                .to_owned();
            let pool = db::connect(&settings.database_path, 1).map_err(CliError::Config)?;
            let mut conn = pool.get().map_err(|e| CliError::Failed(e.to_string()))?;
            db::backup(&mut conn, &target)
                .map_err(|e| CliError::Failed(format!("backup failed: {e}")))?;
            Ok(format!("wrote a copy of the store to {target}"))
        }
        Command::Healthcheck => healthcheck(&settings.bind_address),
    }
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

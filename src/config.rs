//! Settings from the environment (and `.env`): every knob latchkey has is
//! named here, with its default. A bad value is a [`ConfigError`] naming the
//! variable; `main` prints it on one line and exits with code 2.

mod mail;

pub use mail::{EmailVerification, MailSettings, SmtpServer, SmtpTls};

use crate::domain::{Email, KeyAlgorithm, PasswordPolicy};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// Who may create users through `POST /api/user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may register.
    Open,
    /// Only a signed-in admin may create users.
    Admin,
}

/// Which store `DATABASE_URL` names.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (a `sqlite://` or `sqlite:` prefix is stripped).
    Sqlite { path: String },
    /// A PostgreSQL server: `postgres://` or `postgresql://`, as libpq reads it.
    Postgres { url: String },
}

impl Database {
    /// The store a URL names, as `DATABASE_URL` takes it; `name` is what
    /// an error calls the setting (`DATABASE_URL`, `--from`).
    pub fn from_url(url: &str, name: &'static str) -> Result<Database, ConfigError> {
        let url = url.to_owned();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let rest = url.split_once("://").map_or("", |(_, rest)| rest);
            if rest.is_empty() {
                return Err(invalid(
                    name,
                    &url,
                    "a PostgreSQL URL (postgres://user:password@host:port/database)",
                ));
            }
            return Ok(Database::Postgres { url });
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(&url);
        if path.is_empty() || path.contains("://") {
            return Err(invalid(
                name,
                &url,
                "a SQLite file path, a sqlite:// URL or a postgres:// URL",
            ));
        }
        Ok(Database::Sqlite {
            path: path.to_owned(),
        })
    }

    /// The store as a log line or a message may name it: a PostgreSQL URL
    /// as scheme, user, host and database, without its password or any
    /// parameter (`?password=` is one libpq reads).
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite { path } => path.clone(),
            Database::Postgres { url } => {
                let Some((scheme, rest)) = url.split_once("://") else {
                    return "postgres://…".into();
                };
                let rest = rest.split(['?', '#']).next().unwrap_or("");
                match rest.rsplit_once('@') {
                    Some((credentials, host)) => {
                        let user = credentials.split(':').next().unwrap_or("");
                        format!("{scheme}://{user}@{host}")
                    }
                    None => format!("{scheme}://{rest}"),
                }
            }
        }
    }

    /// `message` with every password of this URL (in the user part or a
    /// `password=` parameter, as written or percent-decoded) replaced by
    /// `***`: libpq repeats parts of a URL it cannot read in its errors.
    pub fn scrub(&self, message: &str) -> String {
        let Database::Postgres { url } = self else {
            return message.to_owned();
        };
        let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        let mut secrets: Vec<String> = Vec::new();
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if let Some((credentials, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = credentials.split_once(':')
        {
            secrets.push(password.to_owned());
        }
        if let Some((_, query)) = rest.split_once('?') {
            for pair in query.split('&') {
                if let Some((key, value)) = pair.split_once('=')
                    && key.ends_with("password")
                {
                    secrets.push(value.to_owned());
                }
            }
        }
        let mut scrubbed = message.to_owned();
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            scrubbed = scrubbed.replace(secret.as_str(), "***");
            let decoded = percent_decode(secret);
            if !decoded.is_empty() {
                scrubbed = scrubbed.replace(decoded.as_str(), "***");
            }
        }
        scrubbed
    }
}

/// `%41` as `A`; anything malformed is kept as it is.
fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Everything the server reads from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The store: a SQLite file or a PostgreSQL server.
    pub database: Database,
    pub bind_address: String,
    /// Raw bytes of `SECRET_KEY`, at least 32 of them.
    pub secret_key: Option<Vec<u8>>,
    /// How new access tokens are signed (`JWT_ALGORITHM`).
    pub jwt_algorithm: KeyAlgorithm,
    /// An admin without two-factor sign-in may only enrol
    /// (`MFA_REQUIRED_FOR_ADMINS`).
    pub mfa_required_for_admins: bool,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    pub registration: Registration,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub session_max_age: Duration,
    pub refresh_reuse_grace: Duration,
    pub token_leeway: Duration,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub login_max_failures: u32,
    /// Failed sign-ins from one client address within the window.
    pub login_max_failures_per_address: u32,
    pub login_window: Duration,
    pub cors_allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `None` means "decide from the bind address" (off on loopback).
    pub cookie_secure: Option<bool>,
    pub shutdown_grace: Duration,
    /// A console session ends after this long without a request.
    pub console_idle_timeout: Duration,
    /// A console session ends this long after sign-in, however busy.
    pub console_max_age: Duration,
    pub database_pool_size: u32,
    pub hasher_threads: usize,
    /// Sign-ins that may wait for a hasher thread before 503.
    pub hasher_queue: usize,
    /// Where and how mail is sent; `None`: no mail (`SMTP_URL` unset).
    pub mail: Option<MailSettings>,
    pub email_verification: EmailVerification,
}

/// A variable that holds a value latchkey cannot use, read from the
/// environment or found unusable at start (a store that cannot be opened):
/// the start stops with this one line, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            reason: reason.into(),
        }
    }
}

/// Every variable latchkey reads.
pub const VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "BIND_ADDRESS",
    "SECRET_KEY",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "REGISTRATION",
    "ACCESS_TOKEN_TTL",
    "REFRESH_TOKEN_TTL",
    "SESSION_MAX_AGE",
    "REFRESH_REUSE_GRACE",
    "TOKEN_LEEWAY",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_ALGORITHM",
    "MFA_REQUIRED_FOR_ADMINS",
    "LOGIN_MAX_FAILURES",
    "LOGIN_MAX_FAILURES_PER_ADDRESS",
    "LOGIN_WINDOW",
    "CORS_ALLOWED_ORIGINS",
    "TRUSTED_PROXIES",
    "COOKIE_SECURE",
    "SHUTDOWN_GRACE",
    "CONSOLE_IDLE_TIMEOUT",
    "CONSOLE_MAX_AGE",
    "DATABASE_POOL_SIZE",
    "HASHER_THREADS",
    "HASHER_QUEUE",
    "SMTP_URL",
    "MAIL_FROM",
    "PUBLIC_URL",
    "EMAIL_VERIFICATION",
];

/// The shortest `SECRET_KEY` accepted, in bytes (256 bits).
pub const MIN_SECRET_KEY_BYTES: usize = 32;

impl Settings {
    /// Reads the process environment (after `.env`, which `main` loads).
    /// A variable that is not valid UTF-8 is refused, not taken as unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        for variable in VARIABLES {
            if std::env::var_os(variable).is_some_and(|value| value.to_str().is_none()) {
                return Err(ConfigError {
                    variable,
                    reason: "is not valid UTF-8".into(),
                });
            }
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can pass their own values.
    /// An empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let bind_address = bind_address(env.string("BIND_ADDRESS"))?;
        let (mail, email_verification) = mail::parse(mail::MailVariables {
            smtp_url: env.string("SMTP_URL"),
            mail_from: env.string("MAIL_FROM"),
            public_url: env.string("PUBLIC_URL"),
            email_verification: env.string("EMAIL_VERIFICATION"),
        })?;
        let settings = Settings {
            database: database(env.string("DATABASE_URL"))?,
            secret_key: secret_key(env.raw("SECRET_KEY"))?,
            // JOSE spells them `HS256` and `EdDSA`; any letter case will do.
            jwt_algorithm: match env.string("JWT_ALGORITHM") {
                None => KeyAlgorithm::Hs256,
                Some(name) if name.eq_ignore_ascii_case("HS256") => KeyAlgorithm::Hs256,
                Some(name) if name.eq_ignore_ascii_case("EdDSA") => KeyAlgorithm::EdDsa,
                Some(name) => return Err(invalid("JWT_ALGORITHM", &name, "`HS256` or `EdDSA`")),
            },
            admin_email: env.string("ADMIN_EMAIL"),
            admin_password: env.raw("ADMIN_PASSWORD"),
            registration: match env.string("REGISTRATION").as_deref() {
                None | Some("open") => Registration::Open,
                Some("admin") => Registration::Admin,
                Some(other) => return Err(invalid("REGISTRATION", other, "`open` or `admin`")),
            },
            access_token_ttl: env.seconds("ACCESS_TOKEN_TTL", 300, Positive::Yes)?,
            refresh_token_ttl: env.seconds("REFRESH_TOKEN_TTL", 1_209_600, Positive::Yes)?,
            session_max_age: env.seconds("SESSION_MAX_AGE", 7_776_000, Positive::Yes)?,
            refresh_reuse_grace: env.seconds("REFRESH_REUSE_GRACE", 5, Positive::No)?,
            token_leeway: env.seconds("TOKEN_LEEWAY", 0, Positive::No)?,
            jwt_issuer: env
                .string("JWT_ISSUER")
                .unwrap_or_else(|| "latchkey".into()),
            jwt_audience: env
                .string("JWT_AUDIENCE")
                .unwrap_or_else(|| "latchkey".into()),
            login_max_failures: env.count("LOGIN_MAX_FAILURES", 5)?,
            login_max_failures_per_address: env.count("LOGIN_MAX_FAILURES_PER_ADDRESS", 20)?,
            login_window: env.seconds("LOGIN_WINDOW", 900, Positive::Yes)?,
            trusted_proxies: env
                .string("TRUSTED_PROXIES")
                .map(|list| trusted_proxies(&list))
                .transpose()?
                .unwrap_or_default(),
            cors_allowed_origins: env
                .string("CORS_ALLOWED_ORIGINS")
                .map(|list| cors_origins(&list))
                .transpose()?
                .unwrap_or_default(),
            cookie_secure: env.boolean("COOKIE_SECURE")?,
            mfa_required_for_admins: env.boolean("MFA_REQUIRED_FOR_ADMINS")?.unwrap_or(false),
            shutdown_grace: env.seconds("SHUTDOWN_GRACE", 10, Positive::No)?,
            console_idle_timeout: env.seconds("CONSOLE_IDLE_TIMEOUT", 1800, Positive::Yes)?,
            console_max_age: env.seconds("CONSOLE_MAX_AGE", 43_200, Positive::Yes)?,
            database_pool_size: env.count("DATABASE_POOL_SIZE", 8)?,
            hasher_threads: env.count("HASHER_THREADS", default_hasher_threads())? as usize,
            hasher_queue: env.count("HASHER_QUEUE", 128)? as usize,
            bind_address,
            mail,
            email_verification,
        };
        if settings.jwt_algorithm == KeyAlgorithm::EdDsa && settings.secret_key.is_some() {
            return Err(ConfigError::new(
                "SECRET_KEY",
                "is an HMAC key, which JWT_ALGORITHM=EdDSA does not use (the ring makes Ed25519 \
                 keys); unset it: the tokens it signed keep working until they expire",
            ));
        }
        match (&settings.admin_email, &settings.admin_password) {
            (Some(_), None) => Err(ConfigError {
                variable: "ADMIN_PASSWORD",
                reason: "must be set together with ADMIN_EMAIL".into(),
            }),
            (None, Some(_)) => Err(ConfigError {
                variable: "ADMIN_EMAIL",
                reason: "must be set together with ADMIN_PASSWORD".into(),
            }),
            (Some(email), Some(password)) => {
                let email = Email::parse(email).map_err(|reason| ConfigError {
                    variable: "ADMIN_EMAIL",
                    reason,
                })?;
                PasswordPolicy::parse(password, &[email.as_str()]).map_err(|reason| {
                    ConfigError {
                        variable: "ADMIN_PASSWORD",
                        reason,
                    }
                })?;
                Ok(settings)
            }
            (None, None) => Ok(settings),
        }
    }

    /// Whether the console cookie carries `Secure`: as configured, else off
    /// only when the server listens on a loopback address.
    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure
            .unwrap_or_else(|| !is_loopback(&self.bind_address))
    }
}

fn default_hasher_threads() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
}

fn is_loopback(bind_address: &str) -> bool {
    let host = bind_address
        .rsplit_once(':')
        .map_or(bind_address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

#[derive(Clone, Copy)]
enum Positive {
    Yes,
    No,
}

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    /// The value exactly as set (passwords and keys keep their spaces).
    fn raw(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.is_empty())
    }

    fn string(&self, name: &str) -> Option<String> {
        self.raw(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    fn seconds(
        &self,
        name: &'static str,
        default: u64,
        positive: Positive,
    ) -> Result<Duration, ConfigError> {
        let Some(value) = self.string(name) else {
            return Ok(Duration::from_secs(default));
        };
        let expected = match positive {
            Positive::Yes => "a positive whole number of seconds",
            Positive::No => "a whole number of seconds (0 or more)",
        };
        match (value.parse::<u64>(), positive) {
            (Ok(0), Positive::Yes) | (Err(_), _) => Err(invalid(name, &value, expected)),
            (Ok(secs), _) if secs > MAX_SECONDS => Err(invalid(name, &value, expected)),
            (Ok(secs), _) => Ok(Duration::from_secs(secs)),
        }
    }

    fn count(&self, name: &'static str, default: u32) -> Result<u32, ConfigError> {
        match self.string(name) {
            None => Ok(default),
            Some(value) => match value.parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(invalid(name, &value, "a positive whole number")),
            },
        }
    }

    fn boolean(&self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.string(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(None),
            Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
            Some("false" | "0" | "no" | "off") => Ok(Some(false)),
            Some(other) => Err(invalid(name, other, "`true` or `false`")),
        }
    }
}

/// Durations past a century are surely a typo, and would overflow time maths.
const MAX_SECONDS: u64 = 100 * 365 * 24 * 3600;

fn invalid(variable: &'static str, value: &str, expected: &str) -> ConfigError {
    let shown: String = value.chars().take(40).collect();
    ConfigError {
        variable,
        reason: format!("{shown:?} is not valid; expected {expected}"),
    }
}

/// `host:port`, where the host is a name or an IP address (IPv6 in brackets).
fn bind_address(value: Option<String>) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| "127.0.0.1:8080".into());
    let valid = value
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if valid {
        Ok(value)
    } else {
        Err(invalid(
            "BIND_ADDRESS",
            &value,
            "host:port, like 127.0.0.1:8080",
        ))
    }
}

fn database(url: Option<String>) -> Result<Database, ConfigError> {
    Database::from_url(
        &url.unwrap_or_else(|| "data/latchkey.db".into()),
        "DATABASE_URL",
    )
}

fn secret_key(value: Option<String>) -> Result<Option<Vec<u8>>, ConfigError> {
    match value {
        None => Ok(None),
        Some(value) if value.len() < MIN_SECRET_KEY_BYTES => Err(ConfigError {
            variable: "SECRET_KEY",
            reason: format!(
                "is {} bytes long; it must be at least {MIN_SECRET_KEY_BYTES} bytes",
                value.len()
            ),
        }),
        Some(value) => Ok(Some(value.into_bytes())),
    }
}

/// IP addresses or CIDR ranges, comma-separated.
fn trusted_proxies(list: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    invalid(
                        "TRUSTED_PROXIES",
                        entry,
                        "IP addresses or CIDR ranges like 10.0.0.0/8",
                    )
                })
        })
        .collect()
}

fn cors_origins(list: &str) -> Result<Vec<String>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin
                    .trim_end_matches('/')
                    .contains(|c: char| c.is_whitespace())
                && origin
                    .split("://")
                    .nth(1)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
            if ok {
                Ok(origin.to_owned())
            } else {
                Err(invalid(
                    "CORS_ALLOWED_ORIGINS",
                    origin,
                    "origins like https://app.example.com",
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn nothing_set_gives_the_documented_defaults() {
        let s = parse(&[]).unwrap();
        assert_eq!(
            s.database,
            Database::Sqlite {
                path: "data/latchkey.db".into()
            }
        );
        assert_eq!(s.bind_address, "127.0.0.1:8080");
        assert_eq!(s.access_token_ttl, Duration::from_secs(300));
        assert_eq!(s.refresh_token_ttl, Duration::from_secs(1_209_600));
        assert_eq!(s.session_max_age, Duration::from_secs(7_776_000));
        assert_eq!(s.refresh_reuse_grace, Duration::from_secs(5));
        assert_eq!(s.token_leeway, Duration::ZERO);
        assert_eq!(s.registration, Registration::Open);
        assert_eq!(s.login_max_failures, 5);
        assert!(!s.cookie_secure());
    }

    #[test]
    fn a_bad_number_names_its_variable() {
        for bad in ["1.5", "-5", "five", "0"] {
            let err = parse(&[("ACCESS_TOKEN_TTL", bad)]).unwrap_err();
            assert_eq!(err.variable, "ACCESS_TOKEN_TTL", "{bad}");
        }
        assert!(parse(&[("REFRESH_REUSE_GRACE", "0"), ("TOKEN_LEEWAY", "0")]).is_ok());
        assert_eq!(
            parse(&[("TOKEN_LEEWAY", "-1")]).unwrap_err().variable,
            "TOKEN_LEEWAY"
        );
    }

    #[test]
    fn a_short_secret_key_is_refused() {
        let err = parse(&[("SECRET_KEY", "too-short")]).unwrap_err();
        assert_eq!(err.variable, "SECRET_KEY");
        assert!(parse(&[("SECRET_KEY", &"k".repeat(32))]).is_ok());
    }

    #[test]
    fn unknown_registration_mode_is_refused() {
        assert_eq!(
            parse(&[("REGISTRATION", "closed")]).unwrap_err().variable,
            "REGISTRATION"
        );
        assert_eq!(
            parse(&[("REGISTRATION", "admin")]).unwrap().registration,
            Registration::Admin
        );
    }

    #[test]
    fn a_sqlite_path_or_url_and_a_postgres_url_are_accepted() {
        assert_eq!(
            parse(&[("DATABASE_URL", "sqlite://x.db")])
                .unwrap()
                .database,
            Database::Sqlite {
                path: "x.db".into()
            }
        );
        let pg = parse(&[("DATABASE_URL", "postgres://app:s3cret@db:5432/latchkey")])
            .unwrap()
            .database;
        assert_eq!(
            pg,
            Database::Postgres {
                url: "postgres://app:s3cret@db:5432/latchkey".into()
            }
        );
        assert_eq!(pg.describe(), "postgres://app@db:5432/latchkey");
        assert!(!format!("{pg:?}").contains("s3cret"));
        assert_eq!(pg.scrub("bad token: \"s3cret\""), "bad token: \"***\"");
        let in_query = Database::Postgres {
            url: "postgres://db/latchkey?user=app&password=p%40ss&sslmode=disable".into(),
        };
        assert_eq!(in_query.describe(), "postgres://db/latchkey");
        assert_eq!(in_query.scrub("near p%40ss and p@ss"), "near *** and ***");
        assert_eq!(
            parse(&[("DATABASE_URL", "postgresql://")])
                .unwrap_err()
                .variable,
            "DATABASE_URL"
        );
        assert_eq!(
            parse(&[("DATABASE_URL", "mysql://h/db")])
                .unwrap_err()
                .variable,
            "DATABASE_URL"
        );
    }

    #[test]
    fn cookie_secure_defaults_on_away_from_loopback() {
        assert!(
            parse(&[("BIND_ADDRESS", "0.0.0.0:80")])
                .unwrap()
                .cookie_secure()
        );
        assert!(
            !parse(&[("BIND_ADDRESS", "[::1]:80")])
                .unwrap()
                .cookie_secure()
        );
        assert!(
            !parse(&[("COOKIE_SECURE", "false"), ("BIND_ADDRESS", "0.0.0.0:1")])
                .unwrap()
                .cookie_secure()
        );
    }

    #[test]
    fn admin_email_needs_a_strong_password() {
        assert_eq!(
            parse(&[("ADMIN_EMAIL", "a@b.co")]).unwrap_err().variable,
            "ADMIN_PASSWORD"
        );
        let weak = parse(&[("ADMIN_EMAIL", "a@b.co"), ("ADMIN_PASSWORD", "password")]);
        assert_eq!(weak.unwrap_err().variable, "ADMIN_PASSWORD");
        let bad_email = parse(&[
            ("ADMIN_EMAIL", "root"),
            ("ADMIN_PASSWORD", "violet-harbor-engine-1987"),
        ]);
        assert_eq!(bad_email.unwrap_err().variable, "ADMIN_EMAIL");
    }

    #[test]
    fn bind_address_needs_a_host_and_port() {
        for bad in ["not-an-address", ":8080", "127.0.0.1:", "127.0.0.1:99999"] {
            assert_eq!(
                parse(&[("BIND_ADDRESS", bad)]).unwrap_err().variable,
                "BIND_ADDRESS",
                "{bad}"
            );
        }
        assert!(parse(&[("BIND_ADDRESS", "[::1]:0")]).is_ok());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        let s = parse(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")]).unwrap();
        assert_eq!(s.trusted_proxies.len(), 3);
        assert_eq!(
            parse(&[("TRUSTED_PROXIES", "proxy.local")])
                .unwrap_err()
                .variable,
            "TRUSTED_PROXIES"
        );
    }
}

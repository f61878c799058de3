//! The binary itself: it starts with nothing configured, refuses a bad
//! configuration with one line and exit code 2, and has no default admin.

use crate::helpers::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn latchkey(dir: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

#[test]
fn a_bad_value_stops_the_start_with_one_line_naming_the_variable_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        ("ACCESS_TOKEN_TTL", "1.5"),
        ("REFRESH_TOKEN_TTL", "-5"),
        ("SESSION_MAX_AGE", "five"),
        ("ACCESS_TOKEN_TTL", "0"),
        ("REFRESH_REUSE_GRACE", "soon"),
        ("TOKEN_LEEWAY", "-1"),
        ("LOGIN_MAX_FAILURES", "many"),
        ("REGISTRATION", "closed"),
        ("SECRET_KEY", "too-short"),
        ("COOKIE_SECURE", "perhaps"),
        ("DATABASE_URL", "/proc/no-such-dir/latchkey.db"),
        ("BIND_ADDRESS", "not-an-address"),
        ("ADMIN_PASSWORD", "password"),
        ("JWT_ALGORITHM", "RS256"),
        ("JWT_ALGORITHM", "none"),
        ("SMTP_URL", "http://mail.example.com"),
        ("SMTP_URL", "smtp://"),
        ("EMAIL_VERIFICATION", "sometimes"),
        ("MAIL_FROM", "not an address"),
        ("MAIL_FROM", "a@example.com\r\nBcc: b@example.com"),
        ("PUBLIC_URL", "auth.example.com"),
        // An HMAC key where Ed25519 keys are made.
        (
            "SECRET_KEY",
            "a-long-enough-hmac-secret-of-32-bytes-and-more",
        ),
    ];
    for (variable, value) in cases {
        let mut env = vec![("BIND_ADDRESS", "127.0.0.1:0"), (*variable, *value)];
        if *variable == "ADMIN_PASSWORD" {
            env.push(("ADMIN_EMAIL", "root@example.com"));
        }
        // The mail variables go together.
        for (other, good) in [
            ("SMTP_URL", "smtp://127.0.0.1:2525"),
            ("MAIL_FROM", "latchkey <no-reply@example.com>"),
            ("PUBLIC_URL", "https://auth.example.com"),
        ] {
            if ["MAIL_FROM", "PUBLIC_URL"].contains(variable) && other != *variable {
                env.push((other, good));
            }
        }
        if *variable == "SECRET_KEY" && value.len() >= 32 {
            env.push(("JWT_ALGORITHM", "EdDSA"));
        }
        let output = latchkey(dir.path(), &env).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}={value}: {stderr}"
        );
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{variable}={value}: one line, got {stderr:?}"
        );
        assert!(lines[0].contains(variable), "{variable}={value}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{stderr}"
        );
    }
}

/// A running binary, killed when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and waits for the line that says where it listens.
fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> (Running, String, Vec<String>) {
    let mut child = latchkey(dir, env)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .dies_with_the_test()
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let running = Running(child);
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        lines.push(line.clone());
        if let Some(address) = line.split("listening on ").nth(1) {
            return (running, address.trim().to_owned(), lines);
        }
        assert!(Instant::now() < deadline, "no listening line: {lines:?}");
    }
    panic!("the server stopped before listening: {lines:?}");
}

#[tokio::test]
async fn with_nothing_configured_it_creates_its_store_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, address, log) = start(dir.path(), &[("BIND_ADDRESS", "127.0.0.1:0")]);
    assert!(dir.path().join("data/latchkey.db").exists());
    let health = reqwest::get(format!("{address}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let log = log.join("\n");
    assert!(log.contains("no admin exists yet"), "{log}");
    let client = reqwest::Client::new();
    let body = serde_json::json!({ "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
                                   "password": PASSWORD });
    let created = client
        .post(format!("{address}/api/user"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}

#[tokio::test]
async fn a_fresh_store_has_no_default_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, address, _) = start(dir.path(), &[("BIND_ADDRESS", "127.0.0.1:0")]);
    let client = reqwest::Client::new();
    for (email, password) in [
        ("admin", "admin"),
        ("admin@example.com", "admin"),
        ("admin@localhost", "password"),
        ("root@localhost", "root"),
        ("admin@example.com", "changeme"),
    ] {
        let body = serde_json::json!({ "email": email, "password": password });
        let response = client
            .post(format!("{address}/api/user/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{email}/{password}");
    }
    use diesel::prelude::*;
    let mut store =
        diesel::SqliteConnection::establish(dir.path().join("data/latchkey.db").to_str().unwrap())
            .unwrap();
    let users: i64 = latchkey::db::schema::users::table
        .count()
        .get_result(&mut store)
        .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn admin_email_and_password_create_the_first_admin_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let me = json_body(app.get("/api/user/me", Some(&admin.access_token)).await).await;
    assert_eq!(me["role"], "admin");
    let again = app
        .restart_with(&[("ADMIN_PASSWORD", "another-strong-passphrase-93")])
        .await;
    assert_eq!(
        again.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        200,
        "an existing user is left alone"
    );
}

#[tokio::test]
async fn a_dot_env_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "BIND_ADDRESS=127.0.0.1:0\nDATABASE_URL=sqlite://from-dotenv.db\n",
    )
    .unwrap();
    let (_server, address, _) = start(dir.path(), &[]);
    assert!(dir.path().join("from-dotenv.db").exists());
    assert_eq!(
        reqwest::get(format!("{address}/readyz"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn a_variable_that_is_not_utf8_stops_the_start() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    for variable in ["SECRET_KEY", "REGISTRATION"] {
        let value = std::ffi::OsStr::from_bytes(b"adm\xffin-and-more-bytes-to-reach-32-bytes!!");
        let output = latchkey(dir.path(), &[("BIND_ADDRESS", "127.0.0.1:0")])
            .env(variable, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{variable}: {stderr}");
        assert!(
            stderr.contains(variable) && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
}

#[test]
fn an_unknown_command_is_refused_instead_of_serving() {
    let dir = tempfile::tempdir().unwrap();
    let output = latchkey(dir.path(), &[("BIND_ADDRESS", "127.0.0.1:0")])
        .args(["frobnicate"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unrecognized subcommand"));
    assert!(!dir.path().join("data").exists(), "nothing was started");
}

//! The command line, each subcommand against a real store, with the server
//! running beside it where that matters: a running server sees what the
//! shell did within a second.

use crate::console::Console;
use crate::helpers::*;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn latchkey(app: &TestApp, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .env("BIND_ADDRESS", app.address.trim_start_matches("http://"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .dies_with_the_test()
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Waits (up to 5 s) until `check` holds: the server watches the store
/// every second.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_command_has_help() {
    let app = spawn_app().await;
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["admin", "create", "--help"],
        &["admin", "reset-password", "--help"],
        &["keys", "rotate", "--help"],
        &["sessions", "revoke-all", "--help"],
        &["clients", "create", "--help"],
        &["clients", "list", "--help"],
        &["clients", "revoke", "--help"],
        &["backup", "--help"],
        &["migrate-store", "--help"],
        &["healthcheck", "--help"],
    ] {
        let output = latchkey(&app, args, "");
        assert!(output.status.success(), "{args:?}");
        assert!(stdout(&output).contains("Usage: latchkey"), "{args:?}");
    }
}

#[tokio::test]
async fn migrate_creates_and_updates_a_store() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("new/fresh.db");
    let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("migrate")
        .env_clear()
        .env("DATABASE_URL", &fresh)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("up to date"));
    assert!(fresh.exists());
    let again = latchkey(&app, &["migrate"], "");
    assert!(again.status.success(), "{}", stderr(&again));
}

#[tokio::test]
async fn admin_create_reads_the_password_from_stdin() {
    let app = spawn_app().await;
    let created = latchkey(
        &app,
        &["admin", "create", "--email", "Ops@Example.com"],
        "shell-created-admin-4417\n",
    );
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stdout(&created).contains("ops@example.com"));
    let admin = app
        .sign_in("ops@example.com", "shell-created-admin-4417")
        .await;
    assert_eq!(
        app.get("/api/admin/keys", Some(&admin.access_token))
            .await
            .status(),
        200,
        "an admin"
    );
    let weak = latchkey(
        &app,
        &["admin", "create", "--email", "weak@example.com"],
        "password\n",
    );
    assert_eq!(weak.status.code(), Some(1));
    assert!(stderr(&weak).contains("password"), "{}", stderr(&weak));
    let taken = latchkey(
        &app,
        &["admin", "create", "--email", "ops@example.com"],
        "another-long-passphrase-31\n",
    );
    assert_eq!(taken.status.code(), Some(1));
    assert!(stderr(&taken).contains("exists"));
    assert!(
        !stderr(&created).contains("shell-created-admin-4417"),
        "the password is never echoed"
    );
}

#[tokio::test]
async fn admin_reset_password_ends_the_users_sessions_on_the_running_server() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let output = latchkey(
        &app,
        &["admin", "reset-password", "--email", &user.email],
        "reset-from-the-shell-8812\n",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    eventually("the old session ending", || async {
        app.get("/api/user/me", Some(&user.access_token))
            .await
            .status()
            == 401
    })
    .await;
    assert_eq!(app.login(&user.email, PASSWORD).await.status(), 401);
    assert_eq!(
        app.login(&user.email, "reset-from-the-shell-8812")
            .await
            .status(),
        200
    );
    let unknown = latchkey(
        &app,
        &["admin", "reset-password", "--email", "nobody@example.com"],
        "whatever-long-pass-12\n",
    );
    assert_eq!(unknown.status.code(), Some(1));
}

#[tokio::test]
async fn keys_rotate_from_the_shell_signs_the_next_token_on_the_running_server() {
    let app = spawn_app().await;
    let before = app.admin().await;
    let output = latchkey(&app, &["keys", "rotate"], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let new_kid = stdout(&output)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    eventually("signing with the new key", || async {
        kid_of(&app.admin().await.access_token) == new_kid
    })
    .await;
    assert_eq!(
        app.get("/api/user/me", Some(&before.access_token))
            .await
            .status(),
        200,
        "nobody logged out"
    );
    let emergency = latchkey(&app, &["keys", "rotate", "--revoke-previous"], "");
    assert!(emergency.status.success());
    eventually("the old tokens failing", || async {
        app.get("/api/user/me", Some(&before.access_token))
            .await
            .status()
            == 401
    })
    .await;
}

#[tokio::test]
async fn sessions_revoke_all_from_the_shell_fails_tokens_on_the_running_server() {
    let app = spawn_app().await;
    let (one, other) = (app.new_user().await, app.new_user().await);
    let output = latchkey(&app, &["sessions", "revoke-all", "--email", &one.email], "");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("ended 1 session"));
    eventually("that user's token failing", || async {
        app.get("/api/user/me", Some(&one.access_token))
            .await
            .status()
            == 401
    })
    .await;
    assert_eq!(
        app.get("/api/user/me", Some(&other.access_token))
            .await
            .status(),
        200
    );
    let everyone = latchkey(&app, &["sessions", "revoke-all"], "");
    assert!(everyone.status.success());
    eventually("everyone's token failing", || async {
        app.get("/api/user/me", Some(&other.access_token))
            .await
            .status()
            == 401
    })
    .await;
    assert_problem(app.refresh(&other.refresh_token).await, 401).await;
}

#[tokio::test]
async fn backup_writes_a_consistent_copy_while_the_server_runs() {
    use diesel::prelude::*;
    let app = spawn_app().await;
    let user = app.new_user().await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let output = latchkey(&app, &["backup", copy.to_str().unwrap()], "");
    if app.on_postgres() {
        // API.md: on PostgreSQL `backup` says to use pg_dump, in one line.
        assert_eq!(output.status.code(), Some(1));
        let said = stderr(&output);
        assert!(said.contains("pg_dump"), "{said}");
        assert_eq!(said.trim().lines().count(), 1, "{said}");
        assert!(!copy.exists());
        return;
    }
    assert!(output.status.success(), "{}", stderr(&output));
    let mut restored = diesel::SqliteConnection::establish(copy.to_str().unwrap()).unwrap();
    use latchkey::db::schema::users;
    let emails: Vec<String> = users::table
        .select(users::email)
        .load(&mut restored)
        .unwrap();
    assert!(emails.contains(&user.email) && emails.contains(&ADMIN_EMAIL.to_owned()));
    let again = latchkey(&app, &["backup", copy.to_str().unwrap()], "");
    assert_eq!(again.status.code(), Some(1), "never overwrites");
    // The copy serves: a server started on it knows the user.
    let restored_app = app
        .restart_with(&[("DATABASE_URL", copy.to_str().unwrap())])
        .await;
    assert_eq!(
        restored_app.login(&user.email, PASSWORD).await.status(),
        200
    );
}

// Multi-threaded: the server must answer while this thread waits for the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_when_the_server_answers_and_1_when_not() {
    let app = spawn_app().await;
    let up = latchkey(&app, &["healthcheck"], "");
    assert!(up.status.success(), "{}", stderr(&up));
    let down = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("healthcheck")
        .env_clear()
        .env("BIND_ADDRESS", "127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
}

#[tokio::test]
async fn a_user_changed_by_another_instance_is_seen_within_a_second() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let me = json_body(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert_eq!(me["first_name"], "Test", "now cached");
    // Another instance on the same store renames the user.
    let other = app.restart_with(&[]).await;
    let admin = other.admin().await;
    let renamed = other
        .send(
            reqwest::Method::PATCH,
            &format!("/api/user/{}", user.id),
            Some(&admin.access_token),
            Some(&serde_json::json!({ "first_name": "Elsewhere" })),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    eventually("the rename showing", || async {
        json_body(app.get("/api/user/me", Some(&user.access_token)).await).await["first_name"]
            == "Elsewhere"
    })
    .await;
}

#[tokio::test]
async fn admin_create_with_nothing_on_stdin_says_no_password_was_given() {
    let app = spawn_app().await;
    for stdin in ["", "\n"] {
        let output = latchkey(
            &app,
            &["admin", "create", "--email", "nobody@example.com"],
            stdin,
        );
        assert_eq!(output.status.code(), Some(1), "{stdin:?}");
        let said = stderr(&output);
        assert!(said.contains("no password was given"), "{stdin:?}: {said}");
        assert!(!said.contains("at least"), "not judged as short: {said}");
    }
    let reset = latchkey(
        &app,
        &["admin", "reset-password", "--email", ADMIN_EMAIL],
        "",
    );
    assert_eq!(reset.status.code(), Some(1));
    assert!(stderr(&reset).contains("no password was given"));
    assert_eq!(
        app.admin().await.email,
        ADMIN_EMAIL,
        "the password is unchanged"
    );
}

#[tokio::test]
async fn sessions_revoke_all_from_the_shell_ends_console_sign_ins_too() {
    let app = spawn_app().await;
    let second = app.new_admin().await;
    let first_console = Console::signed_in_admin(&app).await;
    let second_console = Console::new(&app);
    assert_eq!(
        second_console
            .sign_in(&second.email, PASSWORD)
            .await
            .status(),
        303
    );
    for console in [&first_console, &second_console] {
        assert_eq!(console.get("/admin").await.status(), 200);
    }

    let one = latchkey(
        &app,
        &["sessions", "revoke-all", "--email", &second.email],
        "",
    );
    assert!(one.status.success(), "{}", stderr(&one));
    let signed_out = second_console.get("/admin").await;
    assert_eq!(
        signed_out.status(),
        303,
        "that admin's console session ended"
    );
    assert_eq!(signed_out.headers()["location"], "/admin/login");
    assert_eq!(
        first_console.get("/admin").await.status(),
        200,
        "the other admin's did not"
    );

    let everyone = latchkey(&app, &["sessions", "revoke-all"], "");
    assert!(everyone.status.success(), "{}", stderr(&everyone));
    let signed_out = first_console.get("/admin").await;
    assert_eq!(signed_out.status(), 303);
    assert_eq!(signed_out.headers()["location"], "/admin/login");
    assert_eq!(first_console.get("/admin/users").await.status(), 303);
}

/// The value of the `name:` line of a command's output.
fn line_value(output: &str, name: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} line in {output}"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn clients_are_created_listed_and_revoked_from_the_shell_for_the_running_server() {
    use crate::clients::{ServiceClient, introspect, introspect_as};
    let app = spawn_app().await;
    let user = app.new_user().await;
    let created = latchkey(&app, &["clients", "create", "--name", "nightly export"], "");
    assert!(created.status.success(), "{}", stderr(&created));
    let out = stdout(&created);
    assert!(out.contains("shown this once"), "{out}");
    let client = ServiceClient {
        id: line_value(&out, "id:"),
        secret: line_value(&out, "secret:"),
    };
    assert_eq!(
        introspect(&app, &client, &user.access_token).await["active"],
        true,
        "the running server knows the new client"
    );

    let listed = latchkey(&app, &["clients", "list"], "");
    assert!(listed.status.success());
    let out = stdout(&listed);
    assert!(
        out.contains(&client.id) && out.contains("\"nightly export\"") && out.contains("active"),
        "{out}"
    );
    assert!(!out.contains(&client.secret), "a list never shows a secret");

    let revoked = latchkey(&app, &["clients", "revoke", &client.id], "");
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert!(stdout(&revoked).contains("revoked"));
    let refused = introspect_as(
        &app,
        &client.id,
        &client.secret,
        &[("token", &user.access_token)],
    )
    .await;
    assert_eq!(refused.status(), 401, "refused from the next request on");
    assert!(stdout(&latchkey(&app, &["clients", "list"], "")).contains("revoked"));

    // Mistakes: one line, exit 1, nothing changed.
    let again = latchkey(&app, &["clients", "revoke", &client.id], "");
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("no such service client"),
        "{}",
        stderr(&again)
    );
    let unnamed = latchkey(&app, &["clients", "create", "--name", "  "], "");
    assert_eq!(unnamed.status.code(), Some(1));
    assert!(
        stderr(&unnamed).contains("--name must not be empty"),
        "{}",
        stderr(&unnamed)
    );
    assert_eq!(
        stdout(&latchkey(&app, &["clients", "list"], ""))
            .lines()
            .count(),
        1
    );
}

#[test]
fn every_option_of_every_command_says_what_it_is() {
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(args)
            .arg("--help")
            .env_clear()
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?} --help");
        String::from_utf8(output.stdout).unwrap()
    };
    for command in [
        &["admin", "create"][..],
        &["admin", "reset-password"],
        &["keys", "rotate"],
        &["clients", "create"],
        &["clients", "revoke"],
        &["sessions", "revoke-all"],
        &["backup"],
        &["migrate-store"],
    ] {
        let text = help(command);
        let options = text.split("Options:").nth(1).unwrap_or_default();
        for line in options.lines().filter(|l| l.trim_start().starts_with("--")) {
            let said = line
                .trim()
                .split("  ")
                .filter(|part| !part.is_empty())
                .count();
            assert!(said >= 2, "{command:?}: {line:?} has no help text");
        }
    }
    let rotate = help(&["keys", "rotate"]);
    assert!(
        rotate.contains("unless --revoke-previous"),
        "the summary does not contradict the option: {rotate}"
    );
}

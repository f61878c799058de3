//! `latchkey migrate-store`: a SQLite store moved to PostgreSQL (and back)
//! arrives whole: every row of every table as it was, and a server on the
//! new store honours the old store's passwords, tokens, refresh chains,
//! locks and console cookies. These tests start the throwaway PostgreSQL
//! cluster whichever backend the rest of the suite runs on.

use crate::console::Console;
use crate::helpers::*;
use diesel::prelude::*;
use latchkey::db::DbConnection;
use latchkey::db::console_sessions::ConsoleSessionRow;
use latchkey::db::email_tokens::EmailTokenRow;
use latchkey::db::models::{
    AuditRow, RefreshTokenRow, ServiceClientRow, SessionRow, SigningKeyRow, UserRow,
};
use latchkey::db::outbox::MailRow;
use latchkey::db::schema::{
    audit_log, console_sessions, email_tokens, login_throttle, mail_outbox, refresh_tokens,
    server_secrets, service_clients, sessions, signing_keys, users,
};
use serde_json::json;
use std::process::{Command, Output};

fn migrate_store(from: &str, to: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["migrate-store", "--from", from, "--to", to])
        .env_clear()
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every row of every table (but the change feed), one line each, in key
/// order: two stores with equal dumps hold the same data.
fn dump(conn: &mut DbConnection) -> Vec<String> {
    let mut lines = Vec::new();
    let users: Vec<UserRow> = users::table
        .order(users::id)
        .select(UserRow::as_select())
        .load(conn)
        .unwrap();
    lines.extend(users.iter().map(|row| format!("{row:?}")));
    let sessions: Vec<SessionRow> = sessions::table
        .order(sessions::id)
        .select(SessionRow::as_select())
        .load(conn)
        .unwrap();
    lines.extend(sessions.iter().map(|row| format!("{row:?}")));
    let chains: Vec<RefreshTokenRow> = refresh_tokens::table
        .order(refresh_tokens::token_hash)
        .select(RefreshTokenRow::as_select())
        .load(conn)
        .unwrap();
    lines.extend(chains.iter().map(|row| format!("{row:?}")));
    let keys: Vec<SigningKeyRow> = signing_keys::table
        .order(signing_keys::kid)
        .select(SigningKeyRow::as_select())
        .load(conn)
        .unwrap();
    lines.extend(keys.iter().map(|row| {
        format!(
            "{row:?} secret={:?} deactivated={:?} retired={:?}",
            row.secret, row.deactivated_at, row.retired_at
        )
    }));
    let secrets: Vec<(String, Vec<u8>, chrono::NaiveDateTime)> = server_secrets::table
        .order(server_secrets::name)
        .load(conn)
        .unwrap();
    lines.extend(secrets.iter().map(|row| format!("{row:?}")));
    let console: Vec<ConsoleSessionRow> = console_sessions::table
        .order(console_sessions::key_hash)
        .select(ConsoleSessionRow::as_select())
        .load(conn)
        .unwrap();
    lines.extend(console.iter().map(|row| format!("{row:?}")));
    let clients: Vec<ServiceClientRow> = service_clients::table
        .order(service_clients::id)
        .select(ServiceClientRow::as_select())
        .load(conn)
        .unwrap();
    lines.extend(clients.iter().map(|row| {
        format!(
            "{row:?} secret_hash={} created={:?} by={} used={:?}",
            row.secret_hash, row.created_at, row.created_by, row.last_used_at
        )
    }));
    let tokens: Vec<EmailTokenRow> = email_tokens::table
        .order(email_tokens::token_hash)
        .select(EmailTokenRow::as_select())
        .load(conn)
        .unwrap();
    lines.extend(tokens.iter().map(|row| format!("{row:?}")));
    let mails: Vec<MailRow> = mail_outbox::table
        .order(mail_outbox::id)
        .select(MailRow::as_select())
        .load(conn)
        .unwrap();
    lines.extend(mails.iter().map(|row| format!("{row:?}")));
    let throttle: Vec<(String, chrono::NaiveDateTime, i32)> = login_throttle::table
        .order(login_throttle::subject)
        .load(conn)
        .unwrap();
    lines.extend(throttle.iter().map(|row| format!("{row:?}")));
    let audit: Vec<AuditRow> = audit_log::table
        .order(audit_log::id)
        .select(AuditRow::as_select())
        .load(conn)
        .unwrap();
    lines.extend(audit.iter().map(|row| format!("{row:?}")));
    lines
}

/// The dump of a copy without its last line, which must be the copy's own
/// audit entry.
fn without_the_copy_entry(mut lines: Vec<String>) -> Vec<String> {
    let last = lines.pop().unwrap_or_default();
    assert!(
        last.contains("action: \"store.copy\"") && last.contains("actor: \"cli\""),
        "the copy is audited last in the new store: {last}"
    );
    lines
}

#[tokio::test]
async fn a_sqlite_store_moved_to_postgresql_and_back_arrives_intact() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("old.db").to_str().unwrap().to_owned();
    let smtp = crate::smtp::SmtpServer::start();
    let old = spawn_app_with(&[
        ("DATABASE_URL", &sqlite),
        ("SMTP_URL", &smtp.url()),
        ("MAIL_FROM", "latchkey@example.com"),
        ("PUBLIC_URL", "https://auth.example.test"),
        ("EMAIL_VERIFICATION", "optional"),
    ])
    .await;

    // Something of every kind: sessions with refresh chains (one spent
    // link), two keys, a disabled user, a locked account, a console
    // session, a service client, audit entries.
    let admin = old.admin().await;
    let user = old.new_user().await;
    let refreshed = json_body(old.refresh(&user.refresh_token).await).await;
    let (access, refresh) = (
        refreshed["access_token"].as_str().unwrap().to_owned(),
        refreshed["refresh_token"].as_str().unwrap().to_owned(),
    );
    let rotated = old
        .post(
            "/api/admin/keys/rotate",
            Some(&admin.access_token),
            &json!({ "revoke_previous": false }),
        )
        .await;
    assert_eq!(rotated.status(), 201);
    let disabled = old.new_user().await;
    let patched = old
        .send(
            reqwest::Method::PATCH,
            &format!("/api/user/{}", disabled.id),
            Some(&admin.access_token),
            Some(&json!({ "disabled": true })),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let locked = old.new_user().await;
    for _ in 0..5 {
        old.login(&locked.email, "not-the-password").await;
    }
    assert_eq!(old.login(&locked.email, PASSWORD).await.status(), 429);
    let console = Console::signed_in_admin(&old).await;
    let service = crate::clients::create_client(&old, &admin, "moved").await;
    assert_eq!(
        crate::clients::introspect(&old, &service, &access).await["active"],
        true
    );

    // Verification links (sent) and a reset link (sent, its token
    // waiting), and nothing left in the outbox to change under the copy.
    let forgot = old
        .post(
            "/api/user/password/forgot",
            None,
            &json!({ "email": user.email }),
        )
        .await;
    assert_eq!(forgot.status(), 202);
    smtp.wait_for_count("@", 4, std::time::Duration::from_secs(15))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while latchkey::db::outbox::pending(&mut open_store(&sqlite)).unwrap() > 0 {
        assert!(std::time::Instant::now() < deadline, "the outbox drains");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let before = dump(&mut open_store(&sqlite));
    let postgres = crate::postgres::new_empty_database();
    let copied = migrate_store(&format!("sqlite://{sqlite}"), &postgres);
    assert!(copied.status.success(), "{}", stderr(&copied));
    assert!(
        stdout(&copied).starts_with(
            "copied 4 users, 4 sessions, 5 refresh tokens, 2 signing keys, 1 console session, \
             1 service client, "
        ),
        "{}",
        stdout(&copied)
    );
    assert!(
        stdout(&copied).contains(&format!("from {sqlite} to postgres://postgres@")),
        "{}",
        stdout(&copied)
    );
    let after = dump(&mut open_store(&postgres));
    assert_eq!(
        without_the_copy_entry(after.clone()),
        before,
        "every row arrives as it was"
    );

    // A server on the new store: what the old one issued holds there.
    let new = old.restart_with(&[("DATABASE_URL", &postgres)]).await;
    let me = new.get("/api/user/me", Some(&access)).await;
    assert_eq!(me.status(), 200, "an access token of the old store");
    assert_eq!(json_body(me).await["email"], user.email.as_str());
    let next = new.refresh(&refresh).await;
    assert_eq!(next.status(), 200, "the refresh chain goes on");
    assert_eq!(
        new.refresh(&user.refresh_token).await.status(),
        401,
        "a link spent on the old store is still spent"
    );
    assert_eq!(new.login(&user.email, PASSWORD).await.status(), 200);
    assert_eq!(new.login(&disabled.email, PASSWORD).await.status(), 403);
    assert_eq!(
        new.login(&locked.email, PASSWORD).await.status(),
        429,
        "the lock moved too"
    );
    assert_eq!(
        console.on(&new).get("/admin/users").await.status(),
        200,
        "the console cookie of the old store"
    );
    assert_eq!(
        crate::clients::introspect(&new, &service, &access).await["active"],
        true,
        "the service client's secret of the old store"
    );

    // And back to a new SQLite file.
    let back = dir.path().join("back.db").to_str().unwrap().to_owned();
    let before = dump(&mut open_store(&postgres));
    let copied = migrate_store(&postgres, &back);
    assert!(copied.status.success(), "{}", stderr(&copied));
    assert_eq!(without_the_copy_entry(dump(&mut open_store(&back))), before);
}

#[tokio::test]
async fn a_copy_is_refused_with_one_line_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("old.db").to_str().unwrap().to_owned();
    let app = spawn_app_with(&[("DATABASE_URL", &sqlite)]).await;
    app.new_user().await;

    // Into a store that holds data already: exit 1, nothing changed.
    let postgres = crate::postgres::new_empty_database();
    assert!(migrate_store(&sqlite, &postgres).status.success());
    let before = dump(&mut open_store(&postgres));
    let again = migrate_store(&sqlite, &postgres);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already holds 2 users"),
        "{}",
        stderr(&again)
    );
    assert_eq!(dump(&mut open_store(&postgres)), before);

    // Settings it cannot start with: exit 2, one line naming the option.
    let missing = dir.path().join("missing.db");
    let missing = missing.to_str().unwrap();
    let refusals = [
        (
            missing,
            postgres.as_str(),
            "latchkey: --from: there is no store at",
        ),
        (
            sqlite.as_str(),
            "postgres://nobody:secret-password@127.0.0.1:1/latchkey",
            "latchkey: --to: cannot connect to postgres://nobody@127.0.0.1:1/latchkey",
        ),
        (sqlite.as_str(), "mysql://db/latchkey", "latchkey: --to: "),
        (
            sqlite.as_str(),
            sqlite.as_str(),
            "latchkey: --from and --to name the same store",
        ),
    ];
    for (from, to, said) in refusals {
        let output = migrate_store(from, to);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{from} → {to}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with(said), "{from} → {to}: {err}");
        assert!(!err.contains("secret-password"), "{err}");
    }
    assert!(
        !std::path::Path::new(missing).exists(),
        "a mistyped source is not created"
    );
}

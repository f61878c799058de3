//! What PostgreSQL brings: one database behind several instances. These
//! tests start the throwaway cluster whichever backend the rest of the
//! suite runs on.

use crate::helpers::*;
use diesel::prelude::*;
use std::process::Command;

/// The PostgreSQL migrations compiled into the binary.
fn postgres_migrations() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn instances_started_together_on_one_postgresql_database_migrate_once() {
    let url = crate::postgres::new_empty_database();
    let migrations: Vec<_> = (0..3)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_latchkey"))
                .arg("migrate")
                .env_clear()
                .env("DATABASE_URL", &url)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut migration in migrations {
        assert!(migration.wait().unwrap().success(), "every instance starts");
    }
    let applied: Vec<Count> =
        diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
            .load(&mut open_store(&url))
            .unwrap();
    assert_eq!(
        applied[0].n as usize,
        postgres_migrations(),
        "each ran once"
    );

    // Two instances on that database: a user registered on one signs in
    // on the other.
    let first = spawn_app_with(&[("DATABASE_URL", &url)]).await;
    let second = first.restart_with(&[]).await;
    let user = first.new_user().await;
    assert_eq!(second.login(&user.email, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_postgresql_url_that_answers_nothing_stops_the_start_with_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .env_clear()
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            "postgres://nobody:secret-password@127.0.0.1:1/latchkey",
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    let last = said.trim().lines().last().unwrap_or_default();
    assert!(last.starts_with("latchkey: DATABASE_URL: "), "{said}");
    assert!(
        !said.contains("secret-password"),
        "the password is never shown: {said}"
    );
    assert!(
        !std::path::Path::new("postgres:").exists(),
        "no SQLite file is made of the URL"
    );
}

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

/// How long until `check` holds, polling every 5 ms; fails past a second,
/// the promise of API.md for several instances.
async fn within_a_second<F, Fut>(what: &str, mut check: F) -> std::time::Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{what} took more than a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_instance_revokes_or_rotates_holds_on_another_within_a_second() {
    let url = crate::postgres::new_database();
    let first = spawn_app_with(&[("DATABASE_URL", &url)]).await;
    let second = first.restart_with(&[]).await;
    let me = |app: &TestApp, token: &str| {
        let request = app
            .client
            .get(app.url("/api/user/me"))
            .bearer_auth(token)
            .send();
        async move { request.await.unwrap().status().as_u16() }
    };

    // A logout on the first.
    let user = first.new_user().await;
    assert_eq!(me(&second, &user.access_token).await, 200);
    assert_eq!(first.logout_bearer(&user.access_token).await.status(), 204);
    let logout_seen = within_a_second("a logout on another instance", || async {
        me(&second, &user.access_token).await == 401
    })
    .await;

    // A user disabled on the first.
    let admin = first.admin().await;
    let other = first.new_user().await;
    assert_eq!(me(&second, &other.access_token).await, 200);
    let disabled = first
        .send(
            reqwest::Method::PATCH,
            &format!("/api/user/{}", other.id),
            Some(&admin.access_token),
            Some(&serde_json::json!({ "disabled": true })),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    let disable_seen = within_a_second("a disabled user on another instance", || async {
        me(&second, &other.access_token).await == 401
    })
    .await;

    // An emergency key rotation on the first: the old key's tokens fail on
    // the second, the new key's work there.
    let before = first.new_user().await;
    assert_eq!(me(&second, &before.access_token).await, 200);
    let rotated = first
        .post(
            "/api/admin/keys/rotate",
            Some(&admin.access_token),
            &serde_json::json!({ "revoke_previous": true }),
        )
        .await;
    assert_eq!(rotated.status(), 201);
    let after = first.sign_in(&before.email, PASSWORD).await;
    let rotation_seen = within_a_second("a key rotation on another instance", || async {
        me(&second, &before.access_token).await == 401
            && me(&second, &after.access_token).await == 200
    })
    .await;
    eprintln!(
        "seen on the other instance after: logout {logout_seen:?}, disable {disable_seen:?}, \
         rotation {rotation_seen:?}"
    );
}

/// Polls `check` every 50 ms until it holds; fails past `limit`.
async fn eventually<F, Fut>(what: &str, limit: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_gives_503_and_the_instances_recover_when_it_returns() {
    use std::time::Duration;
    // A server of this test's own: stopping the suite's would fail others.
    let cluster = crate::postgres::Cluster::start();
    let url = cluster.new_database(true);
    let first = spawn_app_with(&[("DATABASE_URL", &url)]).await;
    let second = first.restart_with(&[]).await;
    let user = first.new_user().await;
    let status = |app: &TestApp, path: &str| {
        let request = app.client.get(app.url(path)).send();
        async move { request.await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&first, "/readyz").await, 200);

    cluster.stop();
    for app in [&first, &second] {
        eventually("/readyz says 503", Duration::from_secs(10), || async {
            status(app, "/readyz").await == 503
        })
        .await;
        // Before a balancer's health check gives up: sooner than the 3 s
        // a request waits for a connection.
        let asked = std::time::Instant::now();
        assert_eq!(status(app, "/readyz").await, 503);
        assert!(
            asked.elapsed() < Duration::from_millis(2500),
            "/readyz took {:?} to say 503",
            asked.elapsed()
        );
        // What needs the store is refused clearly; nothing is lost or
        // half-done, nothing panics.
        let login = app.login(&user.email, PASSWORD).await;
        let problem = assert_problem(login, 503).await;
        assert!(problem["detail"].is_string(), "{problem}");
        assert_problem(app.register(&unique_email(), PASSWORD).await, 503).await;
        assert_problem(app.refresh(&user.refresh_token).await, 503).await;
    }

    cluster.resume();
    for app in [&first, &second] {
        eventually(
            "/readyz says 200 again",
            Duration::from_secs(10),
            || async { status(app, "/readyz").await == 200 },
        )
        .await;
    }
    // Both serve again: the refresh token refused during the outage was
    // not spent, and what one instance revokes holds on the other within a
    // second (the change listener came back too).
    let refreshed = first.refresh(&user.refresh_token).await;
    assert_eq!(refreshed.status(), 200, "the chain survived the outage");
    let access = json_body(refreshed).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        second.get("/api/user/me", Some(&access)).await.status(),
        200
    );
    let registered = second.register(&unique_email(), PASSWORD).await;
    assert_eq!(registered.status(), 201);
    assert_eq!(second.logout_bearer(&access).await.status(), 204);
    within_a_second(
        "a logout after the outage, on the other instance",
        || async { first.get("/api/user/me", Some(&access)).await.status() == 401 },
    )
    .await;
}

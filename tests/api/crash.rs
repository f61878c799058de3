//! Crash safety and load: what was answered with a 2xx survives SIGKILL,
//! and a soak of mixed traffic at high concurrency never gets a 5xx other
//! than a 503 with `Retry-After`, nor hangs.

use crate::helpers::*;
use diesel::prelude::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starts the binary on `db` and returns it with its address; the caller
/// kills it and waits for it.
#[allow(clippy::zombie_processes)]
fn start(database_url: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .env_clear()
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .dies_with_the_test()
        .spawn()
        .unwrap();
    let address = listening_address(&mut child);
    (child, address)
}

#[derive(Default)]
struct Handed {
    registered: Vec<String>,
    /// The newest refresh token of each chain, as last handed out.
    newest: Vec<String>,
    all_refresh: Vec<String>,
}

#[tokio::test]
async fn everything_answered_2xx_survives_sigkill() {
    let _heavy = HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path(), "crash.db");
    let (mut child, base) = start(&db);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let handed = Arc::new(Mutex::new(Handed::default()));
    let stop_at = Instant::now() + Duration::from_secs(60);
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (client, base, handed) = (client.clone(), base.clone(), handed.clone());
        workers.push(tokio::spawn(async move {
            let email = format!("crash{worker}@example.com");
            let body = json!({ "first_name": "C", "last_name": "K", "email": email, "password": PASSWORD });
            let Ok(created) = client.post(format!("{base}/api/user")).json(&body).send().await else { return };
            if created.status() != 201 {
                return;
            }
            handed.lock().unwrap().registered.push(email.clone());
            let login = client.post(format!("{base}/api/user/login")).json(&json!({ "email": email, "password": PASSWORD }));
            let Ok(login) = login.send().await else { return };
            let Ok(tokens) = login.json::<Value>().await else { return };
            let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
            let slot = {
                let mut handed = handed.lock().unwrap();
                handed.all_refresh.push(refresh.clone());
                handed.newest.push(refresh.clone());
                handed.newest.len() - 1
            };
            let mut n = 0;
            loop {
                // Some workers register more users as they go.
                if worker % 2 == 0 && n % 20 == 0 {
                    let email = format!("crash{worker}-{n}@example.com");
                    let body = json!({ "first_name": "C", "last_name": "K", "email": email, "password": PASSWORD });
                    if let Ok(r) = client.post(format!("{base}/api/user")).json(&body).send().await
                        && r.status() == 201
                    {
                        handed.lock().unwrap().registered.push(email);
                    }
                }
                n += 1;
                let sent = client.post(format!("{base}/api/user/refresh-token")).json(&json!({ "refresh_token": refresh }));
                let Ok(response) = sent.send().await else { return };
                if response.status() != 200 {
                    return;
                }
                let Ok(body) = response.json::<Value>().await else { return };
                refresh = body["refresh_token"].as_str().unwrap().to_owned();
                let mut handed = handed.lock().unwrap();
                handed.all_refresh.push(refresh.clone());
                handed.newest[slot] = refresh.clone();
            }
        }));
    }
    // Kill once traffic is well under way (however loaded the machine is).
    loop {
        let enough = {
            let handed = handed.lock().unwrap();
            handed.registered.len() >= 12 && handed.all_refresh.len() >= 200
        };
        if enough || Instant::now() > stop_at {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL, mid-stream
    child.wait().unwrap();
    for worker in workers {
        let _ = worker.await;
    }
    let handed = std::mem::take(&mut *handed.lock().unwrap());
    assert!(
        handed.registered.len() >= 8 && handed.all_refresh.len() > 50,
        "traffic flowed before the kill"
    );

    let (mut restarted, base) = start(&db);
    let mut store = open_store(&db);
    if let latchkey::db::DbConnection::Sqlite(file) = &mut store {
        #[derive(QueryableByName)]
        struct Check {
            #[diesel(sql_type = diesel::sql_types::Text)]
            integrity_check: String,
        }
        let check: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
            .load(file)
            .unwrap();
        assert_eq!(
            check
                .iter()
                .map(|c| c.integrity_check.as_str())
                .collect::<Vec<_>>(),
            ["ok"]
        );
    }
    use latchkey::db::schema::{refresh_tokens, users};
    let stored: HashSet<String> = users::table
        .select(users::email)
        .load(&mut store)
        .unwrap()
        .into_iter()
        .collect();
    for email in &handed.registered {
        assert!(
            stored.contains(email),
            "{email} got a 201 and must be there"
        );
    }
    let hashes: HashSet<String> = refresh_tokens::table
        .select(refresh_tokens::token_hash)
        .load(&mut store)
        .unwrap()
        .into_iter()
        .collect();
    for token in &handed.all_refresh {
        assert!(
            hashes.contains(&latchkey::auth::sessions::hash_refresh_token(token)),
            "a handed-out refresh token was lost"
        );
    }
    for token in &handed.newest {
        let hash = latchkey::auth::sessions::hash_refresh_token(token);
        let (session, spent): (String, Option<chrono::NaiveDateTime>) = refresh_tokens::table
            .find(&hash)
            .select((refresh_tokens::session_id, refresh_tokens::spent_at))
            .first(&mut store)
            .unwrap();
        if spent.is_none() {
            let response = client
                .post(format!("{base}/api/user/refresh-token"))
                .json(&json!({ "refresh_token": token }))
                .send();
            assert_eq!(
                response.await.unwrap().status(),
                200,
                "the newest refresh token still refreshes"
            );
        } else {
            // Spent by a refresh whose answer the kill cut off: its successor
            // was committed with it, so the chain goes on.
            let unspent: i64 = refresh_tokens::table
                .filter(refresh_tokens::session_id.eq(&session))
                .filter(refresh_tokens::spent_at.is_null())
                .count()
                .get_result(&mut store)
                .unwrap();
            assert_eq!(
                unspent, 1,
                "a spent newest token has exactly one committed successor"
            );
        }
    }
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

#[tokio::test]
async fn a_soak_of_mixed_traffic_gets_no_server_error_and_no_hang() {
    let _heavy = HEAVY.lock().await;
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(45);
    // A small pool and hasher queue, so exhaustion is part of the soak.
    let app = Arc::new(
        spawn_app_with(&[
            ("DATABASE_POOL_SIZE", "2"),
            ("HASHER_THREADS", "1"),
            ("HASHER_QUEUE", "4"),
            ("LOGIN_MAX_FAILURES", "1000000"),
            ("LOGIN_MAX_FAILURES_PER_ADDRESS", "1000000"),
        ])
        .await,
    );
    let admin = app.admin().await;
    let mut users = Vec::new();
    for _ in 0..8 {
        users.push(app.new_user().await);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let outcomes = Arc::new(Mutex::new(Vec::<(u16, bool, String)>::new()));
    let mut refresh_seeds = Vec::new();
    for user in &users {
        refresh_seeds.push(app.sign_in(&user.email, PASSWORD).await.refresh_token);
    }
    let mut workers = Vec::new();
    for worker in 0..64usize {
        let (app, client, outcomes) = (app.clone(), client.clone(), outcomes.clone());
        let user = users[worker % users.len()].clone();
        let admin_token = admin.access_token.clone();
        let mut refresh = (worker % 8 == 0).then(|| refresh_seeds[worker / 8].clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0usize;
            while Instant::now() < deadline {
                n += 1;
                let (what, request) = match (worker + n) % 8 {
                    0 => ("healthz", client.get(app.url("/healthz"))),
                    1 | 2 => ("me", client.get(app.url("/api/user/me")).bearer_auth(&user.access_token)),
                    3 => ("list", client.get(app.url("/api/user?limit=20")).bearer_auth(&admin_token)),
                    4 => ("login", client.post(app.url("/api/user/login")).json(&json!({ "email": user.email, "password": PASSWORD }))),
                    5 => ("wrong", client.post(app.url("/api/user/login")).json(&json!({ "email": user.email, "password": "nope" }))),
                    6 => ("register", client.post(app.url("/api/user")).json(&json!({
                        "first_name": "S", "last_name": "K", "email": unique_email(), "password": PASSWORD }))),
                    _ => match &refresh {
                        Some(token) => ("refresh", client.post(app.url("/api/user/refresh-token")).json(&json!({ "refresh_token": token }))),
                        None => ("readyz", client.get(app.url("/readyz"))),
                    },
                };
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let retry_after = response.headers().contains_key("retry-after");
                        if what == "refresh" && status == 200 {
                            let body: Value = response.json().await.unwrap();
                            refresh = body["refresh_token"].as_str().map(str::to_owned);
                        }
                        outcomes.lock().unwrap().push((status, retry_after, what.into()));
                    }
                    Err(err) => outcomes.lock().unwrap().push((0, false, format!("{what}: {err}"))),
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let outcomes = outcomes.lock().unwrap();
    let mut by_status = std::collections::BTreeMap::new();
    outcomes
        .iter()
        .for_each(|(status, _, _)| *by_status.entry(*status).or_insert(0) += 1);
    eprintln!(
        "soak: {} requests in {seconds} s, by status {by_status:?}",
        outcomes.len()
    );
    assert!(outcomes.len() > 1000, "traffic flowed: {}", outcomes.len());
    let hangs: Vec<_> = outcomes
        .iter()
        .filter(|(status, _, _)| *status == 0)
        .collect();
    assert!(
        hangs.is_empty(),
        "requests that hung or failed: {:?}",
        &hangs[..hangs.len().min(5)]
    );
    let errors: Vec<_> = outcomes
        .iter()
        .filter(|(status, _, _)| *status >= 500 && *status != 503)
        .collect();
    assert!(
        errors.is_empty(),
        "server errors: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert!(
        outcomes
            .iter()
            .filter(|(status, _, _)| *status == 503)
            .all(|(_, retry_after, _)| *retry_after)
    );
    let ok = outcomes
        .iter()
        .filter(|(status, _, _)| (200..300).contains(status))
        .count();
    assert!(
        ok * 2 > outcomes.len(),
        "most requests succeeded: {ok} of {}",
        outcomes.len()
    );
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_sign_in_flood_neither_stalls_other_requests_nor_eats_memory() {
    let _heavy = HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path(), "flood.db");
    let (mut child, base) = start(&db);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let body = json!({ "first_name": "F", "last_name": "L", "email": "flood@example.com", "password": PASSWORD });
    assert_eq!(
        client
            .post(format!("{base}/api/user"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let flood_until = Instant::now() + Duration::from_secs(4);
    let mut flooders = Vec::new();
    for _ in 0..32 {
        let (client, base) = (client.clone(), base.clone());
        flooders.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while Instant::now() < flood_until {
                let login = json!({ "email": "flood@example.com", "password": PASSWORD });
                let response = client
                    .post(format!("{base}/api/user/login"))
                    .json(&login)
                    .send()
                    .await
                    .unwrap();
                statuses.push(response.status().as_u16());
            }
            statuses
        }));
    }
    // Beside the flood, the health check keeps answering promptly.
    let mut slowest = Duration::ZERO;
    while Instant::now() < flood_until {
        let start = Instant::now();
        assert_eq!(
            client
                .get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        slowest = slowest.max(start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses = Vec::new();
    for flooder in flooders {
        statuses.extend(flooder.await.unwrap());
    }
    let peak_mib = peak_rss_kib(child.id()) / 1024;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "only sign-ins or 'busy': {statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 200).count() >= 20,
        "sign-ins went through"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "the health check stalled for {slowest:?}"
    );
    assert!(
        peak_mib < 160,
        "peak resident memory {peak_mib} MiB during the flood"
    );
}

#[tokio::test]
async fn sigterm_lets_in_flight_sign_ins_finish_then_exits_0() {
    let _heavy = HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path(), "term.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .env_clear()
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .env("DATABASE_URL", &db)
        .env("HASHER_THREADS", "1")
        .env("SHUTDOWN_GRACE", "20")
        .env("ADMIN_EMAIL", "term@example.com")
        .env("ADMIN_PASSWORD", PASSWORD)
        .stderr(Stdio::piped())
        .dies_with_the_test()
        .spawn()
        .unwrap();
    let base = listening_address(&mut child);
    let client = reqwest::Client::new();
    // Twelve sign-ins on one hasher thread take a while: most are still in
    // flight when SIGTERM arrives.
    let sign_ins: Vec<_> = (0..12)
        .map(|_| {
            let request = client
                .post(format!("{base}/api/user/login"))
                .json(&json!({ "email": "term@example.com", "password": PASSWORD }))
                .send();
            tokio::spawn(request)
        })
        .collect();
    // Wait until sign-ins are inside the server, queued for the hasher.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let depth = metrics
            .lines()
            .find(|l| l.starts_with("latchkey_hasher_queue_depth "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        if depth >= 3.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the sign-ins never queued");
    }
    // SAFETY: kill(2) with the pid of our own child and a valid signal.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let mut answered = 0;
    for sign_in in sign_ins {
        match sign_in.await.unwrap() {
            Ok(response) => {
                assert_eq!(response.status(), 200, "an in-flight sign-in completes");
                answered += 1;
            }
            // Sent after the listener closed: never accepted, so not in flight.
            Err(err) => assert!(err.is_connect() || err.is_request(), "{err}"),
        }
    }
    assert!(
        answered >= 4,
        "the queued sign-ins and the one hashing all completed ({answered})"
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "a clean exit");
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "nothing accepts any more"
    );
}

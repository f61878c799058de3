//! Several instances on one PostgreSQL database behind a real nginx load
//! balancer (round robin, started by the test with its own config on a
//! free port): what one instance does holds on the others within a second,
//! counters and console sessions are shared, the unique email holds across
//! instances, and an instance killed under load loses nothing it answered.
//! These tests start the PostgreSQL cluster and nginx whichever backend the
//! rest of the suite runs on.

use crate::helpers::*;
use crate::nginx::Nginx;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One latchkey process.
struct Instance {
    child: Child,
    address: String,
}

fn start_instance(database_url: &str) -> Instance {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .env("SECRET_KEY", SECRET_KEY)
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("HASHER_THREADS", "1")
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .dies_with_the_test()
        .spawn()
        .expect("latchkey starts");
    let address = listening_address(&mut child);
    Instance { child, address }
}

/// The nginx configuration docs/operations.md documents (inside `http`),
/// with its upstream addresses and listening port filled in.
pub fn nginx_config(listen: u16, upstreams: &[&str]) -> String {
    let servers: String = upstreams
        .iter()
        .map(|address| {
            format!(
                "        server {} max_fails=0;\n",
                address.trim_start_matches("http://")
            )
        })
        .collect();
    format!(
        "    upstream latchkey {{
{servers}        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{listen};
        location / {{
            proxy_pass http://latchkey;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout;
        }}
    }}"
    )
}

/// Three instances on one new database and the balancer in front.
struct Fleet {
    database_url: String,
    instances: Vec<Instance>,
    balancer: Nginx,
    client: Client,
}

impl Fleet {
    fn start() -> Self {
        let database_url = crate::postgres::new_database();
        let instances: Vec<Instance> = (0..3).map(|_| start_instance(&database_url)).collect();
        let addresses: Vec<&str> = instances.iter().map(|i| i.address.as_str()).collect();
        let balancer = crate::nginx::start(|_, port| nginx_config(port, &addresses));
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Fleet {
            database_url,
            instances,
            balancer,
            client,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.balancer.address)
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn register(&self, email: &str) {
        let body = json!({ "first_name": "Fleet", "last_name": "User", "email": email,
                           "password": PASSWORD });
        assert_eq!(self.post("/api/user", None, &body).await.status(), 201);
    }

    async fn sign_in(&self, email: &str, password: &str) -> (String, String) {
        let response = self
            .post(
                "/api/user/login",
                None,
                &json!({ "email": email, "password": password }),
            )
            .await;
        assert_eq!(response.status(), 200, "sign-in of {email}");
        let body: Value = response.json().await.unwrap();
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    /// `GET /api/user/me` on each instance directly, not through nginx.
    async fn me_everywhere(&self, token: &str) -> Vec<u16> {
        let mut statuses = Vec::new();
        for instance in &self.instances {
            let status = self
                .client
                .get(format!("{}/api/user/me", instance.address))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            statuses.push(status);
        }
        statuses
    }

    /// How long until every instance answers `token` with `status`; fails
    /// past a second.
    async fn everywhere_within_a_second(&self, what: &str, token: &str, status: u16) -> Duration {
        let started = Instant::now();
        loop {
            let statuses = self.me_everywhere(token).await;
            if statuses.iter().all(|s| *s == status) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{what}: instances answered {statuses:?} after a second"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for instance in &mut self.instances {
            let _ = instance.child.kill();
            let _ = instance.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_instance_ends_is_refused_by_every_other_within_a_second() {
    let _heavy = HEAVY.lock().await;
    let fleet = Fleet::start();
    let mut seen = Vec::new();

    // Logout.
    let email = unique_email();
    fleet.register(&email).await;
    let (access, _) = fleet.sign_in(&email, PASSWORD).await;
    assert_eq!(fleet.me_everywhere(&access).await, [200, 200, 200]);
    let logout = fleet
        .client
        .post(fleet.url("/api/user/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    seen.push((
        "logout",
        fleet
            .everywhere_within_a_second("logout", &access, 401)
            .await,
    ));

    // Password change: the other sessions of the user end.
    let (other_session, _) = fleet.sign_in(&email, PASSWORD).await;
    let (changer, _) = fleet.sign_in(&email, PASSWORD).await;
    let changed = fleet
        .client
        .put(fleet.url("/api/user/me/password"))
        .bearer_auth(&changer)
        .json(
            &json!({ "current_password": PASSWORD, "new_password": "copper-lantern-meadow-5513" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    seen.push((
        "password change",
        fleet
            .everywhere_within_a_second("password change", &other_session, 401)
            .await,
    ));

    // Refresh-token reuse after the grace window revokes the session.
    let reused_email = unique_email();
    fleet.register(&reused_email).await;
    let (reused_access, refresh) = fleet.sign_in(&reused_email, PASSWORD).await;
    let first_use = fleet
        .post(
            "/api/user/refresh-token",
            None,
            &json!({ "refresh_token": refresh }),
        )
        .await;
    assert_eq!(first_use.status(), 200);
    let fresh: Value = first_use.json().await.unwrap();
    let fresh_access = fresh["access_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(5_200)).await; // REFRESH_REUSE_GRACE is 5 s
    let again = fleet
        .post(
            "/api/user/refresh-token",
            None,
            &json!({ "refresh_token": refresh }),
        )
        .await;
    assert_eq!(again.status(), 401);
    seen.push((
        "refresh reuse",
        fleet
            .everywhere_within_a_second("refresh reuse", &fresh_access, 401)
            .await,
    ));
    let _ = reused_access;

    // An admin disables a user.
    let (admin, _) = fleet.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let victim_email = unique_email();
    fleet.register(&victim_email).await;
    let (victim, _) = fleet.sign_in(&victim_email, PASSWORD).await;
    let victim_id = fleet
        .client
        .get(fleet.url("/api/user/me"))
        .bearer_auth(&victim)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let disabled = fleet
        .client
        .patch(fleet.url(&format!("/api/user/{victim_id}")))
        .bearer_auth(&admin)
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    seen.push((
        "disable",
        fleet
            .everywhere_within_a_second("disable", &victim, 401)
            .await,
    ));
    eprintln!("refused on every instance after: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_on_one_instance_or_from_the_shell_signs_tokens_every_instance_accepts() {
    let _heavy = HEAVY.lock().await;
    let fleet = Fleet::start();
    let (admin, _) = fleet.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let rotated = fleet
        .post("/api/admin/keys/rotate", Some(&admin), &json!({}))
        .await;
    assert_eq!(rotated.status(), 201);
    let kid = rotated.json::<Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The next sign-ins, on whichever instance, are signed with the new
    // key within a second, and every instance accepts them.
    let started = Instant::now();
    loop {
        let (token, _) = fleet.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        if kid_of(&token) == kid {
            assert_eq!(fleet.me_everywhere(&token).await, [200, 200, 200]);
            let (token, _) = fleet.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
            let (token2, _) = fleet.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
            assert_eq!(kid_of(&token), kid);
            assert_eq!(kid_of(&token2), kid);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(1), "the new key");
    }
    // An emergency rotation from the shell: the old tokens stop everywhere.
    let shell = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["keys", "rotate", "--revoke-previous"])
        .env_clear()
        .env("DATABASE_URL", &fleet.database_url)
        .output()
        .unwrap();
    assert!(shell.status.success());
    fleet
        .everywhere_within_a_second("an emergency rotation from the shell", &admin, 401)
        .await;
    let (fresh, _) = fleet.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_ne!(kid_of(&fresh), kid);
    fleet
        .everywhere_within_a_second("the shell's new key", &fresh, 200)
        .await;
}

fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_state_holds_across_instances() {
    let _heavy = HEAVY.lock().await;
    let fleet = Fleet::start();

    // Five failed sign-ins spread over the instances lock the account.
    let email = unique_email();
    fleet.register(&email).await;
    for _ in 0..5 {
        let wrong = fleet
            .post(
                "/api/user/login",
                None,
                &json!({ "email": email, "password": "not-the-password-1" }),
            )
            .await;
        assert_eq!(wrong.status(), 401);
    }
    for instance in &fleet.instances {
        let locked = fleet
            .client
            .post(format!("{}/api/user/login", instance.address))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(locked.status(), 429, "locked on {}", instance.address);
    }

    // One email registered on two instances at once: one 201, one 409.
    let contested = unique_email();
    let body = json!({ "first_name": "Twice", "last_name": "Over", "email": contested,
                       "password": PASSWORD });
    let (a, b) = tokio::join!(
        fleet
            .client
            .post(format!("{}/api/user", fleet.instances[0].address))
            .json(&body)
            .send(),
        fleet
            .client
            .post(format!("{}/api/user", fleet.instances[1].address))
            .json(&body)
            .send(),
    );
    let mut statuses = [a.unwrap().status(), b.unwrap().status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);

    // A console session opened through the balancer works on every
    // instance it lands on.
    let console = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login_page = console
        .get(fleet.url("/admin/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::console::csrf_of(&login_page);
    let signed_in = console
        .post(fleet.url("/admin/login"))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()["location"], "/admin");
    for _ in 0..6 {
        let page = console.get(fleet.url("/admin/users")).send().await.unwrap();
        assert_eq!(page.status(), 200, "round robin over three instances");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_under_write_load_loses_nothing_it_answered() {
    let _heavy = HEAVY.lock().await;
    let mut fleet = Fleet::start();
    let registered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for worker in 0..4 {
        let (client, url, registered, stop) = (
            fleet.client.clone(),
            fleet.url("/api/user"),
            registered.clone(),
            stop.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 400 {
                n += 1;
                let email = format!(
                    "kill{worker}-{n}-{}@example.com",
                    uuid::Uuid::new_v4().simple()
                );
                let body = json!({ "first_name": "K", "last_name": "L", "email": email,
                                   "password": PASSWORD });
                if let Ok(response) = client.post(&url).json(&body).send().await
                    && response.status() == 201
                {
                    registered.lock().unwrap().push(email);
                }
            }
        }));
    }
    // Registrations hash a password each: count them, not seconds, so a
    // slow machine still kills the instance mid-stream.
    let acknowledged = || registered.lock().unwrap().len();
    let until = |count: usize| {
        let acknowledged = &acknowledged;
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while acknowledged() < count && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    until(8).await;
    let victim = &mut fleet.instances[1].child;
    victim.kill().unwrap(); // SIGKILL, mid-stream
    victim.wait().unwrap();
    until(acknowledged() + 12).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let registered = registered.lock().unwrap().clone();
    assert!(
        registered.len() >= 20,
        "writes flowed before and after the kill: {}",
        registered.len()
    );
    use diesel::prelude::*;
    use latchkey::db::schema::users;
    let stored: std::collections::HashSet<String> = users::table
        .select(users::email)
        .load(&mut open_store(&fleet.database_url))
        .unwrap()
        .into_iter()
        .collect();
    let lost: Vec<&String> = registered.iter().filter(|e| !stored.contains(*e)).collect();
    assert!(lost.is_empty(), "answered 201 but lost: {lost:?}");
}

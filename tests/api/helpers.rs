//! Spawning the real application on a free port with its own store (a
//! SQLite file, or with `LATCHKEY_TEST_BACKEND=postgres` a PostgreSQL
//! database of its own), and a few helpers to talk to it the way a client
//! would.

use latchkey::clock::ManualClock;
use latchkey::config::Settings;
use latchkey::startup::Application;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "violet-harbor-engine-1987";
/// A password zxcvbn rates strong, for ordinary test users.
pub const PASSWORD: &str = "amber-falcon-ridge-2041";
/// The SECRET_KEY of every test app unless a test sets another.
pub const SECRET_KEY: &str = "test-secret-key-of-at-least-32-bytes!!";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    /// The SQLite file, when the suite runs on SQLite.
    pub db_path: PathBuf,
    /// `DATABASE_URL`: the SQLite file or the PostgreSQL database.
    pub database_url: String,
    /// The settings this app was started with, for restarts.
    pub env: HashMap<String, String>,
    /// The one-time `/admin/setup?token=…` path, while no admin exists.
    pub setup_path: Option<String>,
    dir: Arc<tempfile::TempDir>,
}

/// A user signed in through the API.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// Starts the app with the default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app with `overrides` on top of the default test settings.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let db_path = dir.path().join("latchkey.db");
    let database_url = if crate::postgres::on_postgres() {
        crate::postgres::new_database()
    } else {
        db_path.to_str().unwrap().to_owned()
    };
    let mut env: HashMap<String, String> = [
        ("DATABASE_URL", database_url.as_str()),
        ("BIND_ADDRESS", "127.0.0.1:0"),
        ("SECRET_KEY", SECRET_KEY),
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("HASHER_THREADS", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    start(env, db_path, dir).await
}

async fn start(
    env: HashMap<String, String>,
    db_path: PathBuf,
    dir: Arc<tempfile::TempDir>,
) -> TestApp {
    let settings = Settings::from_lookup(|name| env.get(name).cloned()).expect("test settings");
    let clock = Arc::new(ManualClock::new());
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let setup_path = app.setup_path();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        clock,
        database_url: env["DATABASE_URL"].clone(),
        db_path,
        env,
        setup_path,
        dir,
    }
}

static EMAILS: AtomicUsize = AtomicUsize::new(0);

/// An email no other test uses.
pub fn unique_email() -> String {
    format!(
        "user{}-{}@example.com",
        EMAILS.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::new_v4().simple()
    )
}

impl TestApp {
    /// Starts a second app on the same store with these settings changed
    /// (the first keeps running unless the test drops it).
    pub async fn restart_with(&self, overrides: &[(&str, &str)]) -> TestApp {
        let mut env = self.env.clone();
        for (k, v) in overrides {
            if v.is_empty() {
                env.remove(*k);
            } else {
                env.insert((*k).to_owned(), (*v).to_owned());
            }
        }
        start(env, self.db_path.clone(), self.dir.clone()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send(Method::POST, path, token, Some(body)).await
    }

    /// `POST /api/user` as anyone.
    pub async fn register(&self, email: &str, password: &str) -> Response {
        let body = json!({ "first_name": "Test", "last_name": "User", "email": email, "password": password });
        self.post("/api/user", None, &body).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/user/login",
            None,
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/user/refresh-token",
            None,
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    /// `POST /api/user/logout` with only a bearer token, as a client
    /// holding just its access token signs out.
    pub async fn logout_bearer(&self, token: &str) -> Response {
        self.client
            .post(self.url("/api/user/logout"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// Registers a new user and signs them in.
    pub async fn new_user(&self) -> TestUser {
        let email = unique_email();
        let registered = self.register(&email, PASSWORD).await;
        assert_eq!(registered.status(), StatusCode::CREATED, "registration");
        let id = json_body(registered).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut user = self.sign_in(&email, PASSWORD).await;
        user.id = id;
        user
    }

    /// Signs an existing user in and returns their tokens.
    pub async fn sign_in(&self, email: &str, password: &str) -> TestUser {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {email}");
        let body = json_body(response).await;
        let access_token = body["access_token"].as_str().unwrap().to_owned();
        let me = json_body(self.get("/api/user/me", Some(&access_token)).await).await;
        TestUser {
            id: me["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
            access_token,
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// The admin created from ADMIN_EMAIL/ADMIN_PASSWORD, signed in.
    pub async fn admin(&self) -> TestUser {
        self.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// An admin created through the API by the first admin.
    pub async fn new_admin(&self) -> TestUser {
        let admin = self.admin().await;
        let email = unique_email();
        let body = json!({ "first_name": "Second", "last_name": "Admin", "email": email,
                           "password": PASSWORD, "role": "admin" });
        let created = self
            .post("/api/user", Some(&admin.access_token), &body)
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        self.sign_in(&email, PASSWORD).await
    }

    /// Opens the app's store directly, for checks on what is stored.
    pub fn store(&self) -> latchkey::db::DbConnection {
        open_store(&self.database_url)
    }

    pub fn on_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }
}

pub async fn json_body(response: Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

/// Asserts the response is a problem+json with `status`, returning its body.
pub async fn assert_problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body = json_body(response).await;
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

/// Asserts a 401 that tells the client its bearer token is not valid.
pub async fn assert_invalid_token(response: Response) {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
    assert_problem(response, 401).await;
}

/// Held by the tests that load the machine or measure time (the soak, the
/// flood, the crash and shutdown tests, the timing comparison), so that
/// they never run at the same time as each other.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The address a spawned `latchkey` binary (its standard error piped)
/// says it listens on. The rest of its log is drained in the background so
/// the server never blocks on it.
pub fn listening_address(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().expect("standard error is piped");
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("the server listens").unwrap();
        if let Some(address) = line.split("listening on ").nth(1) {
            std::thread::spawn(move || lines.for_each(drop));
            return address.trim().to_owned();
        }
    }
}

/// A store of its own for a server a test spawns itself: a SQLite file
/// `name` in `dir`, or on PostgreSQL a new database. Its `DATABASE_URL`.
pub fn fresh_database(dir: &std::path::Path, name: &str) -> String {
    if crate::postgres::on_postgres() {
        crate::postgres::new_database()
    } else {
        dir.join(name).to_str().unwrap().to_owned()
    }
}

/// A direct connection to the store at `database_url`.
pub fn open_store(database_url: &str) -> latchkey::db::DbConnection {
    use diesel::Connection;
    use latchkey::db::DbConnection;
    if database_url.starts_with("postgres") {
        DbConnection::Postgres(diesel::PgConnection::establish(database_url).expect("open store"))
    } else {
        DbConnection::Sqlite(diesel::SqliteConnection::establish(database_url).expect("open store"))
    }
}

pub use crate::processes::DiesWithTheTest;

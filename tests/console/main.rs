//! The admin console in a real headless Chromium, driven through
//! chromedriver (WebDriver) by fantoccini, against the real binary started
//! as a child process with its own store. The forms are filled and their
//! buttons clicked as an operator would; screenshots of the main pages are
//! written to target/screenshots/, or to docs/screenshots/ (the README's)
//! with `SCREENSHOTS=docs`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`bash .ci/run` installs
//! them). Without them these tests fail, loudly: they never skip.

#[path = "../api/processes.rs"]
mod processes;
#[path = "../api/smtp.rs"]
mod smtp;
#[path = "../api/totp_codes.rs"]
mod totp_codes;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "violet-harbor-engine-1987";
const USER_PASSWORD: &str = "amber-falcon-ridge-2041";

/// A child process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver, in a process group of its own, and with it the Chromium
/// it started: the whole group is killed when dropped. (Killing
/// chromedriver alone leaves Chromium running whenever a test ends
/// without closing its session, as a failing one does.)
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

use processes::free_port;

/// Starts latchkey on a fresh store and returns its address and the
/// set-up link it printed.
fn start_latchkey(dir: &Path) -> (Running, String, String) {
    start_latchkey_with(dir, &[])
}

/// [`start_latchkey`] with these settings added.
fn start_latchkey_with(dir: &Path, env: &[(&str, &str)]) -> (Running, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the latchkey binary starts");
    let stderr = child.stderr.take().unwrap();
    let running = Running(child);
    let mut setup = None;
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(link) = line
            .split_whitespace()
            .find(|w| w.contains("/admin/setup?token="))
        {
            setup = Some(link.to_owned());
        }
        if let Some(address) = line.split("listening on ").nth(1) {
            let setup = setup.unwrap_or_else(|| panic!("no set-up link in {lines:?}"));
            return (running, address.trim().to_owned(), setup);
        }
        lines.push(line);
    }
    panic!("latchkey stopped before listening: {lines:?}");
}

/// Starts chromedriver and a headless Chromium session.
async fn start_browser(profile: &Path) -> (Driver, Client) {
    start_browser_with(profile, &[]).await
}

/// [`start_browser`] with these Chromium flags added.
async fn start_browser_with(profile: &Path, flags: &[&str]) -> (Driver, Client) {
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("chromedriver is installed (apt-get install chromium chromium-driver; bash .ci/run does it)");
    let driver = Driver(driver);
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--window-size=1280,900",
    ]
    .into_iter()
    .chain(flags.iter().copied())
    .map(String::from)
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args }
    }))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("cannot start a Chromium session: {err}"),
        }
    }
}

/// Where screenshots go: the README's with `SCREENSHOTS=docs`, else
/// target/screenshots/.
fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        if std::env::var("SCREENSHOTS").as_deref() == Ok("docs") {
            "docs/screenshots"
        } else {
            "target/screenshots"
        },
    )
}

/// A headless browser (its profile in `profile`) on the console at `base`.
async fn browser_on(base: &str, profile: &Path) -> (Driver, Browser) {
    let (driver, client) = start_browser(profile).await;
    let browser = Browser {
        client,
        base: base.to_owned(),
        shots: screenshots_dir(),
    };
    (driver, browser)
}

/// Registers a user through the API (with `USER_PASSWORD`); their id.
async fn register(base: &str, first: &str, last: &str, email: &str) -> String {
    let created = api(
        base,
        reqwest::Method::POST,
        "/api/user",
        None,
        Some(
            json!({ "first_name": first, "last_name": last, "email": email,
                     "password": USER_PASSWORD }),
        ),
    )
    .await;
    assert_eq!(created.status(), 201, "registration of {email}");
    created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `times` sign-ins of `email` with a wrong password, each refused.
async fn wrong_passwords(base: &str, email: &str, times: usize) {
    for _ in 0..times {
        let refused = api(
            base,
            reqwest::Method::POST,
            "/api/user/login",
            None,
            Some(json!({ "email": email, "password": "not-the-password" })),
        )
        .await;
        assert_eq!(refused.status(), 401);
    }
}

/// The console as the browser sees it.
struct Browser {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Browser {
    async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Clicks and waits for the next page (the old page's root goes stale).
    async fn click(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
        self.await_new_page(old, css).await;
    }

    async fn await_new_page(&self, old: fantoccini::elements::Element, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while old.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "no new page after {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css("main"))
            .await
            .unwrap();
    }

    async fn main_text(&self) -> String {
        self.client
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Follows the one-time set-up link and creates the first admin.
    async fn set_up_admin(&self, setup_link: &str, first: &str, last: &str, email: &str) {
        self.client.goto(setup_link).await.unwrap();
        self.fill("#first_name", first).await;
        self.fill("#last_name", last).await;
        self.fill("#email", email).await;
        self.fill("#password", ADMIN_PASSWORD).await;
        self.click("form[action='/admin/setup'] button[type=submit]")
            .await;
    }

    /// The text of the first element `css` finds.
    async fn text_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// Whether the page has an element `css` finds.
    async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::create_dir_all(&self.shots).unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

async fn api(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn api_login(base: &str, email: &str, password: &str) -> Value {
    let response = api(
        base,
        reqwest::Method::POST,
        "/api/user/login",
        None,
        Some(json!({ "email": email, "password": password })),
    )
    .await;
    assert_eq!(response.status(), 200, "API sign-in of {email}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_operator_runs_the_whole_console_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, setup_link) = start_latchkey(dir.path());
    let (_driver, client) = start_browser(&dir.path().join("profile")).await;
    let shots = screenshots_dir();
    let b = Browser {
        client,
        base: base.clone(),
        shots,
    };

    // A user who signed up through the API, with two sessions.
    let user_email = "grace.hopper@example.com";
    let registered = api(&base, reqwest::Method::POST, "/api/user", None, Some(json!({
        "first_name": "Grace", "last_name": "Hopper", "email": user_email, "password": USER_PASSWORD
    })))
    .await;
    assert_eq!(registered.status(), 201);
    let phone = api_login(&base, user_email, USER_PASSWORD).await;
    let laptop = api_login(&base, user_email, USER_PASSWORD).await;

    // Set-up: the link from the log creates the first admin.
    b.client.goto(&setup_link).await.unwrap();
    assert!(b.main_text().await.contains("Create the first admin"));
    b.fill("#first_name", "Ada").await;
    b.fill("#last_name", "Lovelace").await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("form[action='/admin/setup'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/admin");
    assert!(b.main_text().await.contains("Welcome"));
    b.client.goto(&setup_link).await.unwrap();
    assert!(
        b.main_text().await.contains("not valid"),
        "the link worked once"
    );

    // Sign out, then a wrong password, then the right one.
    b.open("/admin").await;
    b.click("form.signout button").await;
    assert_eq!(b.path().await, "/admin/login");
    b.screenshot("login").await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", "not-my-password").await;
    b.click("form[action='/admin/login'] button[type=submit]")
        .await;
    let refused = b.main_text().await;
    assert!(
        refused.contains("The email or password is wrong."),
        "{refused}"
    );
    let kept = b
        .client
        .find(Locator::Css("#email"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        kept.as_deref(),
        Some("ada@example.com"),
        "the email stays in the form"
    );
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("form[action='/admin/login'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/admin");
    let dashboard = b.main_text().await;
    assert!(
        dashboard.contains("users") && dashboard.contains("active sessions"),
        "{dashboard}"
    );
    b.screenshot("dashboard").await;

    // Create a user, with a refused attempt first (the input is kept).
    b.open("/admin/users/new").await;
    b.fill("#first_name", "Katherine").await;
    b.fill("#last_name", "Johnson").await;
    b.fill("#email", "katherine@example.com").await;
    b.fill("#password", "password").await;
    b.click("form[action='/admin/users/new'] button[type=submit]")
        .await;
    assert!(b.main_text().await.contains("too easy to guess"));
    let kept = b
        .client
        .find(Locator::Css("#email"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("katherine@example.com"));
    b.fill("#password", "north-orbit-capsule-1962").await;
    b.click("form[action='/admin/users/new'] button[type=submit]")
        .await;
    assert!(
        b.main_text()
            .await
            .contains("Created katherine@example.com.")
    );

    // Find Grace by search, open her page.
    b.open("/admin/users").await;
    b.fill("#q", "HOPPER").await;
    b.click("form.filters button[type=submit]").await;
    let found = b.main_text().await;
    assert!(
        found.contains(user_email) && !found.contains("katherine@example.com"),
        "{found}"
    );
    b.open("/admin/users").await;
    b.screenshot("users").await;
    b.open("/admin/users").await;
    b.fill("#q", "grace").await;
    b.click("form.filters button[type=submit]").await;
    b.click("table a").await;
    assert!(b.path().await.starts_with("/admin/users/"));
    let user_page = b.path().await;
    let sessions = b
        .client
        .find_all(Locator::Css("form[action$='/revoke'] button"))
        .await
        .unwrap();
    assert_eq!(sessions.len(), 2, "both API sessions are listed");
    b.screenshot("user").await;

    // Edit her name.
    b.fill("#first_name", "Rear Admiral Grace").await;
    b.click(&format!("form[action='{user_page}'] button[type=submit]"))
        .await;
    assert!(b.main_text().await.contains("Saved"));
    assert_eq!(b.text_of("h1").await, "Rear Admiral Grace Hopper");

    // Revoke one session: that token stops working, the other does not.
    b.click("form[action$='/revoke'] button").await;
    assert!(b.main_text().await.contains("The session has ended."));
    let me = |token: &Value| {
        let token = token["access_token"].as_str().unwrap().to_owned();
        let base = base.clone();
        async move {
            api(
                &base,
                reqwest::Method::GET,
                "/api/user/me",
                Some(&token),
                None,
            )
            .await
            .status()
            .as_u16()
        }
    };
    let statuses = [me(&phone).await, me(&laptop).await];
    assert!(
        statuses.contains(&401) && statuses.contains(&200),
        "{statuses:?}"
    );

    // Set a new password: every session ends, the new password works.
    b.fill("#new_password", "copper-violin-meadow-88").await;
    b.click(&format!("form[action='{user_page}/password'] button"))
        .await;
    assert!(b.main_text().await.contains("New password set"));
    assert_eq!([me(&phone).await, me(&laptop).await], [401, 401]);
    let fresh = api_login(&base, user_email, "copper-violin-meadow-88").await;
    assert_eq!(me(&fresh).await, 200);

    // Disable her: her token stops working at once.
    b.client
        .find(Locator::Css("#disabled"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.click(&format!("form[action='{user_page}'] button[type=submit]"))
        .await;
    assert!(b.main_text().await.contains("Saved"));
    assert_eq!(me(&fresh).await, 401);

    // Rotate the key.
    b.open("/admin/keys").await;
    b.click("form[action='/admin/keys/rotate'] button").await;
    let keys = b.main_text().await;
    assert!(
        keys.contains("Rotated") && keys.contains("previous") && keys.contains("active"),
        "{keys}"
    );
    b.screenshot("keys").await;

    // A service client: created here, its secret read off the page and
    // used by a service, then revoked.
    b.open("/admin/clients").await;
    assert!(b.main_text().await.contains("No service clients yet"));
    b.fill("#name", "   ").await;
    b.click("form[action='/admin/clients'] button[type=submit]")
        .await;
    assert!(b.main_text().await.contains("must not be empty"));
    b.fill("#name", "billing service").await;
    b.click("form[action='/admin/clients'] button[type=submit]")
        .await;
    let shown = b.main_text().await;
    assert!(shown.contains("shown this once"), "{shown}");
    let value_of = |css: &'static str| {
        let client = b.client.clone();
        async move {
            client
                .find(Locator::Css(css))
                .await
                .unwrap()
                .prop("value")
                .await
                .unwrap()
                .unwrap()
        }
    };
    let (client_id, client_secret) = (
        value_of("#client_id").await,
        value_of("#client_secret").await,
    );
    b.screenshot("client-created").await;
    let admin_token = api_login(&base, "ada@example.com", ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let introspect = |secret: String| {
        let (url, id, token) = (
            format!("{base}/api/oauth/introspect"),
            client_id.clone(),
            admin_token.clone(),
        );
        async move {
            reqwest::Client::new()
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    let found = introspect(client_secret.clone()).await;
    assert_eq!(found.status(), 200);
    let found: Value = found.json().await.unwrap();
    assert_eq!(found["username"], "ada@example.com");
    b.click("a.button.secondary").await;
    let listed = b.main_text().await;
    assert!(
        listed.contains("billing service")
            && listed.contains("active")
            && !listed.contains(&client_secret),
        "{listed}"
    );
    b.click(&format!(
        "form[action='/admin/clients/{client_id}/revoke'] button"
    ))
    .await;
    assert!(b.main_text().await.contains("Revoked billing service"));
    b.screenshot("clients").await;
    assert_eq!(introspect(client_secret).await.status(), 401);

    // The audit log holds what was done.
    b.open("/admin/audit").await;
    let audit = b.main_text().await;
    for action in [
        "setup",
        "login",
        "user.create",
        "user.update",
        "session.revoke",
        "user.password_set",
        "key.rotate",
        "client.create",
        "client.revoke",
    ] {
        assert!(audit.contains(action), "{action} in the audit log");
    }
    b.client
        .find(Locator::Css("#action"))
        .await
        .unwrap()
        .select_by_value("key.rotate")
        .await
        .unwrap();
    b.click("form.filters button[type=submit]").await;
    let filtered = b.text_of("table.audit").await;
    assert!(
        filtered.contains("key.rotate") && !filtered.contains("user.create"),
        "{filtered}"
    );
    b.open("/admin/audit").await;
    b.screenshot("audit").await;

    // A phone-sized window still shows the whole table and navigation.
    b.client.set_window_size(390, 844).await.unwrap();
    b.open("/admin").await;
    b.screenshot("dashboard-phone").await;
    b.client.set_window_size(1280, 900).await.unwrap();

    // Delete Katherine after the confirmation step.
    b.open("/admin/users?q=katherine").await;
    b.click("table a").await;
    b.click("a.button.danger").await;
    assert!(b.main_text().await.contains("cannot be undone"));
    b.click("form[action$='/delete'] button").await;
    assert!(
        b.main_text()
            .await
            .contains("Deleted katherine@example.com.")
    );

    // Sign out: the console asks to sign in again.
    b.click("form.signout button").await;
    b.open("/admin/users").await;
    assert_eq!(b.path().await, "/admin/login");
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn keyboard_alone_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, setup_link) = start_latchkey(dir.path());
    let (_driver, client) = start_browser(&dir.path().join("profile")).await;
    let b = Browser {
        client,
        base,
        shots: dir.path().join("shots"),
    };
    b.set_up_admin(&setup_link, "Key", "Board", "keys@example.com")
        .await;
    b.click("form.signout button").await;
    // The email field has focus on the sign-in page; Tab moves on, Enter sends.
    let focused = b.client.active_element().await.unwrap();
    focused.send_keys("keys@example.com\u{E004}").await.unwrap();
    let password = b.client.active_element().await.unwrap();
    assert_eq!(
        password.attr("id").await.unwrap().as_deref(),
        Some("password")
    );
    let old = b.client.find(Locator::Css("html")).await.unwrap();
    password
        .send_keys(&format!("{ADMIN_PASSWORD}\u{E007}"))
        .await
        .unwrap();
    b.await_new_page(old, "Enter").await;
    assert_eq!(b.path().await, "/admin");
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn an_admin_enrols_in_two_factor_sign_in_and_signs_in_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, setup_link) = start_latchkey(dir.path());
    let (_driver, client) = start_browser(&dir.path().join("profile")).await;
    let shots = screenshots_dir();
    let b = Browser {
        client,
        base,
        shots,
    };
    b.set_up_admin(&setup_link, "Grace", "Two", "grace.two@example.com")
        .await;

    // Set up: the QR code and the key are on the page; the key is read off
    // it, as a phone would read the QR code.
    b.open("/admin/account").await;
    b.click("form[action='/admin/account/mfa/enrol'] button")
        .await;
    b.client
        .find(Locator::Css("figure.qr svg"))
        .await
        .expect("a QR code drawn on the page");
    b.screenshot("account-mfa").await;
    let secret = b
        .client
        .find(Locator::Css("#secret"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    let secret = totp_codes::base32_decode(&secret);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    b.fill("#code", &totp_codes::code_at(&secret, now())).await;
    b.click("form[action='/admin/account/mfa/confirm'] button")
        .await;
    let codes = b
        .client
        .find_all(Locator::Css("#recovery_codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    b.screenshot("recovery-codes").await;

    // Signed out, then in: the password, then a code. The step of the
    // confirming code is spent, so the next step's code (within the one
    // step of skew) is the one that works now.
    b.click("form.signout button").await;
    b.fill("#email", "grace.two@example.com").await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("form[action='/admin/login'] button[type=submit]")
        .await;
    assert!(b.main_text().await.contains("Two-factor sign-in"));
    b.fill("#code", "000000").await;
    b.click("form[action='/admin/login/mfa'] button").await;
    assert!(b.main_text().await.contains("not right"));
    b.fill("#code", &totp_codes::code_at(&secret, now() + 30))
        .await;
    b.click("form[action='/admin/login/mfa'] button").await;
    assert_eq!(b.path().await, "/admin");
    b.open("/admin/account").await;
    assert!(b.main_text().await.contains("10 of 10 recovery codes left"));
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn a_user_resets_a_forgotten_password_through_the_mailed_link() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = smtp::SmtpServer::start();
    let port = free_port().to_string();
    let public = format!("http://127.0.0.1:{port}");
    let (_server, base, setup_link) = start_latchkey_with(
        dir.path(),
        &[
            ("BIND_ADDRESS", &format!("127.0.0.1:{port}")),
            ("SMTP_URL", &smtp.url()),
            ("MAIL_FROM", "latchkey <no-reply@example.com>"),
            ("PUBLIC_URL", &public),
        ],
    );
    assert_eq!(base, public);
    let (_driver, b) = browser_on(&base, &dir.path().join("profile")).await;
    b.set_up_admin(&setup_link, "Grace", "Hopper", "grace@example.com")
        .await;

    // A user who forgot their password; the admin sends them a link.
    let id = register(&base, "Ada", "Lovelace", "ada@example.com").await;
    b.open(&format!("/admin/users/{id}")).await;
    b.click(&format!(
        "form[action='/admin/users/{id}/password/reset-link'] button"
    ))
    .await;
    let text = b.main_text().await;
    assert!(
        text.contains("A password reset link is on its way to ada@example.com"),
        "{text}"
    );

    // The mail arrives; its link opens the page in the browser.
    let mail = smtp
        .wait_for("ada@example.com", Duration::from_secs(15))
        .await;
    assert_eq!(mail.subject(), "Reset your password");
    let link = mail
        .link(&format!("{public}/reset-password?token="))
        .expect("a link to the reset page");
    b.client.goto(&link).await.unwrap();
    assert!(b.main_text().await.contains("Choose a new password"));
    b.fill("#new_password", "password1").await;
    b.click("form[action='/reset-password'] button[type=submit]")
        .await;
    let refused = b
        .client
        .find(Locator::Css("#new_password-error"))
        .await
        .expect("the reason beside the field")
        .text()
        .await
        .unwrap();
    assert!(
        refused.starts_with("New password is too easy to guess"),
        "{refused}"
    );
    b.fill("#new_password", "harbor-quilt-seven-maple").await;
    b.screenshot("reset-password").await;
    b.click("form[action='/reset-password'] button[type=submit]")
        .await;
    assert!(
        b.main_text().await.contains("Your password is changed."),
        "{}",
        b.main_text().await
    );
    api_login(&base, "ada@example.com", "harbor-quilt-seven-maple").await;
    let old = api(
        &base,
        reqwest::Method::POST,
        "/api/user/login",
        None,
        Some(json!({ "email": "ada@example.com", "password": USER_PASSWORD })),
    )
    .await;
    assert_eq!(old.status(), 401, "the old password is gone");

    // The link works once.
    b.client.goto(&link).await.unwrap();
    assert!(b.main_text().await.contains("This link does not work"));
}

/// Runs `script` in the page and returns what it returns.
async fn js(b: &Browser, script: &str) -> Value {
    b.client.execute(script, vec![]).await.unwrap()
}

/// The page's width beyond the window (0: no sideways scrolling), and the
/// first element that sticks out, outside the tables (which scroll in
/// their own box).
const OVERFLOW: &str = r#"
const w = document.documentElement.clientWidth;
let culprit = null;
for (const el of document.querySelectorAll('body *')) {
  if (el.closest('.table-wrap')) continue;
  const r = el.getBoundingClientRect();
  if (r.right > w + 1) { culprit = el.outerHTML.slice(0, 120); break; }
}
return [document.documentElement.scrollWidth - w, culprit];
"#;

/// Whether every filter label sits above its control.
const LABELS_ABOVE: &str = r#"
return [...document.querySelectorAll('form.filters .field')].every(f => {
  const l = f.querySelector('label'), c = f.querySelector('input, select');
  return !l || !c || l.getBoundingClientRect().bottom <= c.getBoundingClientRect().top + 1;
});
"#;

#[tokio::test]
async fn the_console_fits_a_phone_and_a_desktop_in_light_and_dark() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, setup_link) = start_latchkey(dir.path());
    // A user who is locked out (five wrong passwords) and one disabled.
    let mut ids = Vec::new();
    for (email, name) in [
        ("locked@example.com", "Locked"),
        ("gone@example.com", "Gone"),
    ] {
        ids.push(register(&base, name, "Example-With-A-Rather-Long-Surname", email).await);
    }
    wrong_passwords(&base, "locked@example.com", 5).await;
    let (locked, gone) = (ids[0].clone(), ids[1].clone());
    let mut signed_up = false;
    for scheme in ["light", "dark"] {
        let flags: &[&str] = if scheme == "dark" {
            &["--force-dark-mode"]
        } else {
            &[]
        };
        let (_driver, client) =
            start_browser_with(&dir.path().join(format!("profile-{scheme}")), flags).await;
        let b = Browser {
            client,
            base: base.clone(),
            shots: screenshots_dir(),
        };
        if signed_up {
            b.open("/admin/login").await;
            b.fill("#email", "ada@example.com").await;
            b.fill("#password", ADMIN_PASSWORD).await;
            b.click("form[action='/admin/login'] button[type=submit]")
                .await;
        } else {
            b.set_up_admin(&setup_link, "Ada", "Lovelace", "ada@example.com")
                .await;
            signed_up = true;
            // Disable the second user from the console.
            b.open(&format!("/admin/users/{gone}")).await;
            b.client
                .find(Locator::Css("#disabled"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            b.click(&format!(
                "form[action='/admin/users/{gone}'] button[type=submit]"
            ))
            .await;
        }
        b.open("/admin").await;
        assert_eq!(b.path().await, "/admin", "signed in");
        let dark = js(
            &b,
            "return matchMedia('(prefers-color-scheme: dark)').matches;",
        )
        .await;
        assert_eq!(
            dark,
            json!(scheme == "dark"),
            "the browser prefers {scheme}"
        );

        for (width, height) in [(390, 844), (1280, 900)] {
            b.client.set_window_size(width, height).await.unwrap();
            for path in [
                "/admin".to_owned(),
                "/admin/users".to_owned(),
                format!("/admin/users/{locked}"),
                format!("/admin/users/{gone}"),
                "/admin/users/new".to_owned(),
                "/admin/keys".to_owned(),
                "/admin/clients".to_owned(),
                "/admin/audit".to_owned(),
                "/admin/account".to_owned(),
            ] {
                b.open(&path).await;
                let overflow = js(&b, OVERFLOW).await;
                assert_eq!(
                    overflow[0],
                    json!(0),
                    "{path} at {width} px ({scheme}) scrolls sideways: {overflow}"
                );
                assert_eq!(
                    js(&b, LABELS_ABOVE).await,
                    json!(true),
                    "{path}: labels above"
                );
            }

            // The rough edges a new user found, each checked at this size.
            b.open("/admin").await;
            let label = js(&b, "return [...document.querySelectorAll('.stat .label')].map(l => l.textContent).join('|');").await;
            assert!(
                label.as_str().unwrap().contains("last\u{a0}24\u{a0}h"),
                "{label}"
            );
            // The "h" of "24 h" stays on the line of its "24".
            let lone_h = js(&b, r#"
                return [...document.querySelectorAll('.stat .label')].some(l => {
                  const text = l.firstChild, s = text.textContent, at = s.lastIndexOf('24');
                  if (at < 0) return false;
                  const top = i => { const r = document.createRange(); r.setStart(text, i); r.setEnd(text, i + 1); return Math.round(r.getBoundingClientRect().top); };
                  return top(at) !== top(s.length - 1);
                });"#).await;
            assert_eq!(lone_h, json!(false), "no lone 'h' on a line of its own");

            b.open(&format!("/admin/users/{locked}")).await;
            let text = b.main_text().await;
            assert!(text.contains("more."), "{text}");
            assert!(!text.contains("seconds"), "the lock time in words: {text}");
            assert!(
                b.has(&format!("form[action='/admin/users/{locked}/unlock']"))
                    .await
            );

            b.open(&format!("/admin/users/{gone}")).await;
            let heading = b.text_of("h1").await;
            assert!(
                heading.contains("Disabled"),
                "a badge by the name: {heading}"
            );
            assert!(
                !b.has(&format!("form[action='/admin/users/{gone}/unlock']"))
                    .await,
                "no Unlock button where the page says Not locked"
            );
            let delete = js(&b, "const a = document.querySelector('a.button.danger'); return a.parentElement.textContent.trim();").await;
            assert_eq!(
                delete,
                json!("Delete user…"),
                "the Delete button on a line of its own"
            );

            b.open("/admin/users/new").await;
            assert!(b.main_text().await.contains("8 to 128 characters"));
            b.fill("#first_name", "Weak").await;
            b.fill("#last_name", "Password").await;
            b.fill("#email", "weak@example.com").await;
            b.fill("#password", "password").await;
            b.click("form[action='/admin/users/new'] button[type=submit]")
                .await;
            let error = b.text_of("#password-error").await;
            assert!(
                error.starts_with("Password is too easy to guess: this is"),
                "a sentence: {error}"
            );

            if width == 390 && scheme == "light" {
                b.open(&format!("/admin/users/{locked}")).await;
                b.screenshot("user-phone").await;
            }
            if width == 1280 && scheme == "dark" {
                b.open("/admin/audit?action=login").await;
                b.screenshot("audit-dark").await;
            }
        }
    }
}

#[tokio::test]
async fn an_admin_investigates_an_account_in_the_audit_log_and_exports_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, setup_link) = start_latchkey(dir.path());
    let (_driver, b) = browser_on(&base, &dir.path().join("profile")).await;
    b.set_up_admin(&setup_link, "Ada", "Lovelace", "ada@example.com")
        .await;
    // Someone tries Grace's password three times, then she signs in.
    register(&base, "Grace", "Hopper", "grace.hopper@example.com").await;
    wrong_passwords(&base, "grace.hopper@example.com", 3).await;
    api_login(&base, "grace.hopper@example.com", USER_PASSWORD).await;

    // At 3 a.m.: part of her address, failed sign-ins only.
    b.open("/admin/audit").await;
    b.fill("#target", "grace.hop").await;
    b.client
        .find(Locator::Css("#action"))
        .await
        .unwrap()
        .select_by_value("login")
        .await
        .unwrap();
    b.client
        .find(Locator::Css("#outcome"))
        .await
        .unwrap()
        .select_by_value("failed")
        .await
        .unwrap();
    b.click("form.filters button[type=submit]").await;
    let rows = js(
        &b,
        "return [...document.querySelectorAll('table.audit tbody tr')].map(r => [...r.cells].map(c => c.innerText.trim()));",
    )
    .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in rows {
        assert!(row[0].as_str().unwrap().contains(" UTC"), "{row:?}");
        assert_eq!(row[1], "anonymous", "{row:?}");
        assert!(
            row[3]
                .as_str()
                .unwrap()
                .starts_with("grace.hopper@example.com"),
            "{row:?}"
        );
        assert_eq!(row[4], "127.0.0.1");
        assert_eq!(row[5], "failed");
    }

    // The export link carries the filters; fetched with the browser's own
    // session, it holds the same three entries.
    let href = b
        .client
        .find(Locator::Css("p.export a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(
        href.contains("format=csv") && href.contains("target=grace.hop"),
        "{href}"
    );
    let cookies = b.client.get_all_cookies().await.unwrap();
    let cookie = cookies
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let csv = reqwest::Client::new()
        .get(format!("{base}{href}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three entries: {csv}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(",anonymous,,login,") && l.contains("grace.hopper@example.com"))
    );
}

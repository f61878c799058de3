//! The log of a whole scenario holds sign-ins, failures, throttling and
//! reuse detection, and never a password, a token or a cookie value
//! (SECURITY.md 20).

use crate::helpers::{DiesWithTheTest, PASSWORD};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn logs_never_contain_a_password_a_token_or_a_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let admin_password = "log-scan-admin-passphrase-5521";
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .current_dir(dir.path())
        .env_clear()
        .env("BIND_ADDRESS", "127.0.0.1:0")
        .env("RUST_LOG", "debug")
        .env("ADMIN_EMAIL", "logscan@example.com")
        .env("ADMIN_PASSWORD", admin_password)
        .env("REFRESH_REUSE_GRACE", "0")
        .stderr(Stdio::piped())
        .dies_with_the_test()
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let log = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.split("listening on ").nth(1) {
                    let _ = tx.send(address.trim().to_owned());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    let base = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the server listens");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &str, body: Value, token: Option<String>| {
        let mut request = client.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let mut secrets = vec![admin_password.to_owned(), PASSWORD.to_owned()];
    let user = json!({ "first_name": "Log", "last_name": "Scan", "email": "scan@example.com", "password": PASSWORD });
    assert_eq!(post("/api/user", user, None).await.unwrap().status(), 201);
    let wrong = "wrong-password-that-must-not-be-logged";
    secrets.push(wrong.into());
    for _ in 0..6 {
        post(
            "/api/user/login",
            json!({ "email": "scan@example.com", "password": wrong }),
            None,
        )
        .await
        .unwrap();
    }
    let login: Value = post(
        "/api/user/login",
        json!({ "email": "logscan@example.com", "password": admin_password }),
        None,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let (access, refresh) = (
        login["access_token"].as_str().unwrap(),
        login["refresh_token"].as_str().unwrap(),
    );
    secrets.extend([access.to_owned(), refresh.to_owned()]);
    let rotated: Value = post(
        "/api/user/refresh-token",
        json!({ "refresh_token": refresh }),
        None,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    secrets.push(rotated["refresh_token"].as_str().unwrap().to_owned());
    secrets.push(rotated["access_token"].as_str().unwrap().to_owned());
    // Reuse of the spent token: detected and logged, the token itself not.
    post(
        "/api/user/refresh-token",
        json!({ "refresh_token": refresh }),
        None,
    )
    .await
    .unwrap();
    client
        .get(format!("{base}/api/user/me?access_token={access}"))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/api/user/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/api/user/me"))
        .bearer_auth("garbage.token.value-that-is-secret")
        .send()
        .await
        .unwrap();
    secrets.push("garbage.token.value-that-is-secret".into());
    // The console: its cookie value must not be logged either.
    let page = client
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    secrets.push(cookie);
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    secrets.push(csrf.clone());
    let form = [
        ("email", "logscan@example.com"),
        ("password", admin_password),
        ("csrf_token", &csrf),
    ];
    let signed_in = client
        .post(format!("{base}/admin/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let session = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    secrets.push(session);
    client.get(format!("{base}/admin")).send().await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log holds a secret: {secret}\n{log}"
        );
    }
    for event in [
        "sign-in failed",
        "sign-in ok",
        "sign-in throttled",
        "refresh token reuse detected",
    ] {
        assert!(log.contains(event), "the log records {event:?}");
    }
}

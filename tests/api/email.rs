//! Email: the forgotten password, address verification, the notice of an
//! email change, and the outbox, against a real SMTP server (aiosmtpd,
//! started by each test) that writes what it receives to a Maildir, read
//! back here as a user's mail client would.

use crate::console::Console;
use crate::helpers::*;
use crate::smtp::{Mail, SmtpServer};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

const PUBLIC_URL: &str = "https://auth.example.test";
/// Long enough for a mail through the outbox worker (it looks every
/// second, and at once when the app queues one).
const DELIVERY: Duration = Duration::from_secs(15);
const NEW_PASSWORD: &str = "copper-lantern-meadow-5512";

async fn mail_app(smtp: &SmtpServer, verification: &str) -> TestApp {
    spawn_app_with(&[
        ("SMTP_URL", &smtp.url()),
        ("MAIL_FROM", "latchkey <no-reply@example.com>"),
        ("PUBLIC_URL", PUBLIC_URL),
        ("EMAIL_VERIFICATION", verification),
    ])
    .await
}

/// The token in a mail's link to `page` (`reset-password`, `verify-email`).
fn token_in(mail: &Mail, page: &str) -> String {
    let prefix = format!("{PUBLIC_URL}/{page}?token=");
    let link = mail
        .link(&prefix)
        .unwrap_or_else(|| panic!("a link to {prefix}… in {:?}", mail.text));
    let token = link[prefix.len()..].to_owned();
    assert!(
        mail.text.contains(&format!("\n{token}")),
        "the token is also in the text, on its own line"
    );
    assert!(
        !mail.subject().contains(&token),
        "no token in the subject line"
    );
    assert!(
        mail.html
            .as_deref()
            .is_some_and(|html| html.contains(&link)),
        "the HTML part links to it too"
    );
    token
}

async fn forgot(app: &TestApp, email: &str) -> reqwest::Response {
    app.post(
        "/api/user/password/forgot",
        None,
        &json!({ "email": email }),
    )
    .await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post(
        "/api/user/password/reset",
        None,
        &json!({ "token": token, "new_password": password }),
    )
    .await
}

async fn verify(app: &TestApp, token: &str) -> reqwest::Response {
    app.post("/api/user/email/verify", None, &json!({ "token": token }))
        .await
}

/// Registers a user without signing in; their id.
async fn register(app: &TestApp, email: &str) -> String {
    let response = app.register(email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = json_body(response).await;
    assert_eq!(body["email_verified"], false);
    body["id"].as_str().unwrap().to_owned()
}

/// A gauge or counter line of `/metrics`.
async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let text = app.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(line_start))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line_start} in /metrics"))
}

/// Waits until the outbox holds nothing unsent.
async fn outbox_drained(app: &TestApp) {
    let deadline = Instant::now() + DELIVERY;
    while metric(app, "latchkey_mail_outbox ").await > 0.0 {
        assert!(Instant::now() < deadline, "the outbox drains");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn without_smtp_the_email_operations_say_email_is_not_configured() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let me = json_body(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert_eq!(me["email_verified"], false, "the user shape has the field");
    for (path, token, body) in [
        (
            "/api/user/password/forgot",
            None,
            json!({ "email": user.email }),
        ),
        (
            "/api/user/password/reset",
            None,
            json!({ "token": "x", "new_password": NEW_PASSWORD }),
        ),
        ("/api/user/email/verify", None, json!({ "token": "x" })),
        (
            "/api/user/me/email/verify",
            Some(user.access_token.as_str()),
            json!({}),
        ),
    ] {
        let problem = assert_problem(app.post(path, token, &body).await, 503).await;
        assert_eq!(
            problem["type"], "urn:latchkey:problem:email-not-configured",
            "{path}"
        );
        assert!(problem["detail"].as_str().unwrap().contains("SMTP_URL"));
    }
    let page = app
        .client
        .get(app.url("/reset-password?token=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Email is not set up on this server.")
    );
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let smtp = SmtpServer::start();
    let app = mail_app(&smtp, "off").await;
    let user = app.new_user().await;

    let answer = forgot(&app, &user.email.to_uppercase()).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    assert_eq!(
        answer.text().await.unwrap(),
        "",
        "nothing said about the address"
    );
    let mail = smtp.wait_for(&user.email, DELIVERY).await;
    assert_eq!(mail.subject(), "Reset your password");
    assert!(
        mail.header("From")
            .unwrap()
            .contains("no-reply@example.com")
    );
    assert!(mail.text.contains("within 30 minutes"), "{}", mail.text);
    let token = token_in(&mail, "reset-password");

    // The link's page asks for the new password; nothing is spent yet.
    let page = app
        .client
        .get(app.url(&format!("/reset-password?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"new_password\"") && html.contains(&token));
    assert!(!html.contains("<script"), "no script on the page");

    let weak = assert_problem(reset(&app, &token, "password").await, 422).await;
    assert!(weak["errors"]["new_password"].is_array());
    assert_eq!(
        reset(&app, &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT,
        "a refused password did not spend the token"
    );
    assert_eq!(
        app.refresh(&user.refresh_token).await.status(),
        401,
        "every session of the user ended"
    );
    assert_invalid_token(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert_eq!(app.login(&user.email, PASSWORD).await.status(), 401);
    let signed_in = app.sign_in(&user.email, NEW_PASSWORD).await;
    let me = json_body(app.get("/api/user/me", Some(&signed_in.access_token)).await).await;
    assert_eq!(
        me["email_verified"], true,
        "the link reached the address: it is verified"
    );
    let reused = assert_problem(reset(&app, &token, "another-fine-phrase-2031").await, 400).await;
    assert!(reused["detail"].as_str().unwrap().contains("not valid"));
    assert_eq!(
        smtp.messages_to(&user.email).len(),
        1,
        "one mail, and nothing sent about the reset itself"
    );
}

#[tokio::test]
async fn the_reset_page_sets_a_password_without_script() {
    let smtp = SmtpServer::start();
    let app = mail_app(&smtp, "off").await;
    let user = app.new_user().await;
    assert_eq!(forgot(&app, &user.email).await.status(), 202);
    let token = token_in(
        &smtp.wait_for(&user.email, DELIVERY).await,
        "reset-password",
    );
    let post = |password: &'static str, token: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/reset-password"))
                .form(&[("token", token.as_str()), ("new_password", password)])
                .send()
                .await
                .unwrap()
        }
    };
    let weak = post("12345678", token.clone()).await;
    assert_eq!(weak.status(), 422);
    let html = weak.text().await.unwrap();
    assert!(
        html.contains("field-error") && html.contains(&token),
        "{html}"
    );
    let done = post(NEW_PASSWORD, token.clone()).await;
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("Your password is changed.")
    );
    app.sign_in(&user.email, NEW_PASSWORD).await;
    let again = post(NEW_PASSWORD, token.clone()).await;
    assert_eq!(again.status(), 400);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("This link does not work")
    );
    let garbled = app
        .client
        .get(app.url("/reset-password?token=%E2%80%AEnope"))
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status(), 400);
}

#[tokio::test]
async fn reset_tokens_that_are_expired_replaced_garbled_or_whose_user_changed_are_refused() {
    let smtp = SmtpServer::start();
    let app = mail_app(&smtp, "off").await;

    // Expired: 30 minutes.
    let user = app.new_user().await;
    forgot(&app, &user.email).await;
    let token = token_in(
        &smtp.wait_for(&user.email, DELIVERY).await,
        "reset-password",
    );
    app.clock.advance(30 * 60 + 1);
    assert_problem(reset(&app, &token, NEW_PASSWORD).await, 400).await;

    // Replaced: a newer link voids the older (after the 2-minute pause).
    forgot(&app, &user.email).await;
    let first = smtp.wait_for_count(&user.email, 2, DELIVERY).await;
    let first = token_in(&first[1], "reset-password");
    app.clock.advance(121);
    forgot(&app, &user.email).await;
    let second = smtp.wait_for_count(&user.email, 3, DELIVERY).await;
    let second = token_in(&second[2], "reset-password");
    assert_problem(reset(&app, &first, NEW_PASSWORD).await, 400).await;

    // Disabled meanwhile: the link is void (and stays so when the account
    // is enabled again).
    let admin = app.admin().await;
    let disabled = app
        .send(
            reqwest::Method::PATCH,
            &format!("/api/user/{}", user.id),
            Some(&admin.access_token),
            Some(&json!({ "disabled": true })),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    assert_problem(reset(&app, &second, NEW_PASSWORD).await, 400).await;
    let enabled = app
        .send(
            reqwest::Method::PATCH,
            &format!("/api/user/{}", user.id),
            Some(&admin.access_token),
            Some(&json!({ "disabled": false })),
        )
        .await;
    assert_eq!(enabled.status(), 200);
    assert_problem(reset(&app, &second, NEW_PASSWORD).await, 400).await;
    app.clock.advance(121);
    let disable = |disabled: bool| {
        let (app, admin, id) = (&app, &admin, user.id.clone());
        async move {
            app.send(
                reqwest::Method::PATCH,
                &format!("/api/user/{id}"),
                Some(&admin.access_token),
                Some(&json!({ "disabled": disabled })),
            )
            .await
            .status()
        }
    };
    assert_eq!(disable(true).await, 200);
    assert_eq!(
        forgot(&app, &user.email).await.status(),
        202,
        "a disabled user's address answers alike"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    outbox_drained(&app).await;
    assert_eq!(smtp.messages_to(&user.email).len(), 3, "and gets no mail");
    assert_eq!(disable(false).await, 200);

    // The address changed after the link went out.
    let moved = app.new_user().await;
    forgot(&app, &moved.email).await;
    let token = token_in(
        &smtp.wait_for(&moved.email, DELIVERY).await,
        "reset-password",
    );
    let moved_to = unique_email();
    let changed = app
        .send(
            reqwest::Method::PATCH,
            "/api/user/me",
            Some(&moved.access_token),
            Some(&json!({ "email": moved_to })),
        )
        .await;
    assert_eq!(changed.status(), 200);
    assert_problem(reset(&app, &token, NEW_PASSWORD).await, 400).await;

    // Deleted.
    let gone = app.new_user().await;
    forgot(&app, &gone.email).await;
    let token = token_in(
        &smtp.wait_for(&gone.email, DELIVERY).await,
        "reset-password",
    );
    let deleted = app
        .send(
            reqwest::Method::DELETE,
            "/api/user/me",
            Some(&gone.access_token),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    assert_problem(reset(&app, &token, NEW_PASSWORD).await, 400).await;

    // Garbled, empty, huge, or another kind of token.
    for bad in ["", "garbled", &"A".repeat(10_000), &user.refresh_token] {
        assert_problem(reset(&app, bad, NEW_PASSWORD).await, 400).await;
    }
    assert_problem(
        app.post("/api/user/password/reset", None, &json!({ "token": 5 }))
            .await,
        400,
    )
    .await;
    // Through all of it, no password changed.
    assert_eq!(app.login(&moved_to, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn forgot_answers_alike_for_unknown_addresses_and_bounds_the_mail() {
    let smtp = SmtpServer::start();
    let app = mail_app(&smtp, "off").await;
    let user = app.new_user().await;
    let unknown = unique_email();
    for _ in 0..20 {
        for email in [&user.email, &unknown] {
            let answer = forgot(&app, email).await;
            assert_eq!(answer.status(), 202);
            assert_eq!(answer.text().await.unwrap(), "");
        }
    }
    smtp.wait_for(&user.email, DELIVERY).await;
    outbox_drained(&app).await;
    assert_eq!(
        smtp.messages_to(&user.email).len(),
        1,
        "one mail per address per 2 minutes"
    );
    assert!(smtp.messages_to(&unknown).is_empty());
    // The flood counted against the client's address: past ten requests in
    // the sign-in window it sends nothing, still answering 202, even for an
    // address that has had no mail yet.
    let fresh = app.new_user().await;
    assert_eq!(forgot(&app, &fresh.email).await.status(), 202);
    tokio::time::sleep(Duration::from_secs(2)).await;
    outbox_drained(&app).await;
    assert!(smtp.messages_to(&fresh.email).is_empty());
    assert_eq!(smtp.messages().len(), 1);

    // A malformed address is a field error: no address is revealed by it.
    for bad in ["not-an-address", "a@b.example\r\nBcc: evil@example.com"] {
        let problem = assert_problem(forgot(&app, bad).await, 422).await;
        assert!(problem["errors"]["email"].is_array());
    }
}

#[tokio::test]
async fn forgot_takes_the_same_time_for_known_and_unknown_addresses() {
    let _heavy = HEAVY.lock().await;
    let smtp = SmtpServer::start();
    // Every request from a client address of its own (through a trusted
    // proxy), so that the per-client bound never stops the mail: each first
    // request for a known address does all its work.
    let app = spawn_app_with(&[
        ("SMTP_URL", &smtp.url()),
        ("MAIL_FROM", "latchkey <no-reply@example.com>"),
        ("PUBLIC_URL", PUBLIC_URL),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let mut known = Vec::new();
    for _ in 0..9 {
        known.push(app.new_user().await.email);
    }
    let clients = std::sync::atomic::AtomicUsize::new(1);
    let time = |email: String| {
        let (app, client) = (
            &app,
            clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        async move {
            let started = Instant::now();
            let answer = app
                .client
                .post(app.url("/api/user/password/forgot"))
                .header(
                    "x-forwarded-for",
                    format!("10.0.{}.{}", client / 250, client % 250),
                )
                .json(&json!({ "email": email }))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 202);
            started.elapsed()
        }
    };
    // Warm up, then alternate, the first request for each known address
    // being the one that queues its mail.
    time(unique_email()).await;
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for email in &known {
        known_times.push(time(email.clone()).await);
        unknown_times.push(time(unique_email()).await);
    }
    smtp.wait_for_count("@", known.len(), DELIVERY).await;
    known_times.sort();
    unknown_times.sort();
    let (k, u) = (known_times[4], unknown_times[4]);
    let apart = k.abs_diff(u);
    assert!(
        apart < Duration::from_millis(5),
        "median for a known address {k:?}, for an unknown one {u:?}"
    );
}

#[tokio::test]
async fn required_verification_holds_sign_in_until_the_link_is_followed() {
    let smtp = SmtpServer::start();
    let app = mail_app(&smtp, "required").await;
    let email = unique_email();
    register(&app, &email).await;
    let mail = smtp.wait_for(&email, DELIVERY).await;
    assert_eq!(mail.subject(), "Confirm your email address");
    let token = token_in(&mail, "verify-email");

    let refused = assert_problem(app.login(&email, PASSWORD).await, 403).await;
    assert_eq!(refused["type"], "urn:latchkey:problem:email-unverified");
    assert_eq!(
        app.login(&email, "wrong-password-here").await.status(),
        401,
        "a wrong password is still just wrong"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        smtp.messages_to(&email).len(),
        1,
        "no second link within 2 minutes"
    );
    // Past two minutes, a sign-in with the right password sends a new one
    // and voids the first.
    app.clock.advance(121);
    assert_problem(app.login(&email, PASSWORD).await, 403).await;
    let mails = smtp.wait_for_count(&email, 2, DELIVERY).await;
    let newer = token_in(&mails[1], "verify-email");
    assert_problem(verify(&app, &token).await, 400).await;

    // The page shows a button, and pressing it verifies.
    let page = app
        .client
        .get(app.url(&format!("/verify-email?token={newer}")))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("Confirm my email address"), "{html}");
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        403,
        "opening the page (as a link scanner would) verifies nothing"
    );
    let confirmed = app
        .client
        .post(app.url("/verify-email"))
        .form(&[("token", newer.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    assert!(
        confirmed
            .text()
            .await
            .unwrap()
            .contains("your email address is confirmed")
    );
    let user = app.sign_in(&email, PASSWORD).await;
    let me = json_body(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert_eq!(me["email_verified"], true);
    assert_problem(verify(&app, &newer).await, 400).await;
    let again = app
        .post(
            "/api/user/me/email/verify",
            Some(&user.access_token),
            &json!({}),
        )
        .await;
    assert_eq!(
        assert_problem(again, 409).await["detail"],
        "the email address is verified already"
    );

    // The first admin (created from the environment) is vouched for.
    app.admin().await;
}

#[tokio::test]
async fn an_email_change_tells_the_old_address_and_asks_the_new_one_to_verify() {
    let smtp = SmtpServer::start();
    let app = mail_app(&smtp, "optional").await;
    let old = unique_email();
    register(&app, &old).await;
    let token = token_in(&smtp.wait_for(&old, DELIVERY).await, "verify-email");
    let user = app.sign_in(&old, PASSWORD).await;
    assert_eq!(verify(&app, &token).await.status(), 204);

    let new = unique_email();
    let changed = app
        .send(
            reqwest::Method::PATCH,
            "/api/user/me",
            Some(&user.access_token),
            Some(&json!({ "email": new })),
        )
        .await;
    let body = json_body(changed).await;
    assert_eq!(body["email"], new.as_str());
    assert_eq!(
        body["email_verified"], false,
        "the new address is not verified yet"
    );
    let mails = smtp.wait_for_count(&old, 2, DELIVERY).await;
    let notice = &mails[1];
    assert_eq!(notice.subject(), "Your email address was changed");
    assert!(notice.text.contains(&old) && notice.text.contains(&new));
    assert!(
        notice.link("https://").is_none_or(|l| !l.contains("token")),
        "no token in a notice"
    );
    let link = smtp.wait_for(&new, DELIVERY).await;
    let token = token_in(&link, "verify-email");

    // Resending within 2 minutes: 429 with Retry-After.
    let soon = app
        .post(
            "/api/user/me/email/verify",
            Some(&user.access_token),
            &json!({}),
        )
        .await;
    let retry_after: u64 = soon.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&retry_after));
    assert_problem(soon, 429).await;
    app.clock.advance(121);
    let resent = app
        .post(
            "/api/user/me/email/verify",
            Some(&user.access_token),
            &json!({}),
        )
        .await;
    assert_eq!(resent.status(), 202);
    let mails = smtp.wait_for_count(&new, 2, DELIVERY).await;
    let token_after = token_in(&mails[1], "verify-email");
    assert_problem(verify(&app, &token).await, 400).await;
    assert_eq!(verify(&app, &token_after).await.status(), 204);
    let me = json_body(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert_eq!(me["email_verified"], true);
}

#[tokio::test]
async fn mail_waits_out_an_smtp_outage_and_none_is_lost() {
    let mut smtp = SmtpServer::start();
    let app = mail_app(&smtp, "off").await;
    let user = app.new_user().await;
    smtp.stop();
    let started = Instant::now();
    assert_eq!(forgot(&app, &user.email).await.status(), 202);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the request does not wait for the SMTP server"
    );
    // Tried, failed, waiting.
    let deadline = Instant::now() + DELIVERY;
    while metric(&app, "latchkey_mail_sent_total{outcome=\"failed\"} ").await < 1.0 {
        assert!(Instant::now() < deadline, "a failed attempt is counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&app, "latchkey_mail_outbox ").await, 1.0);
    smtp.restart();
    let mail = smtp.wait_for(&user.email, Duration::from_secs(30)).await;
    let token = token_in(&mail, "reset-password");
    assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), 204);
    outbox_drained(&app).await;
    assert_eq!(
        metric(&app, "latchkey_mail_sent_total{outcome=\"sent\"} ").await,
        1.0
    );
    assert_eq!(smtp.messages().len(), 1, "sent once");
}

#[tokio::test]
async fn a_mail_whose_link_expired_while_the_server_was_down_is_dropped() {
    let mut smtp = SmtpServer::start();
    let app = mail_app(&smtp, "off").await;
    let user = app.new_user().await;
    smtp.stop();
    assert_eq!(forgot(&app, &user.email).await.status(), 202);
    let deadline = Instant::now() + DELIVERY;
    while metric(&app, "latchkey_mail_sent_total{outcome=\"failed\"} ").await < 1.0 {
        assert!(Instant::now() < deadline, "a first attempt fails");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.clock.advance(31 * 60);
    let deadline = Instant::now() + DELIVERY;
    while metric(&app, "latchkey_mail_sent_total{outcome=\"expired\"} ").await < 1.0 {
        assert!(Instant::now() < deadline, "the dead link is dropped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&app, "latchkey_mail_outbox ").await, 0.0);
    smtp.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn names_and_addresses_cannot_add_headers_or_recipients() {
    let smtp = SmtpServer::start();
    let app = mail_app(&smtp, "optional").await;
    let injected = json!({ "first_name": "Eve", "last_name": "X\r\nBcc: evil@example.com",
                           "email": unique_email(), "password": PASSWORD });
    assert_problem(app.post("/api/user", None, &injected).await, 422).await;
    let injected = json!({ "first_name": "Eve", "last_name": "X",
                           "email": "eve@example.com\r\nBcc: evil@example.com", "password": PASSWORD });
    assert_problem(app.post("/api/user", None, &injected).await, 422).await;

    // A name full of what headers treat specially arrives as a name.
    let email = unique_email();
    let odd = json!({ "first_name": "Ada \"<evil@example.com>\", Bcc:", "last_name": "Lovelace=?utf-8?q?x?=",
                      "email": email, "password": PASSWORD });
    assert_eq!(app.post("/api/user", None, &odd).await.status(), 201);
    let mail = smtp.wait_for(&email, DELIVERY).await;
    assert_eq!(
        mail.header("X-RcptTo").map(str::to_lowercase),
        Some(email.to_lowercase()),
        "one recipient: the user"
    );
    assert!(mail.header("Bcc").is_none());
    assert!(
        mail.text
            .starts_with("Hello Ada \"<evil@example.com>\", Bcc:,"),
        "{}",
        mail.text
    );
    outbox_drained(&app).await;
    for mail in smtp.messages() {
        let recipients = mail.header("X-RcptTo").unwrap_or_default().to_lowercase();
        assert!(!recipients.contains("evil"), "{recipients}");
    }
}

#[tokio::test]
async fn an_admin_sends_a_password_reset_from_the_console() {
    let smtp = SmtpServer::start();
    let app = mail_app(&smtp, "off").await;
    let user = app.new_user().await;
    let console = Console::signed_in_admin(&app).await;
    let page = format!("/admin/users/{}", user.id);
    let sent = console
        .post(&page, &format!("{page}/password/reset-link"), &[])
        .await;
    assert_eq!(sent.status(), 303);
    let shown = console.get(&page).await.text().await.unwrap();
    assert!(
        shown.contains("A password reset link is on its way to"),
        "{shown}"
    );
    let token = token_in(
        &smtp.wait_for(&user.email, DELIVERY).await,
        "reset-password",
    );
    outbox_drained(&app).await;
    let shown = console.get(&page).await.text().await.unwrap();
    assert!(
        shown.contains("Password reset link") && shown.contains(">sent<"),
        "{shown}"
    );
    assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), 204);
    let audit = console
        .get("/admin/audit?action=password.reset_link")
        .await
        .text()
        .await
        .unwrap();
    assert!(audit.contains("password.reset_link"), "{audit}");
}

#[tokio::test]
async fn two_instances_on_one_store_send_each_mail_once() {
    let mut smtp = SmtpServer::start();
    let first = mail_app(&smtp, "optional").await;
    let second = first.restart_with(&[]).await;
    // Mail piles up while the SMTP server is down; then both instances'
    // workers find it due at once.
    smtp.stop();
    let mut addresses = Vec::new();
    for n in 0..16 {
        let email = unique_email();
        let app = if n % 2 == 0 { &first } else { &second };
        register(app, &email).await;
        addresses.push(email);
    }
    smtp.restart();
    smtp.wait_for_count("@", addresses.len(), Duration::from_secs(30))
        .await;
    outbox_drained(&first).await;
    // A second look, after both workers have looked again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for email in &addresses {
        assert_eq!(smtp.messages_to(email).len(), 1, "{email}: one mail");
    }
    assert_eq!(smtp.messages().len(), addresses.len());
}

#[tokio::test]
async fn with_a_password_in_smtp_url_nothing_is_sent_without_starttls() {
    // aiosmtpd here offers no STARTTLS: a password must not cross in the
    // clear, so the mail waits (and says why on the user's page).
    let smtp = SmtpServer::start();
    let url = smtp.url().replace("smtp://", "smtp://mailer:secret@");
    let app = spawn_app_with(&[
        ("SMTP_URL", &url),
        ("MAIL_FROM", "latchkey <no-reply@example.com>"),
        ("PUBLIC_URL", PUBLIC_URL),
    ])
    .await;
    let user = app.new_user().await;
    assert_eq!(forgot(&app, &user.email).await.status(), 202);
    let deadline = Instant::now() + DELIVERY;
    while metric(&app, "latchkey_mail_sent_total{outcome=\"failed\"} ").await < 1.0 {
        assert!(Instant::now() < deadline, "the attempt fails");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&app, "latchkey_mail_outbox ").await, 1.0);
    assert!(smtp.messages().is_empty());
    let console = Console::signed_in_admin(&app).await;
    let page = console
        .get(&format!("/admin/users/{}", user.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(">waiting<") && page.contains("attempts so far"),
        "{page}"
    );
}

#[tokio::test]
async fn a_password_set_or_changed_voids_an_earlier_reset_link() {
    let smtp = SmtpServer::start();
    let app = mail_app(&smtp, "off").await;
    let admin = app.admin().await;
    let user = app.new_user().await;
    forgot(&app, &user.email).await;
    let token = token_in(
        &smtp.wait_for(&user.email, DELIVERY).await,
        "reset-password",
    );
    // The account's owner (or an admin who took it back) sets a password:
    // a link an intruder asked for before must not undo it.
    let set = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/user/{}/password", user.id),
            Some(&admin.access_token),
            Some(&json!({ "new_password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(set.status(), 204);
    assert_problem(reset(&app, &token, "another-fine-phrase-2031").await, 400).await;
    assert_eq!(app.login(&user.email, NEW_PASSWORD).await.status(), 200);

    app.clock.advance(121);
    let user = app.sign_in(&user.email, NEW_PASSWORD).await;
    forgot(&app, &user.email).await;
    let mails = smtp.wait_for_count(&user.email, 2, DELIVERY).await;
    let token = token_in(&mails[1], "reset-password");
    let changed = app
        .send(
            reqwest::Method::PUT,
            "/api/user/me/password",
            Some(&user.access_token),
            Some(&json!({ "current_password": NEW_PASSWORD, "new_password": PASSWORD })),
        )
        .await;
    assert_eq!(changed.status(), 204);
    assert_problem(reset(&app, &token, "another-fine-phrase-2031").await, 400).await;
}

//! Sign-in throttling, the bounded hasher queue and equal timing for an
//! unknown email and a wrong password.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

const WRONG: &str = "definitely-not-the-password";

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn after_five_failures_even_the_right_password_gets_429_until_the_window_passes() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    for _ in 0..5 {
        assert_problem(app.login(&user.email, WRONG).await, 401).await;
    }
    let locked = app.login(&user.email, PASSWORD).await;
    let wait = retry_after(&locked);
    assert!((1..=900).contains(&wait), "{wait}");
    assert_problem(locked, 429).await;
    app.clock.advance(wait as i64 + 1);
    assert_eq!(app.login(&user.email, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn parallel_attempts_cannot_slip_past_the_limit() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let attempts = (0..12).map(|_| app.login(&user.email, WRONG));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_success_clears_the_accounts_failures_and_a_429_is_not_a_failure() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    for _ in 0..4 {
        assert_problem(app.login(&user.email, WRONG).await, 401).await;
    }
    assert_eq!(app.login(&user.email, PASSWORD).await.status(), 200);
    for _ in 0..5 {
        assert_problem(app.login(&user.email, WRONG).await, 401).await;
    }
    for _ in 0..5 {
        assert_problem(app.login(&user.email, PASSWORD).await, 429).await;
    }
    app.clock.advance(901);
    assert_eq!(
        app.login(&user.email, PASSWORD).await.status(),
        200,
        "the 429s did not extend the lock"
    );
}

#[tokio::test]
async fn the_twenty_first_failure_from_one_address_is_the_first_refused() {
    let app = spawn_app().await;
    for _ in 0..20 {
        assert_problem(app.login(&unique_email(), WRONG).await, 401).await;
    }
    let refused = app.login(&unique_email(), WRONG).await;
    assert!(retry_after(&refused) >= 1);
    assert_problem(refused, 429).await;
}

#[tokio::test]
async fn a_disabled_users_right_password_never_counts_as_a_failure() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    let path = format!("/api/user/{}", user.id);
    let disabled = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access_token),
            Some(&json!({ "disabled": true })),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    for _ in 0..8 {
        assert_problem(app.login(&user.email, PASSWORD).await, 403).await;
    }
}

#[tokio::test]
async fn a_wrong_current_password_counts_as_a_failed_login() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let body = json!({ "current_password": WRONG, "new_password": "cobalt-meadow-lantern-77" });
    for _ in 0..5 {
        let response = app
            .send(
                Method::PUT,
                "/api/user/me/password",
                Some(&user.access_token),
                Some(&body),
            )
            .await;
        assert_problem(response, 401).await;
    }
    assert_problem(app.login(&user.email, PASSWORD).await, 429).await;
}

#[tokio::test]
async fn an_admin_setting_a_password_unlocks_the_account() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    for _ in 0..5 {
        assert_problem(app.login(&user.email, WRONG).await, 401).await;
    }
    let body = json!({ "new_password": "cobalt-meadow-lantern-77" });
    let path = format!("/api/user/{}/password", user.id);
    assert_eq!(
        app.send(Method::PUT, &path, Some(&admin.access_token), Some(&body))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.login(&user.email, "cobalt-meadow-lantern-77")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_full_hasher_queue_answers_503_with_retry_after_and_never_500() {
    let app = spawn_app_with(&[
        ("HASHER_THREADS", "1"),
        ("HASHER_QUEUE", "1"),
        ("LOGIN_MAX_FAILURES", "1000"),
        ("LOGIN_MAX_FAILURES_PER_ADDRESS", "1000"),
    ])
    .await;
    let user = app.new_user().await;
    let attempts = (0..40).map(|_| app.login(&user.email, PASSWORD));
    let responses = futures_util::future::join_all(attempts).await;
    let busy: Vec<_> = responses.iter().filter(|r| r.status() == 503).collect();
    assert!(!busy.is_empty(), "some sign-ins found the queue full");
    assert!(busy.iter().all(|r| r.headers().contains_key("retry-after")));
    assert!(
        responses
            .iter()
            .all(|r| r.status() == 200 || r.status() == 503)
    );
    assert_eq!(
        app.login(&user.email, PASSWORD).await.status(),
        200,
        "it recovers"
    );
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_take_the_same_time() {
    let _heavy = HEAVY.lock().await;
    let app = spawn_app_with(&[
        ("LOGIN_MAX_FAILURES", "1000"),
        ("LOGIN_MAX_FAILURES_PER_ADDRESS", "1000"),
    ])
    .await;
    let user = app.new_user().await;
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let start = Instant::now();
        assert_eq!(app.login(&unique_email(), WRONG).await.status(), 401);
        unknown.push(start.elapsed());
        let start = Instant::now();
        assert_eq!(app.login(&user.email, WRONG).await.status(), 401);
        wrong.push(start.elapsed());
    }
    let (unknown, wrong) = (median(unknown), median(wrong));
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.75..=1.25).contains(&ratio),
        "unknown {unknown:?} vs wrong {wrong:?}"
    );
}

#[tokio::test]
async fn throttling_is_audited() {
    use diesel::prelude::*;
    use latchkey::db::schema::audit_log;
    let app = spawn_app().await;
    let user = app.new_user().await;
    for _ in 0..6 {
        let _ = app.login(&user.email, WRONG).await;
    }
    let count = |action: &str| -> i64 {
        audit_log::table
            .filter(audit_log::action.eq(action))
            .count()
            .get_result(&mut app.store())
            .unwrap()
    };
    assert_eq!(count("login.throttled"), 1);
    assert_eq!(
        count("login"),
        5 + 1,
        "five failures and the sign-in of new_user"
    );
}

async fn login_from(app: &TestApp, forwarded_for: &str, email: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/user/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "email": email, "password": WRONG }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    let app = spawn_app().await;
    for n in 0..20 {
        assert_eq!(
            login_from(&app, &format!("198.51.100.{n}"), &unique_email())
                .await
                .status(),
            401
        );
    }
    let refused = login_from(&app, "198.51.100.77", &unique_email()).await;
    assert_eq!(
        refused.status(),
        429,
        "a made-up X-Forwarded-For does not dodge the per-address limit"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_address_is_counted_on_its_own() {
    let app = spawn_app_with(&[("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    for _ in 0..20 {
        assert_eq!(
            login_from(&app, "203.0.113.1", &unique_email())
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        login_from(&app, "203.0.113.1", &unique_email())
            .await
            .status(),
        429
    );
    assert_eq!(
        login_from(&app, "203.0.113.2", &unique_email())
            .await
            .status(),
        401,
        "another client is not locked out"
    );
    use diesel::prelude::*;
    use latchkey::db::schema::audit_log;
    let addrs: Vec<Option<String>> = audit_log::table
        .filter(audit_log::action.eq("login"))
        .select(audit_log::client_addr)
        .load(&mut app.store())
        .unwrap();
    assert!(
        addrs.iter().any(|a| a.as_deref() == Some("203.0.113.2")),
        "{addrs:?}"
    );
}

//! Sign-in, refresh rotation, reuse detection, lifetimes and sign-out.

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use serde_json::{Value, json};

fn decode_segment(token: &str, index: usize) -> Value {
    let segment = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

#[tokio::test]
async fn login_returns_a_bearer_token_pair_that_is_never_cached() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let response = app.login(&user.email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = json_body(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["refresh_expires_in"], 1_209_600);
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(
        URL_SAFE_NO_PAD.decode(refresh).unwrap().len() >= 32,
        "at least 256 bits"
    );
    let access = body["access_token"].as_str().unwrap();
    let header = decode_segment(access, 0);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "at+jwt");
    assert!(header["kid"].is_string());
    let claims = decode_segment(access, 1);
    for claim in ["iss", "aud", "sub", "sid", "jti", "iat", "exp", "role"] {
        assert!(!claims[claim].is_null(), "claim {claim}");
    }
    assert_eq!(claims["iss"], "latchkey");
    assert_eq!(claims["aud"], "latchkey");
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["role"], "user");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
}

#[tokio::test]
async fn the_configured_issuer_audience_and_lifetimes_are_used() {
    let app = spawn_app_with(&[
        ("JWT_ISSUER", "https://auth.example.com"),
        ("JWT_AUDIENCE", "shop"),
        ("ACCESS_TOKEN_TTL", "60"),
        ("REFRESH_TOKEN_TTL", "3600"),
    ])
    .await;
    let user = app.new_user().await;
    let body = json_body(app.login(&user.email, PASSWORD).await).await;
    assert_eq!(body["expires_in"], 60);
    assert_eq!(body["refresh_expires_in"], 3600);
    let claims = decode_segment(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(
        (claims["iss"].as_str(), claims["aud"].as_str()),
        (Some("https://auth.example.com"), Some("shop"))
    );
    assert_eq!(
        app.get("/api/user/me", Some(body["access_token"].as_str().unwrap()))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let wrong = assert_problem(app.login(&user.email, "amber-falcon-ridge-2042").await, 401).await;
    let unknown = assert_problem(app.login(&unique_email(), PASSWORD).await, 401).await;
    assert_eq!(wrong, unknown);
    let blank = assert_problem(app.login("", "").await, 401).await;
    assert_eq!(blank, unknown);
}

#[tokio::test]
async fn a_disabled_user_with_the_right_password_gets_403_and_a_wrong_one_401() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    let path = format!("/api/user/{}", user.id);
    let disable = app
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&admin.access_token),
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(disable.status(), 200);
    assert_problem(app.login(&user.email, PASSWORD).await, 403).await;
    assert_problem(app.login(&user.email, "amber-falcon-ridge-2042").await, 401).await;
}

#[tokio::test]
async fn each_sign_in_sets_last_login_at_and_a_refresh_does_not() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let first =
        json_body(app.get("/api/user/me", Some(&user.access_token)).await).await["last_login_at"]
            .clone();
    assert!(first.is_string());
    app.clock.advance(10);
    let refreshed = json_body(app.refresh(&user.refresh_token).await).await;
    let me = json_body(
        app.get(
            "/api/user/me",
            Some(refreshed["access_token"].as_str().unwrap()),
        )
        .await,
    )
    .await;
    assert_eq!(me["last_login_at"], first);
    let again = app.sign_in(&user.email, PASSWORD).await;
    let me = json_body(app.get("/api/user/me", Some(&again.access_token)).await).await;
    assert_ne!(me["last_login_at"], first);
}

#[tokio::test]
async fn a_refresh_rotates_the_refresh_token_and_keeps_the_session() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let response = app.refresh(&user.refresh_token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = json_body(response).await;
    let next = body["refresh_token"].as_str().unwrap();
    assert_ne!(next, user.refresh_token);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        decode_segment(access, 1)["sid"],
        decode_segment(&user.access_token, 1)["sid"]
    );
    assert_eq!(app.get("/api/user/me", Some(access)).await.status(), 200);
    assert_eq!(
        app.refresh(next).await.status(),
        200,
        "the successor refreshes in turn"
    );
}

#[tokio::test]
async fn refresh_tokens_are_stored_only_as_hashes() {
    use latchkey::db::schema::refresh_tokens;
    let app = spawn_app().await;
    let user = app.new_user().await;
    let hashes: Vec<String> = refresh_tokens::table
        .select(refresh_tokens::token_hash)
        .load(&mut app.store())
        .unwrap();
    assert!(!hashes.is_empty());
    assert!(
        hashes
            .iter()
            .all(|h| h.len() == 64 && *h != user.refresh_token)
    );
    assert!(
        hashes.contains(&latchkey::auth::sessions::hash_refresh_token(
            &user.refresh_token
        ))
    );
}

#[tokio::test]
async fn a_spent_refresh_token_presented_after_the_grace_window_revokes_the_session() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let rotated = json_body(app.refresh(&user.refresh_token).await).await;
    let (newest, access) = (
        rotated["refresh_token"].as_str().unwrap(),
        rotated["access_token"].as_str().unwrap(),
    );
    app.clock.advance(6);
    assert_problem(app.refresh(&user.refresh_token).await, 401).await;
    assert_problem(app.refresh(newest).await, 401).await;
    assert_invalid_token(app.get("/api/user/me", Some(access)).await).await;
    assert_invalid_token(app.get("/api/user/me", Some(&user.access_token)).await).await;
    let other_session = app.sign_in(&user.email, PASSWORD).await;
    assert_eq!(
        app.get("/api/user/me", Some(&other_session.access_token))
            .await
            .status(),
        200
    );
    use latchkey::db::schema::audit_log;
    let reuse: i64 = audit_log::table
        .filter(audit_log::action.eq("refresh.reuse"))
        .filter(audit_log::actor.eq(&user.id))
        .count()
        .get_result(&mut app.store())
        .unwrap();
    assert_eq!(reuse, 1, "the reuse is audited");
}

#[tokio::test]
async fn a_second_use_within_the_grace_window_is_refused_without_revoking() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let rotated = json_body(app.refresh(&user.refresh_token).await).await;
    app.clock.advance(2);
    assert_problem(app.refresh(&user.refresh_token).await, 401).await;
    let access = rotated["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/user/me", Some(access)).await.status(), 200);
    assert_eq!(
        app.refresh(rotated["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn with_no_grace_window_any_reuse_revokes_the_session() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let user = app.new_user().await;
    let rotated = json_body(app.refresh(&user.refresh_token).await).await;
    assert_problem(app.refresh(&user.refresh_token).await, 401).await;
    assert_problem(
        app.refresh(rotated["refresh_token"].as_str().unwrap())
            .await,
        401,
    )
    .await;
}

#[tokio::test]
async fn parallel_refreshes_of_one_token_have_exactly_one_winner() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let attempts = (0..10).map(|_| app.refresh(&user.refresh_token));
    let responses = futures_util::future::join_all(attempts).await;
    let winners = responses.iter().filter(|r| r.status() == 200).count();
    let losers = responses.iter().filter(|r| r.status() == 401).count();
    assert_eq!((winners, losers), (1, 9));
}

#[tokio::test]
async fn an_unknown_or_malformed_refresh_token_gets_401_or_400() {
    let app = spawn_app().await;
    assert_problem(app.refresh("no-such-token").await, 401).await;
    assert_problem(app.refresh("").await, 401).await;
    assert_problem(
        app.post("/api/user/refresh-token", None, &json!({})).await,
        400,
    )
    .await;
    assert_problem(
        app.post(
            "/api/user/refresh-token",
            None,
            &json!({ "refresh_token": 5 }),
        )
        .await,
        400,
    )
    .await;
}

#[tokio::test]
async fn an_access_token_expires_after_its_lifetime_and_leeway() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    app.clock.advance(299);
    assert_eq!(
        app.get("/api/user/me", Some(&user.access_token))
            .await
            .status(),
        200
    );
    app.clock.advance(2);
    assert_invalid_token(app.get("/api/user/me", Some(&user.access_token)).await).await;
    let lenient = spawn_app_with(&[("TOKEN_LEEWAY", "30")]).await;
    let user = lenient.new_user().await;
    lenient.clock.advance(320);
    assert_eq!(
        lenient
            .get("/api/user/me", Some(&user.access_token))
            .await
            .status(),
        200
    );
    lenient.clock.advance(20);
    assert_invalid_token(lenient.get("/api/user/me", Some(&user.access_token)).await).await;
}

#[tokio::test]
async fn an_idle_session_expires_and_each_refresh_renews_it() {
    let app = spawn_app_with(&[("REFRESH_TOKEN_TTL", "600")]).await;
    let user = app.new_user().await;
    let mut refresh = user.refresh_token.clone();
    for _ in 0..3 {
        app.clock.advance(500);
        let body = json_body(app.refresh(&refresh).await).await;
        assert_eq!(body["refresh_expires_in"], 600);
        refresh = body["refresh_token"].as_str().unwrap().to_owned();
    }
    app.clock.advance(601);
    assert_problem(app.refresh(&refresh).await, 401).await;
}

#[tokio::test]
async fn the_absolute_lifetime_holds_however_often_a_session_refreshes() {
    let app = spawn_app_with(&[("REFRESH_TOKEN_TTL", "600"), ("SESSION_MAX_AGE", "1000")]).await;
    let user = app.new_user().await;
    app.clock.advance(500);
    let body = json_body(app.refresh(&user.refresh_token).await).await;
    // What is left of the absolute lifetime, rounded down (real time passes too).
    let left = |body: &Value, field: &str| body[field].as_i64().unwrap();
    assert!(
        (499..=500).contains(&left(&body, "refresh_expires_in")),
        "{body}"
    );
    let access = body["access_token"].as_str().unwrap();
    let claims = decode_segment(access, 1);
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300);
    app.clock.advance(400);
    let body = json_body(app.refresh(body["refresh_token"].as_str().unwrap()).await).await;
    assert!(
        (99..=100).contains(&left(&body, "refresh_expires_in")),
        "{body}"
    );
    assert!(
        (99..=100).contains(&left(&body, "expires_in")),
        "an access token never outlives its session"
    );
    app.clock.advance(101);
    assert_problem(
        app.refresh(body["refresh_token"].as_str().unwrap()).await,
        401,
    )
    .await;
}

#[tokio::test]
async fn a_refresh_for_a_disabled_or_deleted_user_gets_401() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for action in ["disable", "delete"] {
        let user = app.new_user().await;
        let spare = app.sign_in(&user.email, PASSWORD).await;
        let path = format!("/api/user/{}", user.id);
        let done = match action {
            "disable" => {
                app.send(
                    reqwest::Method::PATCH,
                    &path,
                    Some(&admin.access_token),
                    Some(&json!({"disabled": true})),
                )
                .await
            }
            _ => {
                app.send(
                    reqwest::Method::DELETE,
                    &path,
                    Some(&admin.access_token),
                    None,
                )
                .await
            }
        };
        assert!(done.status().is_success(), "{action}");
        assert_problem(app.refresh(&user.refresh_token).await, 401).await;
        assert_problem(app.refresh(&spare.refresh_token).await, 401).await;
    }
}

#[tokio::test]
async fn logout_with_a_refresh_token_ends_that_session_only() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let other = app.sign_in(&user.email, PASSWORD).await;
    let response = app
        .post(
            "/api/user/logout",
            None,
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_problem(app.refresh(&user.refresh_token).await, 401).await;
    assert_invalid_token(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert_eq!(
        app.get("/api/user/me", Some(&other.access_token))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn logout_always_answers_204() {
    let app = spawn_app().await;
    let unknown = app
        .post(
            "/api/user/logout",
            None,
            &json!({ "refresh_token": "never-issued" }),
        )
        .await;
    assert_eq!(unknown.status(), 204);
    let empty = app
        .client
        .post(app.url("/api/user/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 204);
    let expired = app
        .client
        .post(app.url("/api/user/logout"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 204);
}

#[tokio::test]
async fn logout_with_only_a_bearer_token_ends_its_session() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let response = app
        .client
        .post(app.url("/api/user/logout"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_invalid_token(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert_problem(app.refresh(&user.refresh_token).await, 401).await;
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user_and_no_one_elses() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let second = app.sign_in(&user.email, PASSWORD).await;
    let bystander = app.new_user().await;
    let anonymous = app
        .client
        .post(app.url("/api/user/logout-all"))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401).await;
    let response = app
        .client
        .post(app.url("/api/user/logout-all"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    for session in [&user, &second] {
        assert_invalid_token(app.get("/api/user/me", Some(&session.access_token)).await).await;
        assert_problem(app.refresh(&session.refresh_token).await, 401).await;
    }
    assert_eq!(
        app.get("/api/user/me", Some(&bystander.access_token))
            .await
            .status(),
        200
    );
}

//! Revocation takes effect on the very next request, not when the access
//! token expires, and holds across a restart.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn changing_ones_password_ends_every_other_session_at_once() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let other = app.sign_in(&user.email, &user.password).await;
    let body =
        json!({ "current_password": user.password, "new_password": "cobalt-meadow-lantern-77" });
    let response = app
        .send(
            Method::PUT,
            "/api/user/me/password",
            Some(&user.access_token),
            Some(&body),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_invalid_token(app.get("/api/user/me", Some(&other.access_token)).await).await;
    assert_problem(app.refresh(&other.refresh_token).await, 401).await;
    assert_eq!(
        app.get("/api/user/me", Some(&user.access_token))
            .await
            .status(),
        200,
        "the caller stays"
    );
    assert_problem(app.login(&user.email, PASSWORD).await, 401).await;
    assert_eq!(
        app.login(&user.email, "cobalt-meadow-lantern-77")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_password_change_checks_the_current_password_and_the_new_ones_strength() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let wrong = json!({ "current_password": "not-my-password-at-all", "new_password": "cobalt-meadow-lantern-77" });
    let response = app
        .send(
            Method::PUT,
            "/api/user/me/password",
            Some(&user.access_token),
            Some(&wrong),
        )
        .await;
    assert_problem(response, 401).await;
    let weak = json!({ "current_password": PASSWORD, "new_password": "password1" });
    let response = app
        .send(
            Method::PUT,
            "/api/user/me/password",
            Some(&user.access_token),
            Some(&weak),
        )
        .await;
    let problem = assert_problem(response, 422).await;
    assert!(problem["errors"]["new_password"].is_array());
    assert_eq!(
        app.login(&user.email, PASSWORD).await.status(),
        200,
        "nothing changed"
    );
}

#[tokio::test]
async fn an_admin_setting_a_password_ends_all_of_that_users_sessions() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    let body = json!({ "new_password": "cobalt-meadow-lantern-77" });
    let refused = app
        .send(
            Method::PUT,
            &format!("/api/user/{}/password", admin.id),
            Some(&user.access_token),
            Some(&body),
        )
        .await;
    assert_problem(refused, 403).await;
    let path = format!("/api/user/{}/password", user.id);
    assert_eq!(
        app.send(Method::PUT, &path, Some(&admin.access_token), Some(&body))
            .await
            .status(),
        204
    );
    assert_invalid_token(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert_problem(app.refresh(&user.refresh_token).await, 401).await;
    assert_eq!(
        app.login(&user.email, "cobalt-meadow-lantern-77")
            .await
            .status(),
        200
    );
    let unknown = format!("/api/user/{}/password", uuid::Uuid::new_v4());
    assert_problem(
        app.send(
            Method::PUT,
            &unknown,
            Some(&admin.access_token),
            Some(&body),
        )
        .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn disabling_a_user_fails_their_tokens_on_the_next_request() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    assert_eq!(
        app.get("/api/user/me", Some(&user.access_token))
            .await
            .status(),
        200
    );
    let path = format!("/api/user/{}", user.id);
    let response = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access_token),
            Some(&json!({ "disabled": true })),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_invalid_token(app.get("/api/user/me", Some(&user.access_token)).await).await;
    let enabled = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access_token),
            Some(&json!({ "disabled": false })),
        )
        .await;
    assert_eq!(enabled.status(), 200);
    assert_invalid_token(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert_eq!(
        app.login(&user.email, PASSWORD).await.status(),
        200,
        "a fresh sign-in works again"
    );
}

#[tokio::test]
async fn deleting_a_user_fails_their_tokens_on_the_next_request() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let other = app.sign_in(&user.email, PASSWORD).await;
    assert_eq!(
        app.send(
            Method::DELETE,
            "/api/user/me",
            Some(&user.access_token),
            None
        )
        .await
        .status(),
        204
    );
    for session in [&user, &other] {
        assert_invalid_token(app.get("/api/user/me", Some(&session.access_token)).await).await;
    }
}

#[tokio::test]
async fn revocations_hold_across_a_restart() {
    let app = spawn_app().await;
    let (admin, leaving, deleted) = (
        app.admin().await,
        app.new_user().await,
        app.new_user().await,
    );
    let logout = app
        .post(
            "/api/user/logout",
            None,
            &json!({ "refresh_token": leaving.refresh_token }),
        )
        .await;
    assert_eq!(logout.status(), 204);
    let path = format!("/api/user/{}", deleted.id);
    assert_eq!(
        app.send(Method::DELETE, &path, Some(&admin.access_token), None)
            .await
            .status(),
        204
    );
    let restarted = app.restart_with(&[]).await;
    assert_invalid_token(
        restarted
            .get("/api/user/me", Some(&leaving.access_token))
            .await,
    )
    .await;
    assert_invalid_token(
        restarted
            .get("/api/user/me", Some(&deleted.access_token))
            .await,
    )
    .await;
    assert_eq!(
        restarted
            .get("/api/user/me", Some(&admin.access_token))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_instance_that_did_not_read_the_change_feed_for_minutes_reloads_from_the_store() {
    use diesel::prelude::*;
    use latchkey::db::schema::{sessions, users};
    // Two instances on one store, each with its own clock; tokens that
    // outlive the minutes this test lets pass.
    let first = spawn_app_with(&[("ACCESS_TOKEN_TTL", "3600")]).await;
    let second = first.restart_with(&[]).await;
    let (leaving, disabled) = (first.new_user().await, first.new_user().await);
    let me = |user: &TestUser| {
        let request = second
            .client
            .get(second.url("/api/user/me"))
            .bearer_auth(&user.access_token)
            .send();
        async move { request.await.unwrap().status() }
    };
    // Once the second has read the feed up to here (their sign-ins), the
    // user it is asked about stays cached.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(me(&leaving).await, 200);
    assert_eq!(me(&disabled).await, 200, "now cached by the second");

    // A logout and a disable whose feed rows the second never reads: made
    // in the store with none, as when the sweep deleted them while the
    // second was paused (or cut off from the store) for over ten minutes.
    let mut store = first.store();
    let now = latchkey::clock::Clock::now(&*first.clock).naive_utc();
    diesel::update(sessions::table.filter(sessions::user_id.eq(&leaving.id)))
        .set((
            sessions::revoked_at.eq(now),
            sessions::revoked_reason.eq("logout"),
        ))
        .execute(&mut store)
        .unwrap();
    diesel::update(users::table.filter(users::id.eq(&disabled.id)))
        .set(users::disabled.eq(true))
        .execute(&mut store)
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        me(&leaving).await,
        200,
        "with no feed row, nothing tells the second"
    );
    assert_eq!(me(&disabled).await, 200);

    // Its clock says it has not read the feed for six minutes: it reloads
    // revocations and users from the store within a second or so.
    second.clock.advance(6 * 60);
    let started = std::time::Instant::now();
    while me(&leaving).await != 401 || me(&disabled).await != 401 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "the second did not reload what it missed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

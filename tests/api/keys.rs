//! The key ring: listing, rotation, emergency rotation and SECRET_KEY.

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn keys(app: &TestApp, token: &str) -> Vec<Value> {
    let response = app.get("/api/admin/keys", Some(token)).await;
    assert_eq!(response.status(), 200);
    json_body(response).await.as_array().unwrap().clone()
}

async fn rotate(app: &TestApp, token: &str, revoke_previous: bool) -> Value {
    let body = json!({ "revoke_previous": revoke_previous });
    let response = app.post("/api/admin/keys/rotate", Some(token), &body).await;
    assert_eq!(response.status(), 201);
    json_body(response).await
}

fn state_of(ring: &[Value], kid: &str) -> String {
    ring.iter()
        .find(|k| k["kid"] == kid)
        .map(|k| k["state"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn only_admins_see_the_key_ring_and_never_a_secret() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    assert_problem(
        app.get("/api/admin/keys", Some(&user.access_token)).await,
        403,
    )
    .await;
    assert_problem(app.get("/api/admin/keys", None).await, 401).await;
    assert_problem(
        app.post(
            "/api/admin/keys/rotate",
            Some(&user.access_token),
            &json!({}),
        )
        .await,
        403,
    )
    .await;
    let response = app.get("/api/admin/keys", Some(&admin.access_token)).await;
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("secret") && !text.contains(SECRET_KEY),
        "{text}"
    );
    let ring: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(ring.len(), 1);
    assert_eq!(ring[0]["state"], "active");
    assert_eq!(ring[0]["kid"], kid_of(&admin.access_token).as_str());
    assert_eq!(ring[0]["retired_at"], Value::Null);
    let mut fields: Vec<&str> = ring[0]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["created_at", "kid", "retired_at", "state"],
        "the contract's fields, never a secret"
    );
}

#[tokio::test]
async fn a_rotation_signs_new_tokens_with_a_new_key_and_logs_nobody_out() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    let old_kid = kid_of(&user.access_token);
    let new_key = rotate(&app, &admin.access_token, false).await;
    assert_eq!(new_key["state"], "active");
    assert_ne!(new_key["kid"], old_kid.as_str());
    assert_eq!(
        app.get("/api/user/me", Some(&user.access_token))
            .await
            .status(),
        200,
        "old tokens keep working"
    );
    let fresh = app.sign_in(&user.email, PASSWORD).await;
    assert_eq!(
        kid_of(&fresh.access_token),
        new_key["kid"].as_str().unwrap()
    );
    let ring = keys(&app, &admin.access_token).await;
    assert_eq!(state_of(&ring, &old_kid), "previous");
    assert_eq!(ring.iter().filter(|k| k["state"] == "active").count(), 1);
}

#[tokio::test]
async fn a_rotation_without_a_body_is_an_ordinary_rotation() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let response = app
        .client
        .post(app.url("/api/admin/keys/rotate"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        app.get("/api/user/me", Some(&admin.access_token))
            .await
            .status(),
        200
    );
    let unknown = json!({ "revoke_previous": false, "now": true });
    assert_problem(
        app.post(
            "/api/admin/keys/rotate",
            Some(&admin.access_token),
            &unknown,
        )
        .await,
        400,
    )
    .await;
}

#[tokio::test]
async fn a_previous_key_retires_once_its_tokens_have_expired() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    let old_kid = kid_of(&user.access_token);
    rotate(&app, &admin.access_token, false).await;
    app.clock.advance(301);
    let admin = app.admin().await;
    let ring = keys(&app, &admin.access_token).await;
    assert_eq!(state_of(&ring, &old_kid), "retired");
    assert!(ring.iter().find(|k| k["kid"] == old_kid.as_str()).unwrap()["retired_at"].is_string());
}

#[tokio::test]
async fn an_emergency_rotation_fails_every_outstanding_token_but_sessions_refresh() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    let old_kid = kid_of(&user.access_token);
    rotate(&app, &admin.access_token, true).await;
    assert_invalid_token(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert_invalid_token(app.get("/api/user/me", Some(&admin.access_token)).await).await;
    let refreshed = json_body(app.refresh(&user.refresh_token).await).await;
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/user/me", Some(access)).await.status(), 200);
    let admin = app.admin().await;
    assert_eq!(
        state_of(&keys(&app, &admin.access_token).await, &old_kid),
        "retired"
    );
}

#[tokio::test]
async fn a_changed_secret_key_on_restart_becomes_active_and_old_tokens_keep_verifying() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let old_kid = kid_of(&user.access_token);
    let restarted = app
        .restart_with(&[("SECRET_KEY", "a-completely-different-secret-key-0123456789")])
        .await;
    assert_eq!(
        restarted
            .get("/api/user/me", Some(&user.access_token))
            .await
            .status(),
        200
    );
    let fresh = restarted.sign_in(&user.email, PASSWORD).await;
    assert_ne!(kid_of(&fresh.access_token), old_kid);
    let admin = restarted.admin().await;
    let ring = keys(&restarted, &admin.access_token).await;
    assert_eq!(state_of(&ring, &old_kid), "previous");
    assert_eq!(state_of(&ring, &kid_of(&fresh.access_token)), "active");
    let again = restarted.restart_with(&[]).await;
    let admin = again.admin().await;
    assert_eq!(
        keys(&again, &admin.access_token).await.len(),
        2,
        "the same SECRET_KEY adds no key"
    );
}

#[tokio::test]
async fn without_secret_key_the_first_start_generates_a_key_and_later_starts_keep_it() {
    let app = spawn_app_with(&[("SECRET_KEY", "")]).await;
    let user = app.new_user().await;
    let restarted = app.restart_with(&[("SECRET_KEY", "")]).await;
    assert_eq!(
        restarted
            .get("/api/user/me", Some(&user.access_token))
            .await
            .status(),
        200
    );
    let fresh = restarted.sign_in(&user.email, PASSWORD).await;
    assert_eq!(kid_of(&fresh.access_token), kid_of(&user.access_token));
}

#[tokio::test]
async fn a_rotation_is_audited() {
    use diesel::prelude::*;
    use latchkey::db::schema::audit_log;
    let app = spawn_app().await;
    let admin = app.admin().await;
    let key = rotate(&app, &admin.access_token, true).await;
    let kid = key["kid"].as_str().unwrap();
    let (actor, detail): (String, Option<String>) = audit_log::table
        .filter(audit_log::action.eq("key.rotate"))
        .filter(audit_log::target.eq(kid))
        .select((audit_log::actor, audit_log::detail))
        .first(&mut app.store())
        .unwrap();
    assert_eq!(actor, admin.id);
    let detail: Value = serde_json::from_str(&detail.unwrap()).unwrap();
    assert_eq!(
        detail,
        serde_json::json!({ "revoke_previous": true, "algorithm": "HS256" })
    );
}

#[tokio::test]
async fn a_key_adopted_from_secret_key_at_start_is_audited_once() {
    use diesel::prelude::*;
    use latchkey::db::schema::audit_log;
    let app = spawn_app().await;
    let adopted = || {
        audit_log::table
            .filter(audit_log::action.eq("key.rotate"))
            .select((audit_log::actor, audit_log::target, audit_log::detail))
            .load::<(String, Option<String>, Option<String>)>(&mut app.store())
            .unwrap()
    };
    let entries = adopted();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (actor, target, detail) = &entries[0];
    assert_eq!(actor, "system");
    let admin = app.admin().await;
    assert_eq!(
        target.as_deref(),
        Some(kid_of(&admin.access_token).as_str())
    );
    let detail: serde_json::Value = serde_json::from_str(detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["source"], "SECRET_KEY");
    // A restart with the same SECRET_KEY adopts nothing new.
    let restarted = app.restart_with(&[]).await;
    drop(restarted);
    assert_eq!(adopted().len(), 1);
}

#[tokio::test]
async fn parallel_rotations_leave_the_signing_key_the_one_the_store_calls_active() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let empty = json!({});
    let rotations =
        (0..8).map(|_| app.post("/api/admin/keys/rotate", Some(&admin.access_token), &empty));
    for response in futures_util::future::join_all(rotations).await {
        assert_eq!(response.status(), 201);
    }
    let fresh = app.admin().await;
    let ring = keys(&app, &fresh.access_token).await;
    assert_eq!(state_of(&ring, &kid_of(&fresh.access_token)), "active");
}

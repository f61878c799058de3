//! Service clients (`/api/admin/clients`) and the introspection they
//! authenticate (`POST /api/oauth/introspect`, RFC 7662): what an admin
//! and another service see.

use crate::helpers::*;
use diesel::prelude::*;
use latchkey::db::schema::{audit_log, service_clients};
use reqwest::{Method, Response};
use serde_json::{Value, json};

/// A client as `POST /api/admin/clients` answered it.
pub struct ServiceClient {
    pub id: String,
    pub secret: String,
}

/// Creates a client as `admin`.
pub async fn create_client(app: &TestApp, admin: &TestUser, name: &str) -> ServiceClient {
    let created = app
        .post(
            "/api/admin/clients",
            Some(&admin.access_token),
            &json!({ "name": name }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let body = json_body(created).await;
    ServiceClient {
        id: body["id"].as_str().unwrap().to_owned(),
        secret: body["secret"].as_str().unwrap().to_owned(),
    }
}

/// `POST /api/oauth/introspect` with these credentials and form fields.
pub async fn introspect_as(
    app: &TestApp,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> Response {
    app.client
        .post(app.url("/api/oauth/introspect"))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Introspects `token` as `client` and returns the 200's body.
pub async fn introspect(app: &TestApp, client: &ServiceClient, token: &str) -> Value {
    let response = introspect_as(app, &client.id, &client.secret, &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "an introspection answer is never cached"
    );
    json_body(response).await
}

/// Asserts a 401 problem that asks for HTTP Basic credentials.
async fn assert_basic_challenge(response: Response) {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        challenge.as_deref(),
        Some("Basic realm=\"latchkey\", charset=\"UTF-8\"")
    );
    assert_problem(response, 401).await;
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The audit entries with `action`, as (actor, target, outcome).
fn audit_entries(app: &TestApp, action: &str) -> Vec<(String, Option<String>, String)> {
    audit_log::table
        .filter(audit_log::action.eq(action))
        .order(audit_log::id)
        .select((audit_log::actor, audit_log::target, audit_log::outcome))
        .load(&mut app.store())
        .unwrap()
}

#[tokio::test]
async fn an_admin_creates_lists_and_revokes_service_clients() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let created = app
        .post(
            "/api/admin/clients",
            Some(&admin.access_token),
            &json!({ "name": "  billing service " }),
        )
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let body = json_body(created).await;
    let (id, secret) = (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(body["name"], "billing service", "the name is trimmed");
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "the id is UUID text: {id}"
    );
    assert!(secret.starts_with("lks_") && secret.len() == 47, "{secret}");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(keys, ["created_at", "id", "name", "secret"]);

    let other = create_client(&app, &admin, "reports").await;
    let listed = app
        .get("/api/admin/clients", Some(&admin.access_token))
        .await;
    assert_eq!(listed.status(), 200);
    let text = listed.text().await.unwrap();
    assert!(
        !text.contains(&secret) && !text.contains(&other.secret) && !text.contains("secret"),
        "a list never shows a secret: {text}"
    );
    let listed: Value = serde_json::from_str(&text).unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], other.id.as_str(), "newest first");
    assert_eq!(items[1]["id"], id.as_str());
    assert_eq!(items[1]["name"], "billing service");
    assert_eq!(items[1]["created_by"], admin.id.as_str());
    assert_eq!(items[1]["last_used_at"], Value::Null);
    assert_eq!(items[1]["revoked_at"], Value::Null);

    // It works, and its use is recorded.
    let user = app.new_user().await;
    let client = ServiceClient {
        id: id.clone(),
        secret: secret.clone(),
    };
    assert_eq!(
        introspect(&app, &client, &user.access_token).await["active"],
        true
    );
    let listed = json_body(
        app.get("/api/admin/clients", Some(&admin.access_token))
            .await,
    )
    .await;
    assert!(listed["items"][1]["last_used_at"].is_string());

    // Revoked: refused from the next request on; a second revoke is a 404.
    let path = format!("/api/admin/clients/{id}");
    let revoked = app
        .send(Method::DELETE, &path, Some(&admin.access_token), None)
        .await;
    assert_eq!(revoked.status(), 204);
    assert_basic_challenge(
        introspect_as(&app, &id, &secret, &[("token", &user.access_token)]).await,
    )
    .await;
    assert_problem(
        app.send(Method::DELETE, &path, Some(&admin.access_token), None)
            .await,
        404,
    )
    .await;
    assert_problem(
        app.send(
            Method::DELETE,
            "/api/admin/clients/no-such-client",
            Some(&admin.access_token),
            None,
        )
        .await,
        404,
    )
    .await;
    let listed = json_body(
        app.get("/api/admin/clients", Some(&admin.access_token))
            .await,
    )
    .await;
    assert!(
        listed["items"][1]["revoked_at"].is_string(),
        "kept, marked revoked"
    );
    assert_eq!(listed["items"][0]["revoked_at"], Value::Null);

    // Audited, by whom and on which client.
    assert_eq!(
        audit_entries(&app, "client.create"),
        [
            (admin.id.clone(), Some(id.clone()), "ok".into()),
            (admin.id.clone(), Some(other.id.clone()), "ok".into())
        ]
    );
    assert_eq!(
        audit_entries(&app, "client.revoke"),
        [(admin.id.clone(), Some(id.clone()), "ok".into())]
    );
    let failed = audit_entries(&app, "client.auth");
    assert_eq!(failed.len(), 1, "the revoked client's attempt: {failed:?}");
    assert_eq!(failed[0].1.as_deref(), Some(id.as_str()));
    assert_eq!(failed[0].2, "failed");
}

#[tokio::test]
async fn only_admins_manage_clients_and_names_follow_the_rules() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let user = app.new_user().await;
    let client = create_client(&app, &admin, "search").await;
    let body = json!({ "name": "mine" });
    for (method, path) in [
        (Method::GET, "/api/admin/clients".to_owned()),
        (Method::POST, "/api/admin/clients".to_owned()),
        (Method::DELETE, format!("/api/admin/clients/{}", client.id)),
    ] {
        let response = app
            .send(method.clone(), &path, Some(&user.access_token), Some(&body))
            .await;
        assert_problem(response, 403).await;
        let response = app.send(method.clone(), &path, None, Some(&body)).await;
        assert_eq!(response.status(), 401, "{method} {path} without a token");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    // The user's attempts changed nothing.
    assert_eq!(
        introspect(&app, &client, &user.access_token).await["active"],
        true
    );

    for name in ["", "   ", &"x".repeat(101), "tab\there"] {
        let response = app
            .post(
                "/api/admin/clients",
                Some(&admin.access_token),
                &json!({ "name": name }),
            )
            .await;
        let problem = assert_problem(response, 422).await;
        assert!(problem["errors"]["name"].is_array(), "{name:?}: {problem}");
    }
    for body in [
        json!({}),
        json!({ "name": 5 }),
        json!({ "name": "a", "secret": "mine" }),
    ] {
        let response = app
            .post("/api/admin/clients", Some(&admin.access_token), &body)
            .await;
        assert_problem(response, 400).await;
    }
    let listed = json_body(
        app.get("/api/admin/clients", Some(&admin.access_token))
            .await,
    )
    .await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        1,
        "nothing was added"
    );
}

#[tokio::test]
async fn a_secret_is_stored_only_as_its_hash() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let client = create_client(&app, &admin, "stored").await;
    let (stored, hash): (String, String) = service_clients::table
        .select((service_clients::id, service_clients::secret_hash))
        .first(&mut app.store())
        .unwrap();
    assert_eq!(stored, client.id);
    assert_ne!(hash, client.secret);
    assert_eq!(hash.len(), 64, "SHA-256, hex");
    let audit: Vec<Option<String>> = audit_log::table
        .select(audit_log::detail)
        .load(&mut app.store())
        .unwrap();
    assert!(
        audit.iter().flatten().all(|d| !d.contains(&client.secret)),
        "no audit entry holds the secret"
    );
    if !app.on_postgres() {
        // Nowhere in the files either (the write-ahead log included).
        for suffix in ["", "-wal"] {
            let path = format!("{}{suffix}", app.db_path.display());
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert!(
                !bytes
                    .windows(client.secret.len())
                    .any(|w| w == client.secret.as_bytes()),
                "the secret is in {path}"
            );
        }
    }
}

#[tokio::test]
async fn introspection_describes_an_active_access_token() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let client = create_client(&app, &admin, "api gateway").await;
    let user = app.new_user().await;
    let claims = claims_of(&user.access_token);
    let found = introspect(&app, &client, &user.access_token).await;
    assert_eq!(
        found,
        json!({
            "active": true,
            "sub": user.id,
            "username": user.email,
            "role": "user",
            "sid": claims["sid"],
            "exp": claims["exp"],
            "iat": claims["iat"],
            "iss": "latchkey",
            "aud": "latchkey",
            "jti": claims["jti"],
            "token_type": "access_token",
        })
    );
    // The hint is only a hint.
    for hint in ["access_token", "refresh_token"] {
        let response = introspect_as(
            &app,
            &client.id,
            &client.secret,
            &[("token", &user.access_token), ("token_type_hint", hint)],
        )
        .await;
        assert_eq!(json_body(response).await["active"], true, "{hint}");
    }
    // Unknown form fields are ignored (RFC 6749 §3.1).
    let response = introspect_as(
        &app,
        &client.id,
        &client.secret,
        &[("token", &user.access_token), ("scope", "anything")],
    )
    .await;
    assert_eq!(json_body(response).await["active"], true);
    // An admin's role is told as it is now.
    let found = introspect(&app, &client, &admin.access_token).await;
    assert_eq!(found["role"], "admin");
    assert_eq!(found["username"], ADMIN_EMAIL);
}

#[tokio::test]
async fn anything_but_an_active_access_token_is_exactly_active_false() {
    let app = spawn_app_with(&[("ACCESS_TOKEN_TTL", "60")]).await;
    let admin = app.admin().await;
    let client = create_client(&app, &admin, "checker").await;
    let inactive = json!({ "active": false });

    let user = app.new_user().await;
    let mut tokens: Vec<(&str, String)> = vec![
        ("a refresh token", user.refresh_token.clone()),
        ("an empty token", String::new()),
        ("garbage", "not-a-token".into()),
        ("a 16 KiB token", "a".repeat(16 * 1024)),
        (
            "a token with its signature cut",
            user.access_token.rsplit_once('.').unwrap().0.to_owned() + ".",
        ),
    ];
    let signed_out = app.new_user().await;
    assert_eq!(
        app.logout_bearer(&signed_out.access_token).await.status(),
        204
    );
    tokens.push(("a signed-out token", signed_out.access_token.clone()));
    let disabled = app.new_user().await;
    let patched = app
        .send(
            Method::PATCH,
            &format!("/api/user/{}", disabled.id),
            Some(&admin.access_token),
            Some(&json!({ "disabled": true })),
        )
        .await;
    assert_eq!(patched.status(), 200);
    tokens.push(("a disabled user's token", disabled.access_token.clone()));
    let deleted = app.new_user().await;
    let gone = app
        .send(
            Method::DELETE,
            &format!("/api/user/{}", deleted.id),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(gone.status(), 204);
    tokens.push(("a deleted user's token", deleted.access_token.clone()));
    for (what, token) in &tokens {
        assert_eq!(introspect(&app, &client, token).await, inactive, "{what}");
    }

    // Expired; and after an emergency rotation, every earlier token.
    let later = app.new_user().await;
    assert_eq!(
        introspect(&app, &client, &later.access_token).await["active"],
        true
    );
    app.clock.advance(61);
    assert_eq!(
        introspect(&app, &client, &later.access_token).await,
        inactive,
        "expired"
    );
    let fresh = app.new_user().await;
    let admin = app.admin().await;
    let rotated = app
        .post(
            "/api/admin/keys/rotate",
            Some(&admin.access_token),
            &json!({ "revoke_previous": true }),
        )
        .await;
    assert_eq!(rotated.status(), 201);
    assert_eq!(
        introspect(&app, &client, &fresh.access_token).await,
        inactive,
        "signed with a retired key"
    );
}

#[tokio::test]
async fn introspection_needs_a_clients_credentials_before_anything_else() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let client = create_client(&app, &admin, "gate").await;
    let user = app.new_user().await;
    let form = [("token", user.access_token.as_str())];
    let url = app.url("/api/oauth/introspect");

    let none = app.client.post(&url).form(&form).send().await.unwrap();
    assert_basic_challenge(none).await;
    let bearer = app
        .client
        .post(&url)
        .bearer_auth(&user.access_token)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_basic_challenge(bearer).await;
    for garbled in [
        "Basic",
        "Basic !!!",
        "Basic bm8tY29sb24=",
        "Basic OnNlY3JldA==",
        "Basic /w==",
    ] {
        let response = app
            .client
            .post(&url)
            .header("authorization", garbled)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_basic_challenge(response).await;
    }
    let wrong = introspect_as(&app, &client.id, &format!("{}x", client.secret), &form).await;
    assert_basic_challenge(wrong).await;
    let unknown = introspect_as(
        &app,
        &uuid::Uuid::new_v4().to_string(),
        &client.secret,
        &form,
    )
    .await;
    assert_basic_challenge(unknown).await;
    // Without credentials, a bad body is not looked at.
    let bad_body = app
        .client
        .post(&url)
        .json(&json!({ "token": user.access_token }))
        .send()
        .await
        .unwrap();
    assert_basic_challenge(bad_body).await;
    // The client's own id as a user's bearer token, or a user's password
    // as a client's: nothing crosses over.
    let user_as_client = introspect_as(&app, &user.email, PASSWORD, &form).await;
    assert_basic_challenge(user_as_client).await;
}

#[tokio::test]
async fn wrong_client_secrets_are_throttled_like_sign_ins() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "3"), ("LOGIN_WINDOW", "600")]).await;
    let admin = app.admin().await;
    let client = create_client(&app, &admin, "brute").await;
    let user = app.new_user().await;
    let form = [("token", user.access_token.as_str())];
    for _ in 0..3 {
        let wrong = introspect_as(&app, &client.id, "lks_guess", &form).await;
        assert_basic_challenge(wrong).await;
    }
    for secret in ["lks_guess", client.secret.as_str()] {
        let locked = introspect_as(&app, &client.id, secret, &form).await;
        assert_eq!(locked.status(), 429, "locked, the right secret too");
        let retry: u64 = locked.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=600).contains(&retry), "{retry}");
        assert_problem(locked, 429).await;
    }
    // Another client is not locked by this one's failures.
    let other = create_client(&app, &admin, "neighbour").await;
    assert_eq!(
        introspect(&app, &other, &user.access_token).await["active"],
        true
    );
    assert_eq!(audit_entries(&app, "client.auth").len(), 3);
    assert!(audit_entries(&app, "client.throttled").len() >= 2);

    app.clock.advance(601);
    let user = app.new_user().await; // the first one's token has expired
    assert_eq!(
        introspect(&app, &client, &user.access_token).await["active"],
        true,
        "the window has passed"
    );
}

#[tokio::test]
async fn bad_introspection_requests_get_a_clear_4xx() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let client = create_client(&app, &admin, "careless").await;
    let user = app.new_user().await;
    let url = app.url("/api/oauth/introspect");
    let request = || {
        app.client
            .post(&url)
            .basic_auth(&client.id, Some(&client.secret))
    };

    let json_body_sent = request()
        .json(&json!({ "token": user.access_token }))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(json_body_sent, 415).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("application/x-www-form-urlencoded")
    );
    for (what, form) in [
        ("no token", vec![("token_type_hint", "access_token")]),
        (
            "an unknown hint",
            vec![
                ("token", user.access_token.as_str()),
                ("token_type_hint", "id_token"),
            ],
        ),
        (
            "the token twice",
            vec![("token", user.access_token.as_str()), ("token", "other")],
        ),
    ] {
        let response = request().form(&form).send().await.unwrap();
        let problem = assert_problem(response, 400).await;
        assert!(problem["detail"].is_string(), "{what}");
    }
    let huge = "t".repeat(70 * 1024);
    let response = request()
        .form(&[("token", huge.as_str())])
        .send()
        .await
        .unwrap();
    assert_problem(response, 413).await;
    let get = app.client.get(&url).send().await.unwrap();
    assert_eq!(get.headers()["allow"], "POST");
    assert_problem(get, 405).await;
    // None of that counted against the client: it was authenticated.
    assert_eq!(
        introspect(&app, &client, &user.access_token).await["active"],
        true
    );
}

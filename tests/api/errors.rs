//! Every error is problem+json, including actix-web's own, and no request
//! produces a 500 or leaks internals.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn an_unknown_route_gets_a_404_problem() {
    let app = spawn_app().await;
    for path in [
        "/nope",
        "/api",
        "/api/users",
        "/api/user/me/extra/parts",
        "/admin/../etc/passwd",
    ] {
        assert_problem(app.get(path, None).await, 404).await;
    }
}

#[tokio::test]
async fn a_method_a_route_lacks_gets_405_with_allow() {
    let app = spawn_app().await;
    let cases = [
        (Method::DELETE, "/healthz", "GET"),
        (Method::POST, "/readyz", "GET"),
        (Method::PUT, "/api/openapi.json", "GET"),
        (Method::DELETE, "/api/user", "GET, POST"),
        (Method::GET, "/api/user/login", "POST"),
        (Method::GET, "/api/user/refresh-token", "POST"),
        (Method::GET, "/api/user/logout", "POST"),
        (Method::DELETE, "/api/user/logout-all", "POST"),
        (Method::POST, "/api/user/me", "GET, PUT, PATCH, DELETE"),
        (Method::GET, "/api/user/me/password", "PUT"),
        (
            Method::POST,
            "/api/user/3f1c0a52-8a8e-4a55-9a0b-3b0b8f7a9c11",
            "GET, PUT, PATCH, DELETE",
        ),
        (
            Method::POST,
            "/api/user/3f1c0a52-8a8e-4a55-9a0b-3b0b8f7a9c11/password",
            "PUT",
        ),
        (Method::DELETE, "/api/admin/keys", "GET"),
        (Method::GET, "/api/admin/keys/rotate", "POST"),
    ];
    for (method, path, allow) in cases {
        let response = app.send(method.clone(), path, None, None).await;
        assert_eq!(
            response.headers().get("allow").map(|v| v.to_str().unwrap()),
            Some(allow),
            "{method} {path}"
        );
        assert_problem(response, 405).await;
    }
}

#[tokio::test]
async fn a_body_not_declared_json_gets_415() {
    let app = spawn_app().await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = app
            .client
            .post(app.url("/api/user/login"))
            .body(r#"{"email":"a@b.co","password":"x"}"#);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        assert_problem(request.send().await.unwrap(), 415).await;
    }
}

#[tokio::test]
async fn a_body_over_64_kib_gets_413_before_it_is_parsed() {
    let app = spawn_app().await;
    let big = format!(
        r#"{{"email":"a@b.co","password":"{}"}}"#,
        "x".repeat(64 * 1024)
    );
    for path in [
        "/api/user/login",
        "/api/user",
        "/api/user/refresh-token",
        "/api/user/logout",
    ] {
        let response = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_problem(response, 413).await;
    }
    let just_under = format!(
        r#"{{"email":"a@b.co","password":"{}"}}"#,
        "x".repeat(60 * 1024)
    );
    let response = app
        .client
        .post(app.url("/api/user/login"))
        .header("content-type", "application/json")
        .body(just_under)
        .send()
        .await
        .unwrap();
    assert_problem(response, 401).await;
}

#[tokio::test]
async fn malformed_json_gets_400() {
    let app = spawn_app().await;
    for body in [
        "",
        "{",
        "[]",
        "null",
        "\"x\"",
        "{\"email\": \"a@b.co\"}",
        "{\"email\":1,\"password\":\"x\"}",
        "{\"email\":\"a@b.co\",\"password\":\"x\",\"extra\":1}",
    ] {
        let response = app
            .client
            .post(app.url("/api/user/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(response, 400).await;
    }
}

/// Throws odd requests at every route and insists that none is answered
/// with a server error, and that no error body leaks internals.
#[tokio::test]
async fn no_odd_request_produces_a_server_error_or_leaks_internals() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    let ids = [
        user.id.clone(),
        admin.id.clone(),
        uuid::Uuid::new_v4().to_string(),
        "me".into(),
        "%00".into(),
        "..%2F..%2Fetc".into(),
        "x".repeat(300),
        "'%20OR%20'1'='1".into(),
    ];
    let bodies = [
        json!({}),
        json!([]),
        json!(null),
        json!(1),
        json!("x"),
        json!({ "first_name": "\u{0}" }),
        json!({ "email": "a".repeat(10_000) }),
        json!({ "role": ["admin"] }),
        json!({ "disabled": "yes" }),
        json!({ "first_name": "A", "last_name": "B", "email": "c@d.ef", "password": PASSWORD, "role": 1 }),
        json!({ "refresh_token": "\u{feff}" }),
        json!({ "revoke_previous": "true" }),
    ];
    let tokens = [
        None,
        Some(user.access_token.as_str()),
        Some(admin.access_token.as_str()),
        Some("garbage"),
    ];
    let mut paths = vec![
        "/api/user".to_owned(),
        "/api/user/login".into(),
        "/api/user/refresh-token".into(),
        "/api/user/logout".into(),
        "/api/user/logout-all".into(),
        "/api/user/me/password".into(),
        "/api/admin/keys".into(),
        "/api/admin/keys/rotate".into(),
        "/api/user?limit=99999999999999999999".into(),
        "/api/user?cursor=%FF%FE".into(),
        "/api/user?q=%25%5F%5C".into(),
    ];
    for id in &ids {
        paths.push(format!("/api/user/{id}"));
        paths.push(format!("/api/user/{id}/password"));
    }
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut checked = 0;
    for path in &paths {
        for method in &methods {
            for token in tokens {
                for body in bodies.iter().take(if *method == Method::GET {
                    1
                } else {
                    bodies.len()
                }) {
                    if path.ends_with("rotate") && token == Some(admin.access_token.as_str()) {
                        continue; // a real rotation would fail the admin's own token
                    }
                    if *method == Method::DELETE && token.is_some_and(|t| t != "garbage") {
                        continue; // would delete the test's own users
                    }
                    let response = app.send(method.clone(), path, token, Some(body)).await;
                    let status = response.status();
                    let text = response.text().await.unwrap();
                    assert!(
                        !status.is_server_error(),
                        "{method} {path} {body} → {status}: {text}"
                    );
                    for leak in [
                        "diesel", "sqlite", "SELECT", "src/", "argon2", "panicked", "Query",
                    ] {
                        assert!(!text.contains(leak), "{method} {path} leaks {leak}: {text}");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 500, "{checked}");
}

#[tokio::test]
async fn a_body_that_is_not_an_object_gets_400_even_with_the_fields_in_order() {
    let app = spawn_app().await;
    let login = json!([ADMIN_EMAIL, ADMIN_PASSWORD]);
    assert_problem(app.post("/api/user/login", None, &login).await, 400).await;
    let registration = json!(["Arr", "Ay", "arr@example.com", PASSWORD]);
    assert_problem(app.post("/api/user", None, &registration).await, 400).await;
}

#[tokio::test]
async fn error_details_never_echo_the_values_sent_or_name_internal_types() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let cases = [
        (
            "/api/user/login",
            json!({ "email": "a@b.co", "password": ["hunter2hunter2"] }),
        ),
        (
            "/api/user/login",
            json!({ "email": "hunter2hunter2", "password": "x", "hunter3": true }),
        ),
        (
            "/api/admin/keys/rotate",
            json!({ "revoke_previous": "hunter2hunter2" }),
        ),
        (
            "/api/user/refresh-token",
            json!({ "refresh_token": { "hunter2hunter2": 1 } }),
        ),
    ];
    for (path, body) in cases {
        let response = app.post(path, Some(&admin.access_token), &body).await;
        let problem = assert_problem(response, 400).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(!detail.contains("hunter2hunter2"), "{path}: {detail}");
        for internal in ["struct", "Request", "RotateRequest", "LoginRequest"] {
            assert!(!detail.contains(internal), "{path}: {detail}");
        }
    }
    let text = app
        .client
        .post(app.url("/api/user/login"))
        .header("content-type", "application/json")
        .body("\"hunter2hunter2\"")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("struct"),
        "{text}"
    );
}

#[tokio::test]
async fn an_allowed_origin_gets_cors_headers_and_another_does_not() {
    let app = spawn_app_with(&[(
        "CORS_ALLOWED_ORIGINS",
        "https://app.example.com, https://admin.example.com",
    )])
    .await;
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/api/user/login"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let simple = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://admin.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    let stranger = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        !stranger
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let refused = app
        .client
        .request(Method::OPTIONS, app.url("/api/user/login"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

/// SECURITY.md 27: no SQL is built from strings. Every query goes through
/// Diesel's builder; the only raw statements are constant pragmas.
#[test]
fn no_sql_is_built_from_strings() {
    fn visit(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let raw = ["sql_query(", "batch_execute(", "dsl::sql(", "dsl::sql::<"];
                    if let Some(call) = raw.iter().find(|call| line.contains(*call)) {
                        let after = line.split(call).nth(1).unwrap_or("").trim_start();
                        if !after.starts_with('"') && !after.is_empty() {
                            found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                        }
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    visit(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(found.is_empty(), "raw SQL from a non-literal: {found:#?}");
}

use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        json_body(response).await,
        serde_json::json!({ "status": "ok" })
    );
}

#[tokio::test]
async fn readyz_answers_ok_when_the_store_answers() {
    let app = spawn_app().await;
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_a_request_id() {
    let app = spawn_app().await;
    for path in ["/healthz", "/api/user/me", "/no/such/path"] {
        let response = app.get(path, None).await;
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(
            h["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert!(!h["x-request-id"].is_empty(), "{path}");
    }
}

#[tokio::test]
async fn a_well_formed_request_id_is_kept_and_a_bad_one_replaced() {
    let app = spawn_app().await;
    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc.DEF_123-x")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "abc.DEF_123-x");
    for bad in ["has space", "semi;colon", &"a".repeat(129)] {
        let replaced = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = replaced.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(id, bad);
        assert!(!id.is_empty() && id.len() <= 128);
    }
    let a = app.get("/healthz", None).await.headers()["x-request-id"].clone();
    let b = app.get("/healthz", None).await.headers()["x-request-id"].clone();
    assert_ne!(a, b, "generated ids are unique");
}

#[tokio::test]
async fn the_openapi_document_describes_every_api_route_and_the_bearer_scheme() {
    let app = spawn_app().await;
    let response = app.get("/api/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    let doc: Value = json_body(response).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let expected = [
        ("/api/user", &["get", "post"][..]),
        ("/api/user/me", &["get"]),
        ("/api/user/{id}", &["get", "put", "patch", "delete"]),
        ("/api/user/me/password", &["put"]),
        ("/api/user/{id}/password", &["put"]),
        ("/api/user/login", &["post"]),
        ("/api/user/refresh-token", &["post"]),
        ("/api/user/logout", &["post"]),
        ("/api/user/logout-all", &["post"]),
        ("/api/admin/keys", &["get"]),
        ("/api/admin/keys/rotate", &["post"]),
    ];
    for (path, methods) in expected {
        for method in methods {
            let op = &doc["paths"][path][method];
            assert!(op.is_object(), "{method} {path} is documented");
            assert!(op["responses"].is_object(), "{method} {path} has responses");
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let login = &doc["paths"]["/api/user/login"]["post"];
    assert!(login["requestBody"]["content"]["application/json"].is_object());
    assert!(doc["components"]["schemas"]["UserView"]["properties"]["email"].is_object());
}

#[tokio::test]
async fn hsts_is_sent_only_when_a_trusted_proxy_says_the_request_came_over_tls() {
    let direct = spawn_app().await;
    let spoofed = direct
        .client
        .get(direct.url("/healthz"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(!spoofed.headers().contains_key("strict-transport-security"));
    let proxied = spawn_app_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let over_tls = proxied
        .client
        .get(proxied.url("/healthz"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        over_tls.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let plain = proxied
        .client
        .get(proxied.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(!plain.headers().contains_key("strict-transport-security"));
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_hold_the_named_series_by_route_pattern() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let user = app.new_user().await;
    app.get(&format!("/api/user/{}", user.id), Some(&user.access_token))
        .await;
    app.get("/no/such/page", None).await;
    app.login(&user.email, "not-the-password-at-all").await;
    let rotated = json_body(app.refresh(&user.refresh_token).await).await;
    app.refresh(&user.refresh_token).await; // reuse
    assert!(rotated["refresh_token"].is_string());
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let id_route =
        "latchkey_http_requests_total{method=\"GET\",route=\"/api/user/{id}\",status=\"403\"}";
    assert!(
        text.contains(id_route) || text.contains("route=\"/api/user/{id}\""),
        "{text}"
    );
    assert!(!text.contains(&user.id), "raw paths never become labels");
    assert!(text.contains("route=\"unmatched\""), "{text}");
    assert!(
        text.contains("latchkey_http_request_duration_seconds_bucket{route=\"/api/user/login\"")
    );
    assert!(text.contains("latchkey_http_request_duration_seconds_sum{route=\"/api/user/login\"}"));
    assert!(
        text.contains("latchkey_http_request_duration_seconds_count{route=\"/api/user/login\"}")
    );
    assert_eq!(
        sample(&text, "latchkey_logins_total{outcome=\"ok\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "latchkey_logins_total{outcome=\"failed\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "latchkey_logins_total{outcome=\"throttled\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "latchkey_refreshes_total{outcome=\"ok\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "latchkey_refreshes_total{outcome=\"reuse\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "latchkey_active_sessions"),
        Some(0.0),
        "the reuse revoked the only session"
    );
    assert!(sample(&text, "latchkey_signing_key_age_seconds").is_some());
    assert!(sample(&text, "latchkey_db_connections_in_use").is_some());
    assert_eq!(sample(&text, "latchkey_hasher_queue_depth"), Some(0.0));
}

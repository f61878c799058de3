//! Forward auth, `/api/auth/verify`: asked directly, and through a real
//! nginx (`auth_request`, the configuration docs/operations.md gives) in
//! front of a small upstream that echoes the headers it receives.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

async fn verify(app: &TestApp, query: &str, token: Option<&str>) -> reqwest::Response {
    app.get(&format!("/api/auth/verify{query}"), token).await
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_valid_token_is_answered_with_who_it_is_in_headers() {
    let app = spawn_app().await;
    let email = unique_email();
    let body = json!({ "first_name": "Zoë", "last_name": "Ærø", "email": email,
                       "password": PASSWORD });
    assert_eq!(app.post("/api/user", None, &body).await.status(), 201);
    let user = app.sign_in(&email, PASSWORD).await;

    let response = verify(&app, "", Some(&user.access_token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "remote-user"), user.id);
    assert_eq!(header(&response, "remote-email"), email);
    assert_eq!(header(&response, "remote-name"), "Zoë Ærø");
    assert_eq!(header(&response, "remote-groups"), "user");
    assert_eq!(header(&response, "cache-control"), "no-store");
    assert!(response.bytes().await.unwrap().is_empty(), "an empty body");

    // Whatever method the proxy forwards, and whatever else is in the query.
    for method in [
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ] {
        let response = app
            .send(
                method.clone(),
                "/api/auth/verify",
                Some(&user.access_token),
                None,
            )
            .await;
        assert_eq!(response.status(), 200, "{method}");
        assert_eq!(header(&response, "remote-user"), user.id, "{method}");
    }
    // No proxy forwards these.
    let trace = app
        .send(
            Method::TRACE,
            "/api/auth/verify",
            Some(&user.access_token),
            None,
        )
        .await;
    assert_eq!(trace.status(), 405);
    let junk = verify(&app, "?x=1&y=%ZZ", Some(&user.access_token)).await;
    assert_eq!(junk.status(), 200);
}

#[tokio::test]
async fn any_token_the_guarded_api_refuses_gets_401_with_a_challenge() {
    let app = spawn_app().await;
    let none = verify(&app, "", None).await;
    assert_eq!(none.status(), 401);
    assert_eq!(header(&none, "www-authenticate"), "Bearer");
    assert_problem(none, 401).await;

    let oversized = "a".repeat(16 * 1024);
    for bad in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not.a.token",
        &format!("Bearer {oversized}"),
    ] {
        let response = app
            .client
            .get(app.url("/api/auth/verify"))
            .header("authorization", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{:.40}", bad);
        assert!(
            header(&response, "www-authenticate").contains("invalid_token"),
            "{:.40}",
            bad
        );
        assert!(header(&response, "remote-user").is_empty());
    }

    // A token that was good: after a logout, after its user is disabled.
    let (admin, gone, disabled) = (
        app.admin().await,
        app.new_user().await,
        app.new_user().await,
    );
    assert_eq!(
        verify(&app, "", Some(&gone.access_token)).await.status(),
        200
    );
    assert_eq!(app.logout_bearer(&gone.access_token).await.status(), 204);
    assert_eq!(
        verify(&app, "", Some(&gone.access_token)).await.status(),
        401
    );
    let patched = app
        .send(
            Method::PATCH,
            &format!("/api/user/{}", disabled.id),
            Some(&admin.access_token),
            Some(&json!({ "disabled": true })),
        )
        .await;
    assert_eq!(patched.status(), 200);
    assert_eq!(
        verify(&app, "", Some(&disabled.access_token))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn role_admin_lets_only_admins_through() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    let refused = verify(&app, "?role=admin", Some(&user.access_token)).await;
    assert_problem(refused, 403).await;
    let admitted = verify(&app, "?role=admin", Some(&admin.access_token)).await;
    assert_eq!(admitted.status(), 200);
    assert_eq!(header(&admitted, "remote-groups"), "admin");
    assert_eq!(
        verify(&app, "?role=user", Some(&admin.access_token))
            .await
            .status(),
        200
    );
    assert_eq!(
        verify(&app, "?role=user", Some(&user.access_token))
            .await
            .status(),
        200
    );
    for bad in ["?role=boss", "?role=", "?role=Admin"] {
        assert_problem(verify(&app, bad, Some(&admin.access_token)).await, 400).await;
    }
}

/// An upstream service that answers every request with the path and the
/// headers it received, and counts the requests.
async fn echo_upstream() -> (String, Arc<AtomicUsize>) {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let server = HttpServer::new(move || {
        let counter = counter.clone();
        App::new().default_service(web::to(move |req: HttpRequest| {
            counter.fetch_add(1, Ordering::SeqCst);
            let headers: serde_json::Map<String, Value> = req
                .headers()
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), Value::String(value))
                })
                .collect();
            let body = json!({ "path": req.path(), "headers": headers });
            async move { HttpResponse::Ok().json(body) }
        }))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let address = server.addrs()[0].to_string();
    tokio::spawn(server.run());
    (address, seen)
}

/// The forward-auth configuration of docs/operations.md (inside `http`):
/// `/app/` for signed-in users, `/admin-app/` for admins; each includes
/// [`forward_snippet`], saved as `latchkey-forward.conf` beside it.
pub fn forward_auth_config(listen: u16, latchkey: &str) -> String {
    let latchkey = latchkey.trim_start_matches("http://");
    format!(
        r#"    upstream latchkey {{
        server {latchkey};
        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{listen};

        location = /_latchkey/verify {{
            internal;
            proxy_pass http://latchkey/api/auth/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location = /_latchkey/verify-admin {{
            internal;
            proxy_pass http://latchkey/api/auth/verify?role=admin;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}

        location /app/ {{
            auth_request /_latchkey/verify;
            include latchkey-forward.conf;
        }}
        location /admin-app/ {{
            auth_request /_latchkey/verify-admin;
            include latchkey-forward.conf;
        }}
    }}"#
    )
}

/// What each protected location does once latchkey said yes: copy its
/// answer onto the request (replacing whatever the client sent under
/// those names), pass the challenge of a 401 on, and forward.
pub fn forward_snippet(app: &str) -> String {
    format!(
        r#"auth_request_set $latchkey_user $upstream_http_remote_user;
auth_request_set $latchkey_email $upstream_http_remote_email;
auth_request_set $latchkey_name $upstream_http_remote_name;
auth_request_set $latchkey_groups $upstream_http_remote_groups;
auth_request_set $latchkey_challenge $upstream_http_www_authenticate;
add_header WWW-Authenticate $latchkey_challenge always;
proxy_set_header Remote-User $latchkey_user;
proxy_set_header Remote-Email $latchkey_email;
proxy_set_header Remote-Name $latchkey_name;
proxy_set_header Remote-Groups $latchkey_groups;
proxy_pass http://{app};
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_lets_through_only_valid_tokens_with_true_headers() {
    let latchkey = spawn_app().await;
    let (upstream, seen) = echo_upstream().await;
    let nginx = crate::nginx::start(|dir, port| {
        std::fs::write(
            dir.join("latchkey-forward.conf"),
            forward_snippet(&upstream),
        )
        .unwrap();
        forward_auth_config(port, &latchkey.address)
    });
    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>, forged: bool| {
        let mut request = client.get(format!("{}{path}", nginx.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if forged {
            request = request
                .header("Remote-User", "someone-else")
                .header("Remote-Groups", "admin");
        }
        request.send()
    };

    // No token: nginx answers 401 (with latchkey's challenge), and the
    // upstream never hears of it.
    let refused = get("/app/hello", None, false).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(header(&refused, "www-authenticate"), "Bearer");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );

    // A valid token: the upstream sees who it is, and only that, whatever
    // the client claimed itself.
    let user = latchkey.new_user().await;
    for forged in [false, true] {
        let response = get("/app/hello", Some(&user.access_token), forged)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let echoed: Value = response.json().await.unwrap();
        let headers = &echoed["headers"];
        assert_eq!(echoed["path"], "/app/hello");
        assert_eq!(headers["remote-user"], user.id.as_str(), "forged: {forged}");
        assert_eq!(headers["remote-email"], user.email.as_str());
        assert_eq!(headers["remote-name"], "Test User");
        assert_eq!(headers["remote-groups"], "user", "forged: {forged}");
    }
    assert_eq!(seen.load(Ordering::SeqCst), 2);

    // The admin location: a user is refused, an admin let through.
    let admin = latchkey.admin().await;
    let forbidden = get("/admin-app/", Some(&user.access_token), true)
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let admitted = get("/admin-app/", Some(&admin.access_token), false)
        .await
        .unwrap();
    assert_eq!(admitted.status(), 200);
    let echoed: Value = admitted.json().await.unwrap();
    assert_eq!(echoed["headers"]["remote-groups"], "admin");
    assert_eq!(seen.load(Ordering::SeqCst), 3);

    // Signed out: the very next request is refused.
    assert_eq!(
        latchkey.logout_bearer(&user.access_token).await.status(),
        204
    );
    let after = get("/app/hello", Some(&user.access_token), false)
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    assert!(header(&after, "www-authenticate").contains("invalid_token"));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "nothing more reached the upstream"
    );
}

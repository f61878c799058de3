//! The admin console over plain HTTP: sessions, CSRF, headers, escaping,
//! and who may see what. (The browser suite in tests/console drives the
//! same pages through Chromium.)

use crate::helpers::*;
use reqwest::{Response, StatusCode};
use serde_json::json;

/// A browser-like client: its own cookie jar, no redirects followed.
pub struct Console<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
}

pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf_token in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

impl<'a> Console<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { app, client }
    }

    /// The same browser, cookies and all, pointed at another app.
    pub fn on<'b>(&self, app: &'b TestApp) -> Console<'b> {
        Console {
            app,
            client: self.client.clone(),
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.app.url(path)).send().await.unwrap()
    }

    async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    /// Posts a form with the CSRF token of the page `from`.
    pub async fn post(&self, from: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = csrf_of(&self.page(from).await);
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &csrf));
        self.client
            .post(self.app.url(path))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Response {
        self.post(
            "/admin/login",
            "/admin/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    pub async fn signed_in_admin(app: &'a TestApp) -> Self {
        let console = Self::new(app);
        let response = console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()["location"], "/admin");
        console
    }
}

fn location(response: &Response) -> &str {
    response.headers()["location"].to_str().unwrap()
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_the_sign_in_page() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    for path in [
        "/admin",
        "/admin/users",
        "/admin/users/new",
        "/admin/keys",
        "/admin/clients",
        "/admin/audit",
    ] {
        let response = console.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), "/admin/login");
    }
    let page = console.page("/admin/login").await;
    assert!(page.contains("name=\"email\"") && page.contains("name=\"password\""));
}

#[tokio::test]
async fn a_bearer_token_opens_nothing_in_the_console_and_the_cookie_nothing_in_the_api() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let response = app.get("/admin/users", Some(&admin.access_token)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let console = Console::signed_in_admin(&app).await;
    assert_eq!(console.get("/admin/users").await.status(), 200);
    let api = console.get("/api/user/me").await;
    assert_eq!(
        api.status(),
        401,
        "the console cookie is not a credential for the API"
    );
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_secure_unless_turned_off() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "true")]).await;
    let response = Console::new(&app).get("/admin/login").await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
    let plain = spawn_app_with(&[("COOKIE_SECURE", "false")]).await;
    let response = Console::new(&plain).get("/admin/login").await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn console_pages_carry_the_strict_csp_and_are_never_cached() {
    let app = spawn_app().await;
    let console = Console::signed_in_admin(&app).await;
    for path in [
        "/admin/login",
        "/admin",
        "/admin/users",
        "/admin/keys",
        "/admin/clients",
        "/admin/audit",
    ] {
        let response = console.get(path).await;
        let h = response.headers();
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        let html = response.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains(" style=\""),
            "{path}: no inline script or style"
        );
    }
    let css = console.get("/static/admin.css").await;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn signing_in_gives_a_new_session_id_and_signing_out_ends_it_on_the_server() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    let before = console.get("/admin/login").await;
    let anonymous_cookie = before.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = csrf_of(&before.text().await.unwrap());
    let form = [
        ("email", ADMIN_EMAIL),
        ("password", ADMIN_PASSWORD),
        ("csrf_token", &csrf),
    ];
    let signed_in = console
        .client
        .post(app.url("/admin/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session_cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(
        anonymous_cookie, session_cookie,
        "a new session id at sign-in"
    );
    let logout = console.post("/admin", "/admin/logout", &[]).await;
    assert_eq!(location(&logout), "/admin/login");
    // Replaying the old cookie from another client opens nothing.
    let replay = app
        .client
        .get(app.url("/admin"))
        .header("cookie", &session_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_and_a_non_admin_gets_403() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    let wrong = console.sign_in(ADMIN_EMAIL, "not-the-admin-password").await;
    assert_eq!(wrong.status(), 401);
    let html = wrong.text().await.unwrap();
    assert!(
        html.contains("The email or password is wrong.") && html.contains(ADMIN_EMAIL),
        "input kept"
    );
    let user = app.new_user().await;
    let refused = console.sign_in(&user.email, PASSWORD).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        console.get("/admin").await.status(),
        StatusCode::SEE_OTHER,
        "no session was opened"
    );
}

#[tokio::test]
async fn a_demoted_admin_gets_403_on_the_next_page() {
    let app = spawn_app().await;
    let second = app.new_admin().await;
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in(&second.email, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(console.get("/admin/users").await.status(), 200);
    let admin = app.admin().await;
    let path = format!("/api/user/{}", second.id);
    let demote = app
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&admin.access_token),
            Some(&json!({"role": "user"})),
        )
        .await;
    assert_eq!(demote.status(), 200);
    assert_eq!(console.get("/admin/users").await.status(), 403);
}

#[tokio::test]
async fn console_sign_in_is_throttled_like_the_api() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    for _ in 0..5 {
        assert_eq!(
            console
                .sign_in(ADMIN_EMAIL, "not-the-admin-password")
                .await
                .status(),
            401
        );
    }
    let locked = console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));
    assert_eq!(
        app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        429,
        "one counter for both"
    );
}

#[tokio::test]
async fn a_form_without_the_right_csrf_token_or_from_another_site_is_refused() {
    let app = spawn_app().await;
    let console = Console::signed_in_admin(&app).await;
    let user = app.new_user().await;
    let target = format!("/admin/users/{}/delete", user.id);
    let csrf = csrf_of(&console.page("/admin").await);
    let no_token = console
        .client
        .post(app.url(&target))
        .form(&[("x", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    let wrong = console
        .client
        .post(app.url(&target))
        .form(&[("csrf_token", "0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let response = console
            .client
            .post(app.url(&target))
            .header(header, value)
            .form(&[("csrf_token", &csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{header}: {value}");
        assert!(response.text().await.unwrap().contains("another site"));
    }
    assert_eq!(
        app.get("/api/user/me", Some(&user.access_token))
            .await
            .status(),
        200,
        "nothing was deleted"
    );
    let same_origin = console
        .client
        .post(app.url(&target))
        .header("origin", &app.address)
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), StatusCode::SEE_OTHER);
    let null_origin = console
        .client
        .post(app.url("/admin/keys/rotate"))
        .header("origin", "null")
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        null_origin.status(),
        StatusCode::SEE_OTHER,
        "a same-origin form under no-referrer sends Origin: null"
    );
}

#[tokio::test]
async fn get_requests_never_change_anything() {
    let app = spawn_app().await;
    let console = Console::signed_in_admin(&app).await;
    let user = app.new_user().await;
    let client = crate::clients::create_client(&app, &app.admin().await, "kept").await;
    for path in [
        format!("/admin/users/{}/delete", user.id),
        "/admin/keys/rotate".into(),
        "/admin/logout".into(),
        format!("/admin/clients/{}/revoke", client.id),
        format!("/admin/users/{}/sessions/revoke-all", user.id),
    ] {
        let response = console.get(&path).await;
        assert!(
            response.status() == 200 || response.status() == 405,
            "{path}: {}",
            response.status()
        );
    }
    assert_eq!(
        app.get("/api/user/me", Some(&user.access_token))
            .await
            .status(),
        200
    );
    assert_eq!(console.get("/admin").await.status(), 200, "still signed in");
    assert_eq!(
        crate::clients::introspect(&app, &client, &user.access_token).await["active"],
        true,
        "the client was not revoked"
    );
}

#[tokio::test]
async fn service_clients_from_the_console_are_guarded_and_escaped() {
    let app = spawn_app().await;
    let console = Console::signed_in_admin(&app).await;
    // Created with a name that is markup: shown as text, on the answer
    // and on the list.
    let name = "<script>alert(1)</script>";
    let created = console
        .post("/admin/clients", "/admin/clients", &[("name", name)])
        .await;
    assert_eq!(created.status(), 200, "the secret is on the answer itself");
    let html = created.text().await.unwrap();
    assert!(html.contains("lks_") && !html.contains(name), "{html}");
    let list = console.page("/admin/clients").await;
    assert!(!list.contains(name) && list.contains("alert(1)"));
    assert!(!list.contains("lks_"), "the list never shows a secret");
    // A refused name keeps what was typed, with the reason.
    let refused = console
        .post(
            "/admin/clients",
            "/admin/clients",
            &[("name", &"n".repeat(101))],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(html.contains("at most 100 characters") && html.contains(&"n".repeat(101)));
    // From another site, nothing is created or revoked.
    let csrf = csrf_of(&console.page("/admin/clients").await);
    let forged = console
        .client
        .post(app.url("/admin/clients"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf_token", csrf.as_str()), ("name", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let admin = app.admin().await;
    let listed = json_body(
        app.get("/api/admin/clients", Some(&admin.access_token))
            .await,
    )
    .await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the first was created: {listed}");
    let id = items[0]["id"].as_str().unwrap();
    let forged = console
        .client
        .post(app.url(&format!("/admin/clients/{id}/revoke")))
        .header("origin", "https://evil.example")
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // An unknown client is a page saying so.
    let unknown = console
        .post("/admin/clients", "/admin/clients/no-such/revoke", &[])
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let revoked = console
        .post(
            "/admin/clients",
            &format!("/admin/clients/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let listed = json_body(
        app.get("/api/admin/clients", Some(&admin.access_token))
            .await,
    )
    .await;
    assert!(listed["items"][0]["revoked_at"].is_string());
}

#[tokio::test]
async fn what_a_user_typed_is_escaped_in_pages() {
    let app = spawn_app().await;
    let body = json!({ "first_name": "<script>alert(1)</script>", "last_name": "\"><img src=x onerror=alert(2)>",
                       "email": unique_email(), "password": PASSWORD });
    let created = json_body(app.post("/api/user", None, &body).await).await;
    let console = Console::signed_in_admin(&app).await;
    for path in [
        "/admin/users".to_owned(),
        format!("/admin/users/{}", created["id"].as_str().unwrap()),
    ] {
        let html = console.page(&path).await;
        assert!(!html.contains("<script>alert(1)</script>"), "{path}");
        assert!(!html.contains("<img src=x"), "{path}");
        let as_text = [
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "&#60;script&#62;alert(1)&#60;/script&#62;",
        ];
        assert!(
            as_text.iter().any(|escaped| html.contains(escaped)),
            "{path} shows it as text"
        );
    }
}

#[tokio::test]
async fn the_setup_link_creates_the_first_admin_once() {
    let app = spawn_app_with(&[("ADMIN_EMAIL", ""), ("ADMIN_PASSWORD", "")]).await;
    let setup = app
        .setup_path
        .clone()
        .expect("a setup link on a store without admins");
    let console = Console::new(&app);
    assert_eq!(console.get("/admin/setup?token=wrong").await.status(), 403);
    assert_eq!(console.get("/admin/setup").await.status(), 403);
    let token = setup.split("token=").nth(1).unwrap();
    let weak = console
        .post(
            &setup,
            "/admin/setup",
            &[
                ("token", token),
                ("first_name", "Root"),
                ("last_name", "Admin"),
                ("email", "root@example.com"),
                ("password", "password"),
            ],
        )
        .await;
    assert_eq!(weak.status(), 422);
    let html = weak.text().await.unwrap();
    assert!(
        html.contains("root@example.com") && html.contains("field-error"),
        "errors shown, input kept"
    );
    let created = console
        .post(
            &setup,
            "/admin/setup",
            &[
                ("token", token),
                ("first_name", "Root"),
                ("last_name", "Admin"),
                ("email", "root@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        console.get("/admin").await.status(),
        200,
        "signed in as the new admin"
    );
    assert_eq!(app.login("root@example.com", PASSWORD).await.status(), 200);
    let again = Console::new(&app);
    assert_eq!(again.get(&setup).await.status(), 403, "the link works once");
}

#[tokio::test]
async fn disabling_an_admin_or_changing_their_password_ends_their_console_sessions() {
    let app = spawn_app().await;
    let first = app.admin().await;
    for action in ["disable", "password"] {
        let other = app.new_admin().await;
        let console = Console::new(&app);
        assert_eq!(
            console.sign_in(&other.email, PASSWORD).await.status(),
            StatusCode::SEE_OTHER
        );
        assert_eq!(console.get("/admin").await.status(), 200);
        let response = match action {
            "disable" => {
                let path = format!("/api/user/{}", other.id);
                app.send(
                    reqwest::Method::PATCH,
                    &path,
                    Some(&first.access_token),
                    Some(&json!({"disabled": true})),
                )
                .await
            }
            _ => {
                let body = json!({ "current_password": PASSWORD, "new_password": "cobalt-meadow-lantern-77" });
                app.send(
                    reqwest::Method::PUT,
                    "/api/user/me/password",
                    Some(&other.access_token),
                    Some(&body),
                )
                .await
            }
        };
        assert!(response.status().is_success(), "{action}");
        assert_eq!(
            console.get("/admin").await.status(),
            StatusCode::SEE_OTHER,
            "{action} ends the console session"
        );
    }
}

#[tokio::test]
async fn a_console_session_ends_after_its_idle_and_absolute_timeouts() {
    let app = spawn_app_with(&[("CONSOLE_IDLE_TIMEOUT", "600"), ("CONSOLE_MAX_AGE", "1000")]).await;
    let console = Console::signed_in_admin(&app).await;
    app.clock.advance(500);
    assert_eq!(console.get("/admin").await.status(), 200);
    app.clock.advance(400);
    assert_eq!(
        console.get("/admin").await.status(),
        200,
        "each request renews the idle timeout"
    );
    app.clock.advance(200);
    assert_eq!(
        console.get("/admin").await.status(),
        StatusCode::SEE_OTHER,
        "the absolute timeout holds"
    );
    let idle = Console::signed_in_admin(&app).await;
    app.clock.advance(601);
    assert_eq!(
        idle.get("/admin").await.status(),
        StatusCode::SEE_OTHER,
        "idle too long"
    );
}

#[tokio::test]
async fn console_actions_are_written_to_the_audit_log() {
    let app = spawn_app().await;
    let console = Console::signed_in_admin(&app).await;
    let user = app.new_user().await;
    let edit = format!("/admin/users/{}", user.id);
    let saved = console
        .post(
            &edit,
            &edit,
            &[
                ("first_name", "Renamed"),
                ("last_name", "User"),
                ("email", &user.email),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let unlock = console.post(&edit, &format!("{edit}/unlock"), &[]).await;
    assert_eq!(unlock.status(), StatusCode::SEE_OTHER);
    let audit = console
        .page(&format!("/admin/audit?target={}", user.id))
        .await;
    for action in ["user.update", "user.unlock", "user.create"] {
        assert!(audit.contains(action), "{action} in {audit}");
    }
    assert!(audit.contains("Renamed"), "the change's detail is shown");
}

/// The text of each `<td>` of a table row.
fn cells(row: &str) -> Vec<String> {
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let text = &cell[cell.find('>').unwrap() + 1..];
            text[..text.find("</td>").unwrap()].trim().to_owned()
        })
        .collect()
}

fn rows(html: &str) -> usize {
    html.split("<tbody>").nth(1).map_or(0, |body| {
        body.split("</tbody>")
            .next()
            .unwrap()
            .matches("<tr>")
            .count()
    })
}

fn next_link(html: &str, marker: &str) -> Option<String> {
    let end = html.find(marker)?;
    let start = html[..end].rfind("href=\"")? + 6;
    Some(
        html[start..html[start..].find('"').unwrap() + start]
            .replace("&amp;", "&")
            .replace("&#38;", "&"),
    )
}

#[tokio::test]
async fn the_user_table_sorts_and_pages_and_the_audit_log_pages_too() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let creations = (0..54).map(|n| {
        let body = json!({ "first_name": format!("P{n:02}"), "last_name": "Pager", "email": format!("pager{n:02}@example.com"),
                           "password": PASSWORD });
        let (app, token) = (&app, admin.access_token.clone());
        async move { app.post("/api/user", Some(&token), &body).await.status() }
    });
    for status in futures_util::future::join_all(creations).await {
        assert_eq!(status, 201);
    }
    let console = Console::signed_in_admin(&app).await;
    let first = console.page("/admin/users?q=pager&sort=email").await;
    assert_eq!(rows(&first), 50);
    let a = first.find("pager00@example.com").unwrap();
    let b = first.find("pager01@example.com").unwrap();
    assert!(a < b, "sorted by email");
    assert!(!first.contains("pager50@example.com"));
    let next = next_link(&first, ">Next page<").expect("a next page");
    let second = console.page(&next).await;
    assert_eq!(rows(&second), 4);
    assert!(second.contains("pager53@example.com") && !second.contains("pager00@example.com"));
    assert!(next_link(&second, ">Next page<").is_none());
    let by_login = console.page("/admin/users?sort=last_login").await;
    // Never-signed-in users tie on last_login and follow in id order
    // (random UUIDs), so whichever of them comes first on this page.
    let admin_row = by_login.find(ADMIN_EMAIL).unwrap();
    assert!(
        admin_row < by_login.find("pager").unwrap(),
        "signed-in users before never-signed-in"
    );
    assert_eq!(
        console.get("/admin/users?sort=sideways").await.status(),
        400
    );
    assert_eq!(
        console.get("/admin/users?cursor=garbled").await.status(),
        400
    );
    let audit = console.page("/admin/audit?action=user.create").await;
    assert_eq!(rows(&audit), 50);
    let older = console
        .page(&next_link(&audit, ">Older entries<").expect("older entries"))
        .await;
    assert_eq!(rows(&older), 5, "54 creations and the ADMIN_EMAIL admin's");
    assert_eq!(console.get("/admin/audit?before=x").await.status(), 400);
}

#[tokio::test]
async fn a_search_keeps_each_sort_order() {
    let app = spawn_app().await;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let email = |name: &str| format!("{name}-{tag}@sorting.example");
    for name in ["bravo", "alpha", "charlie"] {
        let body = json!({ "first_name": "Sort", "last_name": "Check", "email": email(name),
                           "password": PASSWORD });
        assert_eq!(app.post("/api/user", None, &body).await.status(), 201);
    }
    app.sign_in(&email("charlie"), PASSWORD).await;
    app.sign_in(&email("bravo"), PASSWORD).await;
    let console = Console::signed_in_admin(&app).await;
    let order = |html: &str| -> Vec<&'static str> {
        let mut found: Vec<(usize, &'static str)> = ["alpha", "bravo", "charlie"]
            .into_iter()
            .map(|name| (html.find(&email(name)).expect(name), name))
            .collect();
        found.sort();
        found.into_iter().map(|(_, name)| name).collect()
    };
    let page = |sort: &str| format!("/admin/users?q={tag}&sort={sort}");
    assert_eq!(
        order(&console.page(&page("email")).await),
        ["alpha", "bravo", "charlie"]
    );
    assert_eq!(
        order(&console.page(&page("created")).await),
        ["charlie", "alpha", "bravo"],
        "newest first"
    );
    assert_eq!(
        order(&console.page(&page("last_login")).await),
        ["bravo", "charlie", "alpha"],
        "latest sign-in first, never signed in last"
    );
}

#[tokio::test]
async fn a_users_page_lists_each_api_session_with_its_client_and_its_first_refresh_token_works() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    // A second sign-in, from a client that names itself.
    let response = app
        .client
        .post(app.url("/api/user/login"))
        .header("User-Agent", "FieldApp/7.1 (sessions test)")
        .json(&json!({ "email": user.email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let second = json_body(response).await;
    let console = Console::signed_in_admin(&app).await;
    let page = console.page(&format!("/admin/users/{}", user.id)).await;
    assert_eq!(
        page.matches("/sessions/").count() - page.matches("/sessions/revoke-all").count(),
        2,
        "one revoke form per session: {page}"
    );
    let named = page.find("FieldApp/7.1").expect("the user agent is shown");
    let row = &page[page[..named].rfind("<tr>").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert_eq!(
        &cells(row)[..2],
        ["127.0.0.1", "FieldApp/7.1 (sessions test)"],
        "address, then user agent: {row}"
    );
    // Each session's first refresh token was stored with it.
    for token in [
        user.refresh_token.as_str(),
        second["refresh_token"].as_str().unwrap(),
    ] {
        assert_eq!(app.refresh(token).await.status(), StatusCode::OK);
    }
}

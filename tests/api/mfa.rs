//! Two-factor sign-in (TOTP): enrolment, the two-step sign-in, recovery
//! codes, turning it off and an admin's reset. The codes are computed here
//! from the secret with an RFC 6238 implementation of the test's own
//! (HMAC-SHA-1 from the `hmac` and `sha1` crates, base32 by hand), not the
//! server's `totp-rs`.

use crate::console::Console;
use crate::helpers::*;
use crate::totp_codes::{base32_decode, code_at};
use latchkey::clock::Clock;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

#[test]
fn the_tests_own_totp_gives_the_rfc_6238_values() {
    // RFC 6238 appendix B (SHA-1), the last six of the eight digits.
    let secret = b"12345678901234567890";
    assert_eq!(code_at(secret, 59), "287082");
    assert_eq!(code_at(secret, 1111111109), "081804");
    assert_eq!(code_at(secret, 1234567890), "005924");
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQ"), b"1234567890");
}

/// A user with two-factor sign-in on: their secret and recovery codes.
struct Enrolled {
    user: TestUser,
    secret: Vec<u8>,
    recovery_codes: Vec<String>,
}

impl Enrolled {
    /// The code of the app's current step.
    fn code(&self, app: &TestApp) -> String {
        code_at(&self.secret, app.clock.now().timestamp())
    }
}

async fn enrol(app: &TestApp, user: &TestUser) -> Vec<u8> {
    let started = app
        .post(
            "/api/user/me/mfa/totp",
            Some(&user.access_token),
            &json!({}),
        )
        .await;
    assert_eq!(started.status(), 200);
    assert_eq!(started.headers()["cache-control"], "no-store");
    let body = json_body(started).await;
    let secret = body["secret"].as_str().unwrap();
    let url = body["otpauth_url"].as_str().unwrap();
    assert!(
        url.starts_with("otpauth://totp/latchkey:")
            && url.contains(&format!("secret={secret}"))
            && url.contains("algorithm=SHA1&digits=6&period=30"),
        "{url}"
    );
    let secret = base32_decode(secret);
    assert_eq!(secret.len(), 20, "160 bits");
    secret
}

/// A new user who enrolled and confirmed.
async fn enrolled_user(app: &TestApp) -> Enrolled {
    let user = app.new_user().await;
    let secret = enrol(app, &user).await;
    let code = code_at(&secret, app.clock.now().timestamp());
    let confirmed = app
        .post(
            "/api/user/me/mfa/totp/confirm",
            Some(&user.access_token),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    let codes: Vec<String> = json_body(confirmed).await["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    // The confirming code's step is spent: the next sign-in needs the next.
    app.clock.advance(30);
    Enrolled {
        user,
        secret,
        recovery_codes: codes,
    }
}

/// Signs in with the password and returns the `mfa_token` of the 401.
async fn first_step(app: &TestApp, user: &TestUser) -> String {
    let response = app.login(&user.email, &user.password).await;
    let problem = assert_problem(response, 401).await;
    assert_eq!(problem["type"], "urn:latchkey:problem:mfa-required");
    assert!(problem.get("access_token").is_none());
    problem["mfa_token"].as_str().unwrap().to_owned()
}

async fn second_step(app: &TestApp, body: Value) -> Response {
    app.post("/api/user/login/mfa", None, &body).await
}

async fn me(app: &TestApp, token: &str) -> Value {
    let response = app.get("/api/user/me", Some(token)).await;
    assert_eq!(response.status(), 200);
    json_body(response).await
}

fn audit_actions(app: &TestApp, user: &str) -> Vec<(String, String)> {
    use diesel::prelude::*;
    use latchkey::db::schema::audit_log;
    audit_log::table
        .filter(audit_log::target.eq(user))
        .order(audit_log::id)
        .select((audit_log::action, audit_log::outcome))
        .load(&mut app.store())
        .unwrap()
}

#[tokio::test]
async fn enrolling_and_signing_in_with_a_code() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    assert_eq!(me(&app, &user.access_token).await["mfa"], false);
    let secret = enrol(&app, &user).await;
    // Pending: sign-in is unchanged until a code confirms it.
    assert_eq!(app.login(&user.email, PASSWORD).await.status(), 200);
    let wrong = app
        .post(
            "/api/user/me/mfa/totp/confirm",
            Some(&user.access_token),
            &json!({ "code": code_at(&secret, app.clock.now().timestamp() - 120) }),
        )
        .await;
    let problem = assert_problem(wrong, 422).await;
    assert!(problem["errors"]["code"].is_array());
    let confirmed = app
        .post(
            "/api/user/me/mfa/totp/confirm",
            Some(&user.access_token),
            &json!({ "code": code_at(&secret, app.clock.now().timestamp()) }),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    let codes = json_body(confirmed).await["recovery_codes"].clone();
    let codes = codes.as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let mut distinct: Vec<&str> = codes.iter().map(|c| c.as_str().unwrap()).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    assert_eq!(me(&app, &user.access_token).await["mfa"], true);

    // The password alone opens nothing; the mfa_token is no credential.
    let mfa_token = first_step(&app, &user).await;
    assert_invalid_token(app.get("/api/user/me", Some(&mfa_token)).await).await;
    assert_eq!(app.refresh(&mfa_token).await.status(), 401);
    // The confirming code's step was spent.
    let replayed = second_step(
        &app,
        json!({ "mfa_token": mfa_token, "code": code_at(&secret, app.clock.now().timestamp()) }),
    )
    .await;
    assert_problem(replayed, 401).await;
    app.clock.advance(30);
    let signed_in = second_step(
        &app,
        json!({ "mfa_token": mfa_token, "code": code_at(&secret, app.clock.now().timestamp()) }),
    )
    .await;
    assert_eq!(signed_in.status(), 200);
    assert_eq!(signed_in.headers()["cache-control"], "no-store");
    let tokens = json_body(signed_in).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(me(&app, access).await["id"], user.id.as_str());
    assert_eq!(
        app.refresh(tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let actions = audit_actions(&app, &user.id);
    for expected in [
        ("mfa.enrol", "ok"),
        ("mfa.enable", "ok"),
        ("login.mfa_required", "ok"),
        ("login", "failed"),
        ("login", "ok"),
    ] {
        assert!(
            actions.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn a_code_is_accepted_once_and_an_old_one_not_at_all() {
    let app = spawn_app().await;
    let enrolled = enrolled_user(&app).await;
    let code = enrolled.code(&app);
    let first = first_step(&app, &enrolled.user).await;
    let ok = second_step(&app, json!({ "mfa_token": first, "code": code })).await;
    assert_eq!(ok.status(), 200);
    // The same code again, in a new sign-in, within its 30 seconds.
    let second = first_step(&app, &enrolled.user).await;
    let replay = second_step(&app, json!({ "mfa_token": second, "code": code })).await;
    assert_problem(replay, 401).await;
    // A code from two steps ago (a minute) is out of the window.
    app.clock.advance(60);
    let stale = code_at(&enrolled.secret, app.clock.now().timestamp() - 60);
    let old = second_step(&app, json!({ "mfa_token": second, "code": stale })).await;
    assert_problem(old, 401).await;
    // One step of skew either way is allowed.
    let previous = code_at(&enrolled.secret, app.clock.now().timestamp() - 30);
    let skewed = second_step(&app, json!({ "mfa_token": second, "code": previous })).await;
    assert_eq!(skewed.status(), 200);
}

#[tokio::test]
async fn recovery_codes_work_once_and_new_ones_void_the_old() {
    let app = spawn_app().await;
    let enrolled = enrolled_user(&app).await;
    let code = &enrolled.recovery_codes[0];
    let token = first_step(&app, &enrolled.user).await;
    // Typed in capitals with a space: the same code.
    let typed = code.to_uppercase().replace('-', " ");
    let ok = second_step(&app, json!({ "mfa_token": token, "recovery_code": typed })).await;
    assert_eq!(ok.status(), 200);
    let token = first_step(&app, &enrolled.user).await;
    let again = second_step(&app, json!({ "mfa_token": token, "recovery_code": code })).await;
    assert_problem(again, 401).await;

    // New codes (proven by a current code): the old ones stop working.
    let replaced = app
        .post(
            "/api/user/me/mfa/recovery-codes",
            Some(&enrolled.user.access_token),
            &json!({ "code": enrolled.code(&app) }),
        )
        .await;
    assert_eq!(replaced.status(), 200);
    let fresh = json_body(replaced).await["recovery_codes"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let old = second_step(
        &app,
        json!({ "mfa_token": token, "recovery_code": enrolled.recovery_codes[1] }),
    )
    .await;
    assert_problem(old, 401).await;
    let new = second_step(&app, json!({ "mfa_token": token, "recovery_code": fresh })).await;
    assert_eq!(new.status(), 200);
}

#[tokio::test]
async fn wrong_codes_count_toward_the_account_throttle() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES", "3")]).await;
    let enrolled = enrolled_user(&app).await;
    let token = first_step(&app, &enrolled.user).await;
    for wrong in ["000000", "111111", "222222"] {
        let refused = second_step(&app, json!({ "mfa_token": token, "code": wrong })).await;
        assert_problem(refused, 401).await;
    }
    let locked = second_step(
        &app,
        json!({ "mfa_token": token, "code": enrolled.code(&app) }),
    )
    .await;
    assert_eq!(locked.status(), 429, "locked, the right code too");
    assert!(locked.headers().contains_key("retry-after"));
    assert_eq!(
        app.login(&enrolled.user.email, PASSWORD).await.status(),
        429,
        "the password step too: it is one account"
    );
}

#[tokio::test]
async fn an_mfa_token_is_single_use_short_lived_and_bound_to_its_user() {
    let app = spawn_app().await;
    let alice = enrolled_user(&app).await;
    let bob = enrolled_user(&app).await;
    // Bob's code with Alice's token: refused.
    let token = first_step(&app, &alice.user).await;
    let crossed = second_step(&app, json!({ "mfa_token": token, "code": bob.code(&app) })).await;
    assert_problem(crossed, 401).await;
    // Used once: spent.
    let ok = second_step(
        &app,
        json!({ "mfa_token": token, "code": alice.code(&app) }),
    )
    .await;
    assert_eq!(ok.status(), 200);
    app.clock.advance(30);
    let twice = second_step(
        &app,
        json!({ "mfa_token": token, "code": alice.code(&app) }),
    )
    .await;
    assert_problem(twice, 401).await;
    // Five minutes later: expired.
    let late = first_step(&app, &alice.user).await;
    app.clock.advance(301);
    let expired = second_step(&app, json!({ "mfa_token": late, "code": alice.code(&app) })).await;
    let problem = assert_problem(expired, 401).await;
    assert!(problem["detail"].as_str().unwrap().contains("mfa_token"));
    for unknown in ["", "not-a-token", &"x".repeat(5000)] {
        let response = second_step(&app, json!({ "mfa_token": unknown, "code": "123456" })).await;
        assert_problem(response, 401).await;
    }
}

#[tokio::test]
async fn bad_second_factor_input_gets_a_clear_4xx_and_changes_nothing() {
    let app = spawn_app().await;
    let enrolled = enrolled_user(&app).await;
    let token = first_step(&app, &enrolled.user).await;
    for code in ["12345", "1234567", "12a456", "", "１２３４５６"] {
        let response = second_step(&app, json!({ "mfa_token": token, "code": code })).await;
        let problem = assert_problem(response, 422).await;
        assert!(problem["errors"]["code"].is_array(), "{code:?}");
    }
    for body in [
        json!({ "mfa_token": token }),
        json!({ "mfa_token": token, "code": "123456", "recovery_code": "2345-6789ab" }),
        json!({ "mfa_token": token, "code": 123456 }),
        json!({ "code": "123456" }),
        json!({ "mfa_token": token, "code": "123456", "extra": true }),
    ] {
        assert_problem(second_step(&app, body).await, 400).await;
    }
    let bad_recovery =
        second_step(&app, json!({ "mfa_token": token, "recovery_code": "0000" })).await;
    assert_problem(bad_recovery, 422).await;
    // None of that spent the token or counted as a failure.
    let ok = second_step(
        &app,
        json!({ "mfa_token": token, "code": enrolled.code(&app) }),
    )
    .await;
    assert_eq!(ok.status(), 200);

    // Confirm without an enrolment; a second enrolment while on.
    let plain = app.new_user().await;
    let confirm = app
        .post(
            "/api/user/me/mfa/totp/confirm",
            Some(&plain.access_token),
            &json!({ "code": "123456" }),
        )
        .await;
    assert_problem(confirm, 409).await;
    let again = app
        .post(
            "/api/user/me/mfa/totp",
            Some(&enrolled.user.access_token),
            &json!({}),
        )
        .await;
    assert_problem(again, 409).await;
    assert_eq!(me(&app, &enrolled.user.access_token).await["mfa"], true);
}

#[tokio::test]
async fn turning_it_off_takes_the_password_and_a_code() {
    let app = spawn_app().await;
    let enrolled = enrolled_user(&app).await;
    let token = &enrolled.user.access_token;
    let off = |body: Value| {
        let app = &app;
        async move {
            app.send(Method::DELETE, "/api/user/me/mfa", Some(token), Some(&body))
                .await
        }
    };
    let wrong_password =
        off(json!({ "password": "not-it-at-all", "code": enrolled.code(&app) })).await;
    assert_problem(wrong_password, 401).await;
    let wrong_code = off(json!({ "password": PASSWORD, "code": "000000" })).await;
    assert_problem(wrong_code, 401).await;
    assert_eq!(me(&app, token).await["mfa"], true, "still on");
    let done = off(json!({ "password": PASSWORD, "code": enrolled.code(&app) })).await;
    assert_eq!(done.status(), 204);
    assert_eq!(me(&app, token).await["mfa"], false);
    assert_eq!(
        app.login(&enrolled.user.email, PASSWORD).await.status(),
        200
    );
    let twice = off(json!({ "password": PASSWORD, "code": "123456" })).await;
    assert_problem(twice, 409).await;
}

#[tokio::test]
async fn an_admin_reset_turns_it_off_and_ends_the_users_sessions() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let enrolled = enrolled_user(&app).await;
    let path = format!("/api/user/{}/mfa", enrolled.user.id);
    let other = app.new_user().await;
    let refused = app
        .send(Method::DELETE, &path, Some(&other.access_token), None)
        .await;
    assert_problem(refused, 403).await;
    let reset = app
        .send(Method::DELETE, &path, Some(&admin.access_token), None)
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_invalid_token(
        app.get("/api/user/me", Some(&enrolled.user.access_token))
            .await,
    )
    .await;
    assert_eq!(
        app.refresh(&enrolled.user.refresh_token).await.status(),
        401
    );
    let back = app.sign_in(&enrolled.user.email, PASSWORD).await;
    assert_eq!(me(&app, &back.access_token).await["mfa"], false);
    let again = app
        .send(Method::DELETE, &path, Some(&admin.access_token), None)
        .await;
    assert_problem(again, 409).await;
    let unknown = app
        .send(
            Method::DELETE,
            &format!("/api/user/{}/mfa", uuid::Uuid::new_v4()),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_problem(unknown, 404).await;
    assert!(audit_actions(&app, &enrolled.user.id).contains(&("mfa.reset".into(), "ok".into())));
}

#[tokio::test]
async fn the_console_asks_an_admin_with_mfa_for_a_code() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let secret = enrol(&app, &admin).await;
    let confirmed = app
        .post(
            "/api/user/me/mfa/totp/confirm",
            Some(&admin.access_token),
            &json!({ "code": code_at(&secret, app.clock.now().timestamp()) }),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    app.clock.advance(30);
    let console = Console::new(&app);
    let step = console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(step.status(), 200, "the code step, not yet signed in");
    let html = step.text().await.unwrap();
    assert!(html.contains("name=\"code\"") && html.contains("name=\"mfa_token\""));
    assert_eq!(console.get("/admin/users").await.status(), 303);
    let marker = "name=\"mfa_token\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let mfa_token = &html[start..start + html[start..].find('"').unwrap()];
    let wrong = console
        .post(
            "/admin/login",
            "/admin/login/mfa",
            &[("mfa_token", mfa_token), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("not right"));
    let code = code_at(&secret, app.clock.now().timestamp());
    let right = console
        .post(
            "/admin/login",
            "/admin/login/mfa",
            &[("mfa_token", mfa_token), ("code", &code)],
        )
        .await;
    assert_eq!(right.status(), 303);
    assert_eq!(console.get("/admin/users").await.status(), 200);
}

/// The value of the input with `id` in `html`.
fn input_value(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let marker = "value=\"";
    let start = at + html[at..].find(marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn an_admin_sets_it_up_in_the_console_with_a_qr_code() {
    let app = spawn_app().await;
    let console = Console::signed_in_admin(&app).await;
    let page = console.get("/admin/account").await.text().await.unwrap();
    assert!(page.contains("Set up two-factor sign-in"), "{page}");
    let started = console
        .post("/admin/account", "/admin/account/mfa/enrol", &[])
        .await;
    assert_eq!(started.status(), 303);
    let page = console.get("/admin/account").await.text().await.unwrap();
    assert!(
        page.contains("<svg role=\"img\""),
        "a QR code drawn on the server"
    );
    assert!(!page.contains("<script") && !page.contains(" style=\"") && !page.contains("<img"));
    let secret = base32_decode(&input_value(&page, "secret"));
    let wrong = console
        .post(
            "/admin/account",
            "/admin/account/mfa/confirm",
            &[("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status(), 422);
    let again = wrong.text().await.unwrap();
    assert!(
        again.contains("is not the code") && again.contains("<svg"),
        "shown again"
    );
    let code = code_at(&secret, app.clock.now().timestamp());
    let confirmed = console
        .post(
            "/admin/account",
            "/admin/account/mfa/confirm",
            &[("code", &code)],
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    let codes_page = confirmed.text().await.unwrap();
    assert_eq!(codes_page.matches("<li><code>").count(), 10);
    let page = console.get("/admin/account").await.text().await.unwrap();
    assert!(page.contains("10 of 10 recovery codes left"), "{page}");
    let token = {
        let admin = TestUser {
            id: String::new(),
            email: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
            access_token: String::new(),
            refresh_token: String::new(),
        };
        first_step(&app, &admin).await
    };
    app.clock.advance(30);
    let code = code_at(&secret, app.clock.now().timestamp());
    let signed_in = second_step(&app, json!({ "mfa_token": token, "code": code })).await;
    assert_eq!(signed_in.status(), 200);
    let access = json_body(signed_in).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(me(&app, &access).await["mfa"], true);

    // Off again: the password and a code.
    app.clock.advance(30);
    let code = code_at(&secret, app.clock.now().timestamp());
    let wrong_password = console
        .post(
            "/admin/account",
            "/admin/account/mfa/off",
            &[("password", "not-the-password"), ("code", &code)],
        )
        .await;
    assert_eq!(wrong_password.status(), 401);
    let off = console
        .post(
            "/admin/account",
            "/admin/account/mfa/off",
            &[("password", ADMIN_PASSWORD), ("code", &code)],
        )
        .await;
    assert_eq!(off.status(), 303);
    assert_eq!(app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn an_admin_resets_a_users_mfa_from_the_users_page() {
    let app = spawn_app().await;
    let enrolled = enrolled_user(&app).await;
    let console = Console::signed_in_admin(&app).await;
    let path = format!("/admin/users/{}", enrolled.user.id);
    let page = console.get(&path).await.text().await.unwrap();
    assert!(page.contains("Turn off and end their sessions"));
    let reset = console.post(&path, &format!("{path}/mfa/reset"), &[]).await;
    assert_eq!(reset.status(), 303);
    let page = console.get(&path).await.text().await.unwrap();
    assert!(page.contains("Two-factor sign-in is off for"), "{page}");
    assert_invalid_token(
        app.get("/api/user/me", Some(&enrolled.user.access_token))
            .await,
    )
    .await;
    assert_eq!(
        app.login(&enrolled.user.email, PASSWORD).await.status(),
        200
    );
}

#[tokio::test]
async fn with_mfa_required_for_admins_an_admin_can_only_enrol() {
    let app = spawn_app_with(&[("MFA_REQUIRED_FOR_ADMINS", "true")]).await;
    let admin = app.admin().await;
    for path in ["/api/user", "/api/admin/keys", "/api/admin/clients"] {
        let refused = app.get(path, Some(&admin.access_token)).await;
        let problem = assert_problem(refused, 403).await;
        assert_eq!(
            problem["type"], "urn:latchkey:problem:mfa-enrollment-required",
            "{path}"
        );
    }
    // Users are not concerned; the admin's own account works.
    let user = app.new_user().await;
    assert_eq!(me(&app, &user.access_token).await["mfa"], false);
    assert_eq!(me(&app, &admin.access_token).await["mfa"], false);

    // The console: nothing but /admin/account.
    let console = Console::signed_in_admin(&app).await;
    for path in ["/admin", "/admin/users", "/admin/keys"] {
        let response = console.get(path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/admin/account", "{path}");
    }
    assert!(
        console
            .get("/admin/account")
            .await
            .text()
            .await
            .unwrap()
            .contains("admins need it here")
    );

    // Enrolled through the API: the same token may act as an admin.
    let secret = enrol(&app, &admin).await;
    let confirmed = app
        .post(
            "/api/user/me/mfa/totp/confirm",
            Some(&admin.access_token),
            &json!({ "code": code_at(&secret, app.clock.now().timestamp()) }),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    assert_eq!(
        app.get("/api/user", Some(&admin.access_token))
            .await
            .status(),
        200
    );
    assert_eq!(console.get("/admin/users").await.status(), 200);
}

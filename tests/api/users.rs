//! `/api/user`: registration, profiles, authorization, listing, deletion.

use crate::helpers::*;
use diesel::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

fn registration(email: &str) -> Value {
    json!({ "first_name": "Ada", "last_name": "Lovelace", "email": email, "password": PASSWORD })
}

#[tokio::test]
async fn registration_returns_201_the_user_and_its_location() {
    let app = spawn_app().await;
    let email = unique_email();
    let response = app.post("/api/user", None, &registration(&email)).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let user = json_body(response).await;
    assert_eq!(
        location,
        format!("/api/user/{}", user["id"].as_str().unwrap())
    );
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
    assert_eq!(user["first_name"], "Ada");
    assert_eq!(user["last_name"], "Lovelace");
    assert_eq!(user["email"], email);
    assert_eq!(user["role"], "user");
    assert_eq!(user["disabled"], false);
    assert_eq!(user["last_login_at"], Value::Null);
    assert_eq!(user["mfa"], false);
    assert_eq!(user["email_verified"], false);
    let created = user["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.ends_with('Z'),
        "{created}"
    );
    let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 11, "exactly the documented fields: {keys:?}");
}

#[tokio::test]
async fn registration_trims_names_and_normalises_the_email() {
    let app = spawn_app().await;
    let body = json!({ "first_name": "  Grace ", "last_name": " Hopper\t", "email": "  Grace.Hopper@Example.COM ",
                       "password": PASSWORD });
    let user = json_body(app.post("/api/user", None, &body).await).await;
    assert_eq!(user["first_name"], "Grace");
    assert_eq!(user["last_name"], "Hopper");
    assert_eq!(user["email"], "grace.hopper@example.com");
    assert_eq!(
        app.login("GRACE.HOPPER@example.com ", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn registration_refuses_values_that_break_a_rule_with_422_per_field() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Value)> = vec![
        ("email", json!("not-an-email")),
        ("email", json!(format!("{}@example.com", "a".repeat(250)))),
        ("first_name", json!("   ")),
        ("first_name", json!("x".repeat(101))),
        ("last_name", json!("Love\u{0007}lace")),
        ("password", json!("short")),
        ("password", json!("password")),
        ("password", json!("12345678")),
        ("password", json!("qwertyuiop")),
        ("password", json!("Zq9!".repeat(33))),
    ];
    for (field, value) in cases {
        let mut body = registration(&unique_email());
        body[field] = value.clone();
        let problem = assert_problem(app.post("/api/user", None, &body).await, 422).await;
        assert!(
            problem["errors"][field].is_array(),
            "{field}={value}: {problem}"
        );
    }
}

#[tokio::test]
async fn a_password_of_128_characters_with_spaces_and_unicode_is_accepted_as_typed() {
    let app = spawn_app().await;
    let password: String = " Żółw jedzie rowerem przez Kraków, a wieloryb śpiewa fado w Lizbonie; tymczasem kot pisze \
                            kompilator o północy 42 "
        .chars()
        .take(128)
        .collect();
    let email = unique_email();
    let mut body = registration(&email);
    body["password"] = json!(password);
    assert_eq!(app.post("/api/user", None, &body).await.status(), 201);
    assert_eq!(app.login(&email, &password).await.status(), 200);
    assert_eq!(
        app.login(&email, password.trim()).await.status(),
        401,
        "never trimmed"
    );
}

#[tokio::test]
async fn registration_refuses_malformed_bodies_with_400() {
    let app = spawn_app().await;
    let mut unknown = registration(&unique_email());
    unknown["nickname"] = json!("ada");
    let mut missing = registration(&unique_email());
    missing.as_object_mut().unwrap().remove("last_name");
    let mut wrong_type = registration(&unique_email());
    wrong_type["first_name"] = json!(42);
    for body in [
        unknown,
        missing,
        wrong_type,
        json!([1, 2]),
        json!("text"),
        json!(null),
    ] {
        assert_problem(app.post("/api/user", None, &body).await, 400).await;
    }
    let not_json = app
        .client
        .post(app.url("/api/user"))
        .header("content-type", "application/json")
        .body("{\"first_name\": ")
        .send()
        .await
        .unwrap();
    assert_problem(not_json, 400).await;
}

#[tokio::test]
async fn role_or_disabled_in_a_self_registration_is_refused_with_403() {
    let app = spawn_app().await;
    for (field, value) in [
        ("role", json!("admin")),
        ("role", json!("user")),
        ("disabled", json!(false)),
    ] {
        let email = unique_email();
        let mut body = registration(&email);
        body[field] = value;
        assert_problem(app.post("/api/user", None, &body).await, 403).await;
        assert_eq!(
            app.login(&email, PASSWORD).await.status(),
            401,
            "nothing was created"
        );
    }
    let user = app.new_user().await;
    let mut body = registration(&unique_email());
    body["role"] = json!("admin");
    assert_problem(
        app.post("/api/user", Some(&user.access_token), &body).await,
        403,
    )
    .await;
}

#[tokio::test]
async fn an_admin_may_create_admins_and_disabled_users() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let mut body = registration(&unique_email());
    body["role"] = json!("admin");
    body["disabled"] = json!(true);
    let created = app
        .post("/api/user", Some(&admin.access_token), &body)
        .await;
    assert_eq!(created.status(), 201);
    let user = json_body(created).await;
    assert_eq!(user["role"], "admin");
    assert_eq!(user["disabled"], true);
    let mut bad_role = registration(&unique_email());
    bad_role["role"] = json!("superuser");
    let problem = assert_problem(
        app.post("/api/user", Some(&admin.access_token), &bad_role)
            .await,
        422,
    )
    .await;
    assert!(problem["errors"]["role"].is_array());
}

#[tokio::test]
async fn a_taken_email_gets_409_whatever_its_letter_case() {
    let app = spawn_app().await;
    let email = unique_email();
    assert_eq!(app.register(&email, PASSWORD).await.status(), 201);
    assert_problem(app.register(&email.to_uppercase(), PASSWORD).await, 409).await;
    assert_problem(app.register(&format!(" {email} "), PASSWORD).await, 409).await;
}

#[tokio::test]
async fn ten_parallel_registrations_of_one_email_give_one_201_and_nine_409() {
    let app = spawn_app().await;
    let email = unique_email();
    let attempts = (0..10).map(|_| app.register(&email, PASSWORD));
    let mut statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
}

#[tokio::test]
async fn with_admin_registration_only_an_admin_creates_users() {
    let app = spawn_app_with(&[("REGISTRATION", "admin")]).await;
    let anonymous = app.register(&unique_email(), PASSWORD).await;
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_problem(anonymous, 401).await;
    let admin = app.admin().await;
    let email = unique_email();
    let created = app
        .post(
            "/api/user",
            Some(&admin.access_token),
            &registration(&email),
        )
        .await;
    assert_eq!(created.status(), 201);
    let user = app.sign_in(&email, PASSWORD).await;
    let refused = app
        .post(
            "/api/user",
            Some(&user.access_token),
            &registration(&unique_email()),
        )
        .await;
    assert_problem(refused, 403).await;
}

#[tokio::test]
async fn me_returns_the_caller_and_never_a_hash() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let response = app.get("/api/user/me", Some(&user.access_token)).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let me: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(me["id"], user.id.as_str());
    assert_eq!(me["email"], user.email.as_str());
    assert!(me["last_login_at"].is_string());
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "{text}"
    );
}

#[tokio::test]
async fn a_user_reads_themself_and_gets_403_for_any_other_id() {
    let app = spawn_app().await;
    let (user, other) = (app.new_user().await, app.new_user().await);
    let own = app
        .get(&format!("/api/user/{}", user.id), Some(&user.access_token))
        .await;
    assert_eq!(json_body(own).await["id"], user.id.as_str());
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [other.id.as_str(), unknown.as_str(), "not-a-uuid", "1"] {
        let path = format!("/api/user/{id}");
        assert_problem(app.get(&path, Some(&user.access_token)).await, 403).await;
        let put = json!({ "first_name": "X", "last_name": "Y", "email": unique_email() });
        assert_problem(
            app.send(Method::PUT, &path, Some(&user.access_token), Some(&put))
                .await,
            403,
        )
        .await;
        let patch = json!({ "first_name": "X" });
        assert_problem(
            app.send(Method::PATCH, &path, Some(&user.access_token), Some(&patch))
                .await,
            403,
        )
        .await;
        assert_problem(
            app.send(Method::DELETE, &path, Some(&user.access_token), None)
                .await,
            403,
        )
        .await;
    }
    let still_there = app
        .get(
            &format!("/api/user/{}", other.id),
            Some(&other.access_token),
        )
        .await;
    assert_eq!(json_body(still_there).await["first_name"], "Test");
}

#[tokio::test]
async fn an_admin_reads_anyone_and_gets_404_for_unknown_or_malformed_ids() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    let read = app
        .get(&format!("/api/user/{}", user.id), Some(&admin.access_token))
        .await;
    assert_eq!(json_body(read).await["email"], user.email.as_str());
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [unknown.as_str(), "not-a-uuid", "1", "%27%20OR%201%3D1"] {
        let path = format!("/api/user/{id}");
        assert_problem(app.get(&path, Some(&admin.access_token)).await, 404).await;
        assert_problem(
            app.send(Method::DELETE, &path, Some(&admin.access_token), None)
                .await,
            404,
        )
        .await;
        let patch = json!({ "first_name": "X" });
        assert_problem(
            app.send(
                Method::PATCH,
                &path,
                Some(&admin.access_token),
                Some(&patch),
            )
            .await,
            404,
        )
        .await;
    }
}

#[tokio::test]
async fn put_replaces_the_profile_and_needs_every_profile_field() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let path = format!("/api/user/{}", user.id);
    let new_email = unique_email();
    let body = json!({ "first_name": " Katherine ", "last_name": "Johnson", "email": new_email.to_uppercase() });
    let response = app
        .send(Method::PUT, &path, Some(&user.access_token), Some(&body))
        .await;
    assert_eq!(response.status(), 200);
    let updated = json_body(response).await;
    assert_eq!(updated["first_name"], "Katherine");
    assert_eq!(updated["email"], new_email.as_str());
    assert_eq!(app.login(&new_email, PASSWORD).await.status(), 200);
    let missing = json!({ "first_name": "K", "last_name": "J" });
    assert_problem(
        app.send(Method::PUT, &path, Some(&user.access_token), Some(&missing))
            .await,
        400,
    )
    .await;
    let with_password =
        json!({ "first_name": "K", "last_name": "J", "email": new_email, "password": PASSWORD });
    assert_problem(
        app.send(
            Method::PUT,
            &path,
            Some(&user.access_token),
            Some(&with_password),
        )
        .await,
        400,
    )
    .await;
    let me_alias = app
        .send(
            Method::PUT,
            "/api/user/me",
            Some(&user.access_token),
            Some(&body),
        )
        .await;
    assert_eq!(me_alias.status(), 200);
}

#[tokio::test]
async fn patch_changes_only_the_fields_it_sends_and_checks_them() {
    let app = spawn_app().await;
    let (user, other) = (app.new_user().await, app.new_user().await);
    let path = format!("/api/user/{}", user.id);
    let renamed = app
        .send(
            Method::PATCH,
            &path,
            Some(&user.access_token),
            Some(&json!({ "last_name": "Curie" })),
        )
        .await;
    let renamed = json_body(renamed).await;
    assert_eq!(
        (
            renamed["first_name"].as_str(),
            renamed["last_name"].as_str()
        ),
        (Some("Test"), Some("Curie"))
    );
    let taken = json!({ "email": other.email.to_uppercase() });
    assert_problem(
        app.send(Method::PATCH, &path, Some(&user.access_token), Some(&taken))
            .await,
        409,
    )
    .await;
    let bad = json!({ "email": "nope", "first_name": "" });
    let problem = assert_problem(
        app.send(Method::PATCH, &path, Some(&user.access_token), Some(&bad))
            .await,
        422,
    )
    .await;
    assert!(problem["errors"]["email"].is_array() && problem["errors"]["first_name"].is_array());
    let null_name = json!({ "first_name": null });
    assert_problem(
        app.send(
            Method::PATCH,
            &path,
            Some(&user.access_token),
            Some(&null_name),
        )
        .await,
        400,
    )
    .await;
    let me = json_body(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert_eq!(me["last_name"], "Curie");
    assert_eq!(
        me["email"],
        user.email.as_str(),
        "refused changes lost nothing"
    );
}

#[tokio::test]
async fn a_user_cannot_give_themself_a_role_or_undisable_themself() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    for body in [
        json!({ "role": "admin" }),
        json!({ "disabled": false }),
        json!({ "role": "user" }),
    ] {
        let response = app
            .send(
                Method::PATCH,
                "/api/user/me",
                Some(&user.access_token),
                Some(&body),
            )
            .await;
        assert_problem(response, 403).await;
    }
    let put = json!({ "first_name": "A", "last_name": "B", "email": user.email, "role": "admin" });
    let path = format!("/api/user/{}", user.id);
    assert_problem(
        app.send(Method::PUT, &path, Some(&user.access_token), Some(&put))
            .await,
        403,
    )
    .await;
    assert_eq!(
        json_body(app.get("/api/user/me", Some(&user.access_token)).await).await["role"],
        "user"
    );
}

#[tokio::test]
async fn an_admin_promotes_and_the_promotion_counts_at_once() {
    let app = spawn_app().await;
    let (admin, user) = (app.admin().await, app.new_user().await);
    assert_problem(app.get("/api/user", Some(&user.access_token)).await, 403).await;
    let path = format!("/api/user/{}", user.id);
    let promoted = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access_token),
            Some(&json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(json_body(promoted).await["role"], "admin");
    assert_eq!(
        app.get("/api/user", Some(&user.access_token))
            .await
            .status(),
        200
    );
    let demoted = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access_token),
            Some(&json!({ "role": "user" })),
        )
        .await;
    assert_eq!(demoted.status(), 200);
    assert_problem(app.get("/api/user", Some(&user.access_token)).await, 403).await;
}

#[tokio::test]
async fn the_last_admin_cannot_be_deleted_demoted_or_disabled() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let path = format!("/api/user/{}", admin.id);
    assert_problem(
        app.send(Method::DELETE, &path, Some(&admin.access_token), None)
            .await,
        409,
    )
    .await;
    for body in [json!({ "role": "user" }), json!({ "disabled": true })] {
        assert_problem(
            app.send(Method::PATCH, &path, Some(&admin.access_token), Some(&body))
                .await,
            409,
        )
        .await;
    }
    let second = app.new_admin().await;
    let demoted = app
        .send(
            Method::PATCH,
            &path,
            Some(&second.access_token),
            Some(&json!({ "role": "user" })),
        )
        .await;
    assert_eq!(demoted.status(), 200);
    let own = format!("/api/user/{}", second.id);
    assert_problem(
        app.send(Method::DELETE, &own, Some(&second.access_token), None)
            .await,
        409,
    )
    .await;
}

#[tokio::test]
async fn deleting_a_user_removes_them_and_frees_their_email() {
    let app = spawn_app().await;
    let (admin, user, victim) = (
        app.admin().await,
        app.new_user().await,
        app.new_user().await,
    );
    let own = app
        .send(
            Method::DELETE,
            "/api/user/me",
            Some(&user.access_token),
            None,
        )
        .await;
    assert_eq!(own.status(), 204);
    assert!(own.text().await.unwrap().is_empty());
    assert_eq!(app.login(&user.email, PASSWORD).await.status(), 401);
    let path = format!("/api/user/{}", victim.id);
    assert_eq!(
        app.send(Method::DELETE, &path, Some(&admin.access_token), None)
            .await
            .status(),
        204
    );
    assert_problem(app.get(&path, Some(&admin.access_token)).await, 404).await;
    assert_eq!(app.register(&victim.email, PASSWORD).await.status(), 201);
}

async fn list(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get(&format!("/api/user{query}"), Some(token)).await;
    assert_eq!(response.status(), 200, "{query}");
    json_body(response).await
}

fn emails(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_user_list_pages_newest_first_by_cursor_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let mut created = vec![ADMIN_EMAIL.to_owned()];
    for _ in 0..7 {
        let email = unique_email();
        assert_eq!(app.register(&email, PASSWORD).await.status(), 201);
        created.push(email);
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut query = "?limit=3".to_owned();
    loop {
        let page = list(&app, &admin.access_token, &query).await;
        assert!(page["items"].as_array().unwrap().len() <= 3);
        seen.extend(emails(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created, "every user once, newest first");
    let default_page = list(&app, &admin.access_token, "").await;
    assert_eq!(emails(&default_page).len(), 8);
    assert_eq!(default_page["next_cursor"], Value::Null);
}

#[tokio::test]
async fn the_user_list_filters_by_search_role_and_disabled() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let body = json!({ "first_name": "Émilie", "last_name": "du Châtelet", "email": unique_email(), "password": PASSWORD });
    let emilie = json_body(
        app.post("/api/user", Some(&admin.access_token), &body)
            .await,
    )
    .await;
    let disabled = json!({ "first_name": "Dis", "last_name": "Abled", "email": unique_email(), "password": PASSWORD,
                           "disabled": true });
    assert_eq!(
        app.post("/api/user", Some(&admin.access_token), &disabled)
            .await
            .status(),
        201
    );
    let plain = app.new_user().await;
    for q in ["émilie", "ÉMILIE", "CHÂTEL", "du%20ch"] {
        let page = list(&app, &admin.access_token, &format!("?q={q}")).await;
        assert_eq!(emails(&page), [emilie["email"].as_str().unwrap()], "q={q}");
    }
    let by_email = list(
        &app,
        &admin.access_token,
        &format!("?q={}", &plain.email[..12].to_uppercase()),
    )
    .await;
    assert_eq!(emails(&by_email), [plain.email.as_str()]);
    assert!(
        emails(&list(&app, &admin.access_token, "?q=%25").await).is_empty(),
        "% matches itself only"
    );
    assert_eq!(
        emails(&list(&app, &admin.access_token, "?role=admin").await),
        [ADMIN_EMAIL]
    );
    assert_eq!(
        emails(&list(&app, &admin.access_token, "?disabled=true").await).len(),
        1
    );
    assert_eq!(
        emails(&list(&app, &admin.access_token, "?disabled=false&role=user").await).len(),
        2
    );
}

#[tokio::test]
async fn a_search_follows_renames_and_deletions_and_takes_any_text() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let user = app.new_user().await;
    let path = format!("/api/user/{}", user.id);
    let renamed = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access_token),
            Some(&json!({ "first_name": "Hedy", "last_name": "Lamarr" })),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    assert_eq!(
        emails(&list(&app, &admin.access_token, "?q=lamarr").await),
        [user.email.as_str()]
    );
    assert_eq!(
        emails(&list(&app, &admin.access_token, "?q=EDY").await),
        [user.email.as_str()]
    );
    assert!(
        emails(&list(&app, &admin.access_token, "?q=test").await).is_empty(),
        "the old name is forgotten"
    );
    for q in [
        "%22lamarr%22",
        "lam%22arr",
        "AND",
        "NOT%20lamarr",
        "*",
        "la",
    ] {
        let response = app
            .get(&format!("/api/user?q={q}"), Some(&admin.access_token))
            .await;
        assert_eq!(response.status(), 200, "q={q}");
    }
    assert_eq!(
        emails(&list(&app, &admin.access_token, "?q=la").await),
        [user.email.as_str()],
        "two letters still search"
    );
    let deleted = app
        .send(Method::DELETE, &path, Some(&admin.access_token), None)
        .await;
    assert!(deleted.status().is_success());
    assert!(emails(&list(&app, &admin.access_token, "?q=lamarr").await).is_empty());
}

#[tokio::test]
async fn unreadable_list_parameters_get_400() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for query in [
        "limit=0",
        "limit=",
        "limit=abc",
        "limit=201",
        "limit=-1",
        "role=superuser",
        "disabled=maybe",
        "cursor=garbled",
        "cursor=",
        "cursor=bm90LWEtY3Vyc29y",
    ] {
        assert_problem(
            app.get(&format!("/api/user?{query}"), Some(&admin.access_token))
                .await,
            400,
        )
        .await;
    }
    assert_eq!(
        app.get("/api/user?limit=200", Some(&admin.access_token))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn passwords_are_stored_only_as_argon2id_hashes_at_owasp_parameters() {
    use latchkey::db::schema::users;
    let app = spawn_app().await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let mut conn = app.store();
    let hashes: Vec<String> = users::table
        .filter(users::id.eq_any([&user.id, &other.id]))
        .select(users::password_hash)
        .load(&mut conn)
        .unwrap();
    assert_eq!(hashes.len(), 2);
    for hash in &hashes {
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!hash.contains(PASSWORD));
    }
    assert_ne!(hashes[0], hashes[1], "a unique salt per hash");
}

#[tokio::test]
async fn a_hash_with_weaker_parameters_is_replaced_at_the_next_sign_in() {
    use latchkey::db::schema::users;
    let app = spawn_app().await;
    let user = app.new_user().await;
    // A PHC string of "amber-falcon-ridge-2041" (PASSWORD) at m=4096, t=1, p=1.
    let weak = weak_hash(PASSWORD);
    let mut conn = app.store();
    diesel::update(users::table.find(&user.id))
        .set(users::password_hash.eq(&weak))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(app.login(&user.email, PASSWORD).await.status(), 200);
    let stored: String = users::table
        .find(&user.id)
        .select(users::password_hash)
        .first(&mut conn)
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert_eq!(app.login(&user.email, PASSWORD).await.status(), 200);
}

fn weak_hash(password: &str) -> String {
    use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(4096, 1, 1, Some(32)).unwrap();
    let mut out = [0u8; 32];
    let salt = b"weak-salt-16byte";
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into(password.as_bytes(), salt, &mut out)
        .unwrap();
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(0x13),
        params: ParamsString::try_from(&params).unwrap(),
        salt: Some(Salt::new(salt).unwrap()),
        hash: Some(Output::new(&out).unwrap()),
    }
    .to_string()
}

/// Seeds `count` users straight into the store, the oldest first, a second
/// apart; those with `i < cluster` are named "Oldcluster".
fn seed_users(app: &TestApp, count: usize, cluster: usize) -> Vec<String> {
    use latchkey::db::models::search_text;
    use latchkey::db::schema::users;
    let mut conn = app.store();
    let base = chrono::Utc::now().naive_utc() - chrono::TimeDelta::days(30);
    let rows: Vec<_> = (0..count)
        .map(|i| {
            let email = format!("bulk{i}@dense.example");
            let first = if i < cluster { "Oldcluster" } else { "Plain" };
            let at = base + chrono::TimeDelta::seconds(i as i64);
            (uuid::Uuid::new_v4().to_string(), email, first, at)
        })
        .collect();
    latchkey::db::write(&mut conn, |conn| {
        for chunk in rows.chunks(500) {
            let values: Vec<_> = chunk
                .iter()
                .map(|(id, email, first, at)| {
                    (
                        users::id.eq(id),
                        users::email.eq(email),
                        users::first_name.eq(*first),
                        users::last_name.eq("Seeded"),
                        users::password_hash.eq("$argon2id$unused"),
                        users::role.eq("user"),
                        users::disabled.eq(false),
                        users::created_at.eq(at),
                        users::updated_at.eq(at),
                        users::search_text.eq(search_text(email, first, "Seeded")),
                    )
                })
                .collect();
            // A batch insert is one statement per backend.
            match &mut *conn {
                latchkey::db::DbConnection::Sqlite(c) => diesel::insert_into(users::table)
                    .values(&values)
                    .execute(c)?,
                latchkey::db::DbConnection::Postgres(c) => diesel::insert_into(users::table)
                    .values(&values)
                    .execute(c)?,
            };
        }
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();
    rows.into_iter().map(|(_, email, _, _)| email).collect()
}

/// Every page of `q`, newest first, following the cursor.
async fn search_pages(app: &TestApp, token: &str, q: &str, pages: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..pages {
        let query = match &cursor {
            Some(c) => format!("?q={q}&limit=50&cursor={c}"),
            None => format!("?q={q}&limit=50"),
        };
        let page = list(app, token, &query).await;
        out.push(emails(&page));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    out
}

#[tokio::test]
async fn a_search_with_many_matches_pages_exactly_newest_first_wherever_they_lie() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    // 17,000 users: the oldest 6,000 are a cluster past the newest 10,000.
    let seeded = seed_users(&app, 17_000, 6_000);
    let newest = |matching: &dyn Fn(usize) -> bool, skip: usize| -> Vec<String> {
        (0..seeded.len())
            .rev()
            .filter(|i| matching(*i))
            .skip(skip)
            .take(50)
            .map(|i| seeded[i].clone())
            .collect()
    };
    // Matches everywhere: the first page comes from the newest rows.
    let everyone = search_pages(&app, &admin.access_token, "dense.example", 2).await;
    assert_eq!(everyone[0], newest(&|_| true, 0));
    assert_eq!(everyone[1], newest(&|_| true, 50));
    // Many matches, all far down the list: still the newest of them, in order.
    let cluster = search_pages(&app, &admin.access_token, "oldcluster", 2).await;
    assert_eq!(cluster[0], newest(&|i| i < 6_000, 0));
    assert_eq!(cluster[1], newest(&|i| i < 6_000, 50));
    // A few matches, and a search too short for trigrams.
    let few = search_pages(&app, &admin.access_token, "bulk1234", 1).await;
    assert_eq!(few[0], newest(&|i| seeded[i].starts_with("bulk1234"), 0));
    assert_eq!(few[0].len(), 11);
    let short = search_pages(&app, &admin.access_token, "k9", 1).await;
    assert_eq!(short[0], newest(&|i| seeded[i].contains("k9"), 0));
}

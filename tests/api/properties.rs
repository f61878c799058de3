//! Property tests over HTTP: whatever a stranger puts in the parts of a
//! request the server parses (the bearer header, the token, the email and
//! name fields, the cursor and other query parameters), the answer is never
//! a server error.

use crate::helpers::*;
use proptest::prelude::*;
use serde_json::json;
use std::sync::OnceLock;

/// One server for all cases, on a runtime that outlives each case.
fn shared() -> &'static (tokio::runtime::Runtime, TestApp, String) {
    static SHARED: OnceLock<(tokio::runtime::Runtime, TestApp, String)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let app = runtime.block_on(spawn_app_with(&[
            ("LOGIN_MAX_FAILURES", "100000"),
            ("LOGIN_MAX_FAILURES_PER_ADDRESS", "100000"),
        ]));
        let admin = runtime.block_on(app.admin()).access_token;
        (runtime, app, admin)
    })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn no_server_error(status: reqwest::StatusCode, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(!status.is_server_error(), "{} gave {}", what, status);
    Ok(())
}

/// Header values reqwest will send (visible ASCII and spaces).
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,200}",
        "Bearer [A-Za-z0-9_\\-\\.=+/]{0,400}",
        "(bearer|Bearer|BEARER) [A-Za-z0-9_\\-]{1,80}\\.[A-Za-z0-9_\\-]{0,80}\\.[A-Za-z0-9_\\-]{0,80}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_authorization_header_without_a_valid_token_gets_401(value in header_text()) {
        let (runtime, app, _) = shared();
        let status = runtime.block_on(async {
            app.client.get(app.url("/api/user/me")).header("authorization", &value).send().await.unwrap().status()
        });
        no_server_error(status, &value)?;
        prop_assert_eq!(status.as_u16(), 401);
    }

    #[test]
    fn any_registration_fields_get_a_4xx_or_201(first in "\\PC{0,120}", last in ".{0,3}", email in "\\PC{0,80}(@[a-z.]{0,20})?",
                                                 password in "\\PC{0,140}") {
        let (runtime, app, _) = shared();
        let body = json!({ "first_name": first, "last_name": last, "email": email, "password": password });
        let status = runtime.block_on(async { app.post("/api/user", None, &body).await.status() });
        no_server_error(status, &body.to_string())?;
        prop_assert!(status.is_client_error() || status.as_u16() == 201, "{}", status);
    }

    #[test]
    fn any_login_gets_401_or_400_never_500(email in "\\PC{0,300}", password in "\\PC{0,300}") {
        let (runtime, app, _) = shared();
        let status = runtime.block_on(app.login(&email, &password)).status();
        no_server_error(status, &email)?;
    }

    #[test]
    fn any_list_query_gets_200_or_400(cursor in "[ -~]{0,60}", limit in "[ -~]{0,6}", q in "\\PC{0,40}", role in "[a-z]{0,6}") {
        let (runtime, app, admin) = shared();
        let status = runtime.block_on(async {
            let url = reqwest::Url::parse_with_params(&app.url("/api/user"),
                &[("cursor", cursor.as_str()), ("limit", limit.as_str()), ("q", q.as_str()), ("role", role.as_str())]).unwrap();
            app.client.get(url).bearer_auth(admin).send().await.unwrap().status()
        });
        no_server_error(status, &cursor)?;
        prop_assert!(status.as_u16() == 200 || status.as_u16() == 400, "{}", status);
    }

    #[test]
    fn any_user_id_in_the_path_gets_a_4xx(id in "[A-Za-z0-9\\-_.~%]{1,80}") {
        let (runtime, app, admin) = shared();
        let status = runtime.block_on(async { app.get(&format!("/api/user/{id}"), Some(admin)).await.status() });
        no_server_error(status, &id)?;
    }

    #[test]
    fn any_refresh_token_gets_401_or_400(token in "\\PC{0,300}") {
        let (runtime, app, _) = shared();
        let status = runtime.block_on(app.refresh(&token)).status();
        no_server_error(status, &token)?;
        prop_assert_eq!(status.as_u16(), 401);
    }
}

//! The console's audit log as an admin reads it during an incident: people
//! by email, filters that take an email or part of one, an action from a
//! list, a time range, failed sign-ins as "anonymous → the account", and
//! an export of the filtered entries.

use crate::console::Console;
use crate::helpers::*;
use reqwest::StatusCode;

async fn page(console: &Console<'_>, path: &str) -> String {
    let response = console.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.text().await.unwrap()
}

/// The table's rows, each as its cells' text (tags stripped).
fn rows(html: &str) -> Vec<Vec<String>> {
    let Some(body) = html.split("<tbody>").nth(1) else {
        return Vec::new();
    };
    let body = body.split("</tbody>").next().unwrap();
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let cell = &cell[cell.find('>').unwrap() + 1..];
                    let cell = cell.split("</td>").next().unwrap();
                    let mut text = String::new();
                    let mut in_tag = false;
                    for c in cell.chars() {
                        match c {
                            '<' => in_tag = true,
                            '>' => in_tag = false,
                            c if !in_tag => text.push(c),
                            _ => {}
                        }
                    }
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn the_log_names_people_by_email_and_filters_by_part_of_one() {
    let app = spawn_app().await;
    let console = Console::signed_in_admin(&app).await;
    let ada = app.new_user().await;
    let grace = app.new_user().await;
    let audit = page(&console, "/admin/audit?action=user.create").await;
    let table = rows(&audit);
    assert!(
        table.iter().any(|row| row[3].contains(&ada.email)),
        "the target by email: {table:?}"
    );
    assert!(
        !audit.contains(&format!(">{}…<", &ada.id[..8])),
        "no bare ids where the user is known"
    );
    assert!(audit.contains(&format!("href=\"/admin/users/{}\"", ada.id)));

    // Part of an address, in any letter case, finds that user's entries
    // as target, and no one else's.
    let part = &ada.email[..ada.email.find('@').unwrap()].to_uppercase();
    let mine = rows(&page(&console, &format!("/admin/audit?target={part}")).await);
    assert!(!mine.is_empty());
    assert!(
        mine.iter().all(|row| row[3].contains(&ada.email)),
        "{mine:?}"
    );
    let by_id = rows(&page(&console, &format!("/admin/audit?target={}", grace.id)).await);
    assert!(by_id.iter().all(|row| row[3].contains(&grace.email)));
    // As actor: the user's own sign-in.
    let own = rows(&page(&console, &format!("/admin/audit?actor={}", ada.email)).await);
    assert!(
        own.iter()
            .any(|row| row[1].starts_with(&ada.email) && row[2] == "login"),
        "{own:?}"
    );
    // The action list holds every action; one chosen is selected.
    let chosen = page(&console, "/admin/audit?action=login").await;
    assert!(chosen.contains("<option value=\"login\" selected>"));
    assert!(chosen.contains("<option value=\"user.password_set\""));
    // A filter that matches nothing says so.
    let none = page(&console, "/admin/audit?actor=nobody-at-all.example").await;
    assert!(none.contains("No entries match."));
}

#[tokio::test]
async fn a_failed_sign_in_is_anonymous_against_the_account_from_its_address() {
    let app = spawn_app_with(&[("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let console = Console::signed_in_admin(&app).await;
    let user = app.new_user().await;
    let failed = app
        .client
        .post(app.url("/api/user/login"))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&serde_json::json!({ "email": user.email, "password": "not-the-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let audit = page(&console, "/admin/audit?action=login&outcome=failed").await;
    let table = rows(&audit);
    assert_eq!(table.len(), 1, "{table:?}");
    let row = &table[0];
    assert_eq!(row[1], "anonymous", "nobody signed in did it");
    assert!(row[3].starts_with(&user.email), "against the account");
    assert_eq!(row[4], "203.0.113.9", "from the client's address");
    assert_eq!(row[5], "failed");
    // Filtering by the account finds it as the target.
    let theirs = rows(&page(&console, &format!("/admin/audit?target={}", user.email)).await);
    assert!(
        theirs
            .iter()
            .any(|row| row[2] == "login" && row[5] == "failed")
    );
}

#[tokio::test]
async fn one_time_format_everywhere_and_a_time_range_filter() {
    let app = spawn_app().await;
    let early = app.new_user().await;
    let start = chrono::Utc::now();
    app.clock.advance(3 * 3600);
    let console = Console::signed_in_admin(&app).await;
    let late = app.new_user().await;
    let cut = (start + chrono::TimeDelta::hours(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();

    let before = rows(
        &page(
            &console,
            &format!("/admin/audit?action=user.create&to={cut}"),
        )
        .await,
    );
    assert!(before.iter().any(|row| row[3].contains(&early.email)));
    assert!(!before.iter().any(|row| row[3].contains(&late.email)));
    let after = rows(
        &page(
            &console,
            &format!("/admin/audit?action=user.create&from={cut}"),
        )
        .await,
    );
    assert!(after.iter().any(|row| row[3].contains(&late.email)));
    assert!(!after.iter().any(|row| row[3].contains(&early.email)));

    // Every time reads `YYYY-MM-DD HH:MM:SS UTC` with how long ago beside it.
    let time = reads_as_utc;
    assert!(before.iter().all(|row| time(&row[0])), "{before:?}");
    assert!(
        before.iter().all(|row| row[0].contains("3 h ago")),
        "{before:?}"
    );
    for path in [
        format!("/admin/users/{}", early.id),
        "/admin/users".to_owned(),
        "/admin/keys".to_owned(),
    ] {
        let html = page(&console, &path).await;
        assert!(html.contains(" UTC</time>"), "{path}");
        assert!(html.contains("class=\"ago\""), "{path}");
        assert!(
            !html.contains("T00:") || html.contains("datetime="),
            "{path}"
        );
    }

    let bad = console.get("/admin/audit?from=yesterday").await;
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("must be a UTC date and time")
    );
}

/// `2026-12-04 22:30:12 UTC …`.
fn reads_as_utc(cell: &str) -> bool {
    let bytes = cell.as_bytes();
    cell.len() > 23
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b' '
        && bytes[13] == b':'
        && bytes[16] == b':'
        && &cell[19..23] == " UTC"
}

#[tokio::test]
async fn the_filtered_entries_export_as_csv_and_json_lines() {
    let app = spawn_app().await;
    let console = Console::signed_in_admin(&app).await;
    let user = app.new_user().await;
    let formula = "=cmd@example.com";
    assert_eq!(app.register(formula, PASSWORD).await.status(), 201);
    let filters = "actor=anonymous&action=user.create";

    let csv = console
        .get(&format!("/admin/audit/export?format=csv&{filters}"))
        .await;
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"latchkey-audit-")
    );
    let csv = csv.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,at,actor,actor_email,action,target,target_email,client_addr,outcome,detail"
    );
    let lines: Vec<&str> = lines.collect();
    assert!(
        lines.iter().all(|l| l.contains(",anonymous,,user.create,")),
        "{csv}"
    );
    assert!(lines.iter().any(|l| l.contains(&user.email)), "{csv}");
    assert!(
        lines.iter().any(|l| l.contains(",'=cmd@example.com,")),
        "a cell a spreadsheet would run starts with ': {csv}"
    );

    let jsonl = console
        .get(&format!("/admin/audit/export?format=jsonl&{filters}"))
        .await;
    assert_eq!(jsonl.headers()["content-type"], "application/x-ndjson");
    let entries: Vec<serde_json::Value> = jsonl
        .text()
        .await
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(entries.len(), lines.len(), "the same entries");
    let entry = entries
        .iter()
        .find(|e| e["target_email"] == user.email.as_str())
        .unwrap();
    assert_eq!(entry["action"], "user.create");
    assert_eq!(entry["target"], user.id.as_str());
    assert_eq!(
        entry["detail"]["email"],
        user.email.as_str(),
        "detail as JSON"
    );
    assert!(entry["at"].as_str().unwrap().ends_with('Z'));

    // The export itself is in the log, and only an admin may make one.
    let exports = rows(&page(&console, "/admin/audit?action=audit.export").await);
    assert_eq!(exports.len(), 2);
    assert_eq!(
        console
            .get(&format!("/admin/audit/export?format=xml&{filters}"))
            .await
            .status(),
        400
    );
    let outsider = Console::new(&app);
    let refused = outsider.get("/admin/audit/export?format=csv").await;
    assert_eq!(
        refused.status(),
        StatusCode::SEE_OTHER,
        "to the sign-in page"
    );
}

#[tokio::test]
async fn a_time_range_keeps_entries_whose_ids_run_behind_their_times() {
    // Two writes read the clock in one order and insert in the other: the
    // later id holds the earlier time. Both belong in a range that starts
    // between the two times and the bound on ids must not cut either.
    let app = spawn_app().await;
    let console = Console::signed_in_admin(&app).await;
    use chrono::SubsecRound;
    let t = (chrono::Utc::now() - chrono::TimeDelta::hours(2))
        .naive_utc()
        .trunc_subsecs(0);
    let mut store = app.store();
    let entry = |at: chrono::NaiveDateTime, actor: &str| latchkey::db::models::NewAuditRow {
        at,
        actor: actor.to_owned(),
        action: "user.unlock".to_owned(),
        target: None,
        client_addr: None,
        outcome: "ok".to_owned(),
        detail: None,
    };
    for (at, actor) in [
        (t - chrono::TimeDelta::minutes(10), "system"),
        (t + chrono::TimeDelta::milliseconds(900), "cli"),
        (t + chrono::TimeDelta::milliseconds(100), "anonymous"),
        (t + chrono::TimeDelta::minutes(10), "system"),
    ] {
        latchkey::db::audit::insert(&mut store, &entry(at, actor)).unwrap();
    }
    let from = t.format("%Y-%m-%dT%H:%M:%S");
    let to = (t + chrono::TimeDelta::seconds(1)).format("%Y-%m-%dT%H:%M:%S");
    let found = rows(
        &page(
            &console,
            &format!("/admin/audit?action=user.unlock&from={from}&to={to}"),
        )
        .await,
    );
    let actors: Vec<&str> = found.iter().map(|row| row[1].as_str()).collect();
    assert_eq!(actors, ["anonymous", "cli"], "{found:?}");
}

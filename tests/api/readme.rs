//! The README's curl examples, pasted into bash against a fresh server, do
//! what the README says.

use crate::helpers::*;

#[tokio::test]
async fn the_readme_curl_examples_work_when_pasted() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("<!-- curl-examples:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- curl-examples:end -->").next())
        .expect("the README marks its curl examples");
    let script = block
        .trim()
        .trim_start_matches("```sh")
        .trim_end_matches("```");
    let app = spawn_app().await;
    let script = script.replace("http://127.0.0.1:8080", &app.address);
    let output = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -eu\n{script}"))
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(r#""email":"ada@example.com""#), "{stdout}");
    assert_eq!(
        stdout.matches(r#""token_type":"Bearer""#).count(),
        2,
        "login and refresh: {stdout}"
    );
    assert!(stdout.contains("logout: 204"), "{stdout}");
    assert!(stdout.contains("me after logout: 401"), "{stdout}");
}

/// A command copied from the README or `.env.example` must never give an
/// admin a published password or the server a published signing key.
#[test]
fn no_example_gives_a_password_or_a_key_that_works_verbatim() {
    use latchkey::domain::PasswordPolicy;
    let root = env!("CARGO_MANIFEST_DIR");
    for file in ["README.md", ".env.example", "docs/operations.md"] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        for (variable, usable) in [
            (
                "ADMIN_PASSWORD=",
                (|value: &str| PasswordPolicy::parse(value, &[]).is_ok()) as fn(&str) -> bool,
            ),
            ("SECRET_KEY=", |value: &str| value.len() >= 32),
        ] {
            for (at, _) in text.match_indices(variable) {
                let rest = &text[at + variable.len()..];
                let value: String = match rest.chars().next() {
                    Some(quote @ ('\'' | '"')) => {
                        rest[1..].chars().take_while(|c| *c != quote).collect()
                    }
                    _ => rest.chars().take_while(|c| !c.is_whitespace()).collect(),
                };
                // A shell variable holds what the reader typed.
                if value.starts_with('$') {
                    continue;
                }
                assert!(
                    !usable(&value),
                    "{file}: {variable}{value} works as it is written"
                );
            }
        }
    }
}

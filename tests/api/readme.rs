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

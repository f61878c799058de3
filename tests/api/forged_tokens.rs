//! Forged, tampered and malformed access tokens, sent the way an attacker
//! would: every one gets 401 with `Bearer error="invalid_token"`, while the
//! same hand-made token, unaltered, is accepted (the positive control).

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{Algorithm, EncodingKey, crypto};
use latchkey::clock::Clock;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ME: &str = "/api/user/me";
const OTHER_SECRET: &[u8] = b"another-secret-of-at-least-32-bytes!!";

fn encode(value: &Value) -> String {
    B64.encode(value.to_string())
}

/// The JSON of a token's header (0) or payload (1).
fn segment(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("segment");
    serde_json::from_slice(&B64.decode(part).expect("base64url")).expect("JSON segment")
}

/// `header.claims.signature`, the signature an HMAC with `key` and `alg`.
fn signed(header: &Value, claims: &Value, key: &[u8], alg: Algorithm) -> String {
    let message = format!("{}.{}", encode(header), encode(claims));
    let signature =
        crypto::sign(message.as_bytes(), &EncodingKey::from_secret(key), alg).expect("HMAC");
    format!("{message}.{signature}")
}

fn remove(object: &mut Value, name: &str) {
    object.as_object_mut().unwrap().remove(name);
}

/// What it takes to forge tokens for one real, live session.
struct Forger {
    kid: String,
    sub: String,
    sid: String,
    now: i64,
}

impl Forger {
    /// The active kid and a live session, read from a real token.
    fn from_token(app: &TestApp, token: &str) -> Self {
        let (header, claims) = (segment(token, 0), segment(token, 1));
        let text = |v: &Value, name: &str| {
            v[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name}"))
                .to_owned()
        };
        Self {
            kid: text(&header, "kid"),
            sub: text(&claims, "sub"),
            sid: text(&claims, "sid"),
            now: app.clock.now().timestamp(),
        }
    }

    fn header(&self) -> Value {
        json!({ "alg": "HS256", "typ": "at+jwt", "kid": self.kid })
    }

    fn claims(&self) -> Value {
        json!({ "iss": "latchkey", "aud": "latchkey", "sub": self.sub, "sid": self.sid,
                "jti": uuid::Uuid::new_v4().to_string(), "iat": self.now, "exp": self.now + 300, "role": "user" })
    }

    /// The valid token with one change to its header and/or claims, signed
    /// with the right secret.
    fn forge(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut header, mut claims) = (self.header(), self.claims());
        edit(&mut header, &mut claims);
        signed(&header, &claims, SECRET_KEY.as_bytes(), Algorithm::HS256)
    }

    fn valid(&self) -> String {
        self.forge(|_, _| {})
    }
}

async fn forger(app: &TestApp) -> (Forger, TestUser) {
    let user = app.new_user().await;
    (Forger::from_token(app, &user.access_token), user)
}

async fn with_authorization(app: &TestApp, value: &str) -> Response {
    app.client
        .get(app.url(ME))
        .header("Authorization", value)
        .send()
        .await
        .expect("request sent")
}

/// Asserts `response` is the invalid-token 401; `case` names it on failure.
async fn assert_refused_response(response: Response, case: &str) {
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "{case} must be refused"
    );
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok());
    assert_eq!(challenge, Some("Bearer error=\"invalid_token\""), "{case}");
    assert_invalid_token(response).await;
}

async fn assert_refused(app: &TestApp, token: &str, case: &str) {
    assert_refused_response(app.get(ME, Some(token)).await, case).await;
}

async fn assert_accepted(app: &TestApp, token: &str, user: &TestUser, case: &str) {
    let response = app.get(ME, Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK, "{case} must be accepted");
    assert_eq!(json_body(response).await["id"], user.id.as_str(), "{case}");
}

/// A 401 that asks for a bearer token; `exact` when none was sent at all.
async fn assert_bearer_challenge(response: Response, exact: bool, case: &str) {
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "{case} must be refused"
    );
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let challenge = challenge.unwrap_or_else(|| panic!("{case}: no WWW-Authenticate"));
    if exact {
        assert_eq!(challenge, "Bearer", "{case}");
    } else {
        assert!(challenge.starts_with("Bearer"), "{case}: {challenge}");
    }
    assert_problem(response, 401).await;
}

#[tokio::test]
async fn a_hand_made_token_with_the_right_secret_kid_and_claims_is_accepted() {
    let app = spawn_app().await;
    let (forger, user) = forger(&app).await;
    assert_accepted(&app, &forger.valid(), &user, "the hand-made valid token").await;
    let not_before = forger.forge(|_, c| c["nbf"] = json!(forger.now - 10));
    assert_accepted(&app, &not_before, &user, "a token whose nbf has passed").await;
}

#[tokio::test]
async fn the_typ_is_matched_in_any_letter_case_and_with_the_application_prefix() {
    let app = spawn_app().await;
    let (forger, user) = forger(&app).await;
    for typ in [
        "AT+JWT",
        "At+Jwt",
        "application/at+jwt",
        "Application/AT+JWT",
    ] {
        let token = forger.forge(|h, _| h["typ"] = json!(typ));
        assert_accepted(&app, &token, &user, &format!("typ {typ:?}")).await;
    }
}

#[tokio::test]
async fn a_request_without_authorization_gets_a_plain_bearer_challenge() {
    let app = spawn_app().await;
    assert_bearer_challenge(app.get(ME, None).await, true, "no Authorization header").await;
}

#[tokio::test]
async fn a_valid_token_is_read_only_from_a_bearer_authorization_header() {
    let app = spawn_app().await;
    let (forger, user) = forger(&app).await;
    let token = forger.valid();
    assert_accepted(&app, &token, &user, "the token as a bearer header").await;
    for name in ["access_token", "token"] {
        let response = app.get(&format!("{ME}?{name}={token}"), None).await;
        assert_bearer_challenge(response, true, &format!("the token in ?{name}=")).await;
        let request = app
            .client
            .get(app.url(ME))
            .header("Cookie", format!("{name}={token}"));
        let response = request.send().await.expect("request sent");
        assert_bearer_challenge(response, true, &format!("the token in a {name} cookie")).await;
    }
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{ADMIN_EMAIL}:{ADMIN_PASSWORD}"))
    );
    for value in [
        basic,
        format!("Token {token}"),
        format!("JWT {token}"),
        format!("Bearer{token}"),
        token.clone(),
    ] {
        let case = format!("Authorization: {}", &value[..value.len().min(12)]);
        assert_bearer_challenge(with_authorization(&app, &value).await, false, &case).await;
    }
}

#[tokio::test]
async fn malformed_tokens_are_refused_with_401_never_500() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    let valid = forger.valid();
    let parts: Vec<&str> = valid.split('.').collect();
    let cases = [
        ("an empty token", String::new()),
        ("one segment", parts[0].to_owned()),
        ("two segments", format!("{}.{}", parts[0], parts[1])),
        ("four segments", format!("{valid}.{}", parts[2])),
        (
            "an empty payload segment",
            format!("{}..{}", parts[0], parts[2]),
        ),
        ("dots only", "..".to_owned()),
        ("base64 padding", format!("{valid}=")),
        (
            "standard base64 characters",
            format!("{}+/.{}.{}", parts[0], parts[1], parts[2]),
        ),
        (
            "segments that are not JSON",
            "aGVsbG8.d29ybGQ.c2lnbmF0dXJl".to_owned(),
        ),
        (
            "a header that is a JSON array",
            format!("{}.{}.{}", encode(&json!([1])), parts[1], parts[2]),
        ),
        ("a 16 KiB blob", "a".repeat(16 * 1024)),
        (
            "a 16 KiB payload",
            format!("{}.{}.{}", parts[0], "A".repeat(16 * 1024), parts[2]),
        ),
    ];
    for (case, token) in cases {
        assert_refused(&app, &token, case).await;
    }
}

#[tokio::test]
async fn a_correctly_signed_token_over_8_kib_is_refused_and_one_within_is_accepted() {
    let app = spawn_app().await;
    let (forger, user) = forger(&app).await;
    let padded = |n: usize| forger.forge(|_, c| c["jti"] = json!("x".repeat(n)));
    let mut n = (8192 - padded(0).len()) * 3 / 4 - 16;
    let mut within = padded(n);
    assert!(within.len() <= 8192);
    let over = loop {
        n += 1;
        let token = padded(n);
        if token.len() > 8192 {
            break token;
        }
        within = token;
    };
    assert_accepted(
        &app,
        &within,
        &user,
        &format!("a {}-byte token", within.len()),
    )
    .await;
    assert_refused(&app, &over, &format!("a {}-byte token", over.len())).await;
}

#[tokio::test]
async fn an_alg_none_token_is_refused_in_every_spelling() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": forger.kid });
        let unsigned = format!("{}.{}.", encode(&header), encode(&forger.claims()));
        assert_refused(
            &app,
            &unsigned,
            &format!("alg {alg} with an empty signature"),
        )
        .await;
        let with_signature = forger.forge(|h, _| h["alg"] = json!(alg));
        assert_refused(
            &app,
            &with_signature,
            &format!("alg {alg} with an HS256 signature"),
        )
        .await;
    }
}

#[tokio::test]
async fn any_algorithm_but_hs256_is_refused_even_when_signed_with_the_right_secret() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    for (name, alg) in [("HS384", Algorithm::HS384), ("HS512", Algorithm::HS512)] {
        let header = json!({ "alg": name, "typ": "at+jwt", "kid": forger.kid });
        let token = signed(&header, &forger.claims(), SECRET_KEY.as_bytes(), alg);
        assert_refused(&app, &token, &format!("alg {name} signed with the secret")).await;
    }
    // Key confusion: an asymmetric alg whose "public key" is the HMAC secret.
    for alg in ["RS256", "ES256", "PS256", "EdDSA", "hs256"] {
        let token = forger.forge(|h, _| h["alg"] = json!(alg));
        assert_refused(&app, &token, &format!("alg {alg} with an HS256 signature")).await;
    }
    assert_refused(&app, &forger.forge(|h, _| remove(h, "alg")), "no alg").await;
}

#[tokio::test]
async fn a_typ_other_than_at_jwt_is_refused() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    assert_refused(&app, &forger.forge(|h, _| remove(h, "typ")), "no typ").await;
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!(""),
        json!("application/jwt"),
        json!("at+jwt+x"),
        json!("rt+jwt"),
        json!(1),
    ] {
        let token = forger.forge(|h, _| h["typ"] = typ.clone());
        assert_refused(&app, &token, &format!("typ {typ}")).await;
    }
}

#[tokio::test]
async fn a_header_carrying_a_key_or_key_reference_is_refused() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    let cases = [
        ("jwk", json!({ "kty": "oct", "k": B64.encode(SECRET_KEY) })),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!([STANDARD.encode(b"not really a certificate")])),
    ];
    for (name, value) in cases {
        let token = forger.forge(|h, _| h[name] = value.clone());
        assert_refused(&app, &token, &format!("a {name} header")).await;
    }
}

#[tokio::test]
async fn a_missing_unknown_or_hostile_kid_is_refused_quickly() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    // Each hostile kid is signed with the key its attack would produce.
    let cases: [(&str, Option<Value>, &[u8]); 7] = [
        ("no kid", None, SECRET_KEY.as_bytes()),
        ("an empty kid", Some(json!("")), SECRET_KEY.as_bytes()),
        (
            "an unknown kid",
            Some(json!("no-such-key")),
            SECRET_KEY.as_bytes(),
        ),
        ("a numeric kid", Some(json!(1)), SECRET_KEY.as_bytes()),
        ("a path-traversal kid", Some(json!("../../dev/null")), b""),
        (
            "an SQL-injection kid",
            Some(json!("x' UNION SELECT '1';--")),
            b"1",
        ),
        (
            "a shell-injection kid",
            Some(json!("|sleep 10")),
            SECRET_KEY.as_bytes(),
        ),
    ];
    for (case, kid, key) in cases {
        let mut header = forger.header();
        match kid {
            Some(kid) => header["kid"] = kid,
            None => remove(&mut header, "kid"),
        }
        let token = signed(&header, &forger.claims(), key, Algorithm::HS256);
        let started = Instant::now();
        let response = app.get(ME, Some(&token)).await;
        let elapsed = started.elapsed();
        assert_refused_response(response, case).await;
        assert!(
            elapsed < Duration::from_millis(500),
            "{case} took {elapsed:?}"
        );
    }
}

#[tokio::test]
async fn a_token_with_a_wrong_signature_is_refused() {
    let app = spawn_app().await;
    let (forger, user) = forger(&app).await;
    let (header, claims) = (forger.header(), forger.claims());
    let valid = signed(&header, &claims, SECRET_KEY.as_bytes(), Algorithm::HS256);
    let (message, signature) = valid.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let real_signature = user.access_token.rsplit_once('.').unwrap().1;
    let cases = [
        (
            "re-signed with another key",
            signed(&header, &claims, OTHER_SECRET, Algorithm::HS256),
        ),
        (
            "signed with an empty key",
            signed(&header, &claims, b"", Algorithm::HS256),
        ),
        (
            "signed with the base64 of the secret",
            signed(
                &header,
                &claims,
                B64.encode(SECRET_KEY).as_bytes(),
                Algorithm::HS256,
            ),
        ),
        (
            "a truncated signature",
            format!("{message}.{}", &signature[..signature.len() - 4]),
        ),
        (
            "a ten-character signature",
            format!("{message}.{}", &signature[..10]),
        ),
        ("an empty signature", format!("{message}.")),
        (
            "a signature with its first character changed",
            format!("{message}.{flipped}{}", &signature[1..]),
        ),
        (
            "the signature of another real token",
            format!("{message}.{real_signature}"),
        ),
    ];
    for (case, token) in cases {
        assert_refused(&app, &token, case).await;
    }
    assert_accepted(&app, &valid, &user, "the same token correctly signed").await;
}

#[tokio::test]
async fn a_token_missing_any_required_claim_is_refused() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    for claim in ["exp", "iat", "sub", "sid", "iss", "aud"] {
        let token = forger.forge(|_, c| remove(c, claim));
        assert_refused(&app, &token, &format!("a token without {claim}")).await;
    }
}

#[tokio::test]
async fn a_claim_of_the_wrong_json_type_is_refused() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    let now = forger.now;
    let cases = [
        ("exp", json!("never")),
        ("exp", json!("999")),
        ("exp", json!((now + 300).to_string())),
        ("exp", Value::Null),
        ("iat", json!(now.to_string())),
        ("sub", json!(42)),
        ("sid", json!(["a", "b"])),
        ("nbf", json!((now - 10).to_string())),
        ("role", json!(1)),
        ("role", json!("root")),
    ];
    for (claim, value) in cases {
        let token = forger.forge(|_, c| c[claim] = value.clone());
        assert_refused(&app, &token, &format!("{claim} = {value}")).await;
    }
}

#[tokio::test]
async fn a_token_for_another_issuer_or_audience_is_refused() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    let cases = [
        ("iss", json!("evil")),
        ("iss", json!("Latchkey")),
        ("iss", json!("")),
        ("aud", json!("evil")),
        ("aud", json!("LATCHKEY")),
        ("aud", json!(["evil"])),
    ];
    for (claim, value) in cases {
        let token = forger.forge(|_, c| c[claim] = value.clone());
        assert_refused(&app, &token, &format!("{claim} = {value}")).await;
    }
}

#[tokio::test]
async fn an_expired_or_not_yet_valid_token_is_refused() {
    let app = spawn_app().await;
    let (forger, user) = forger(&app).await;
    let now = forger.now;
    let cases = [
        (
            "exp a second ago",
            forger.forge(|_, c| c["exp"] = json!(now - 1)),
        ),
        (
            "exp equal to now",
            forger.forge(|_, c| c["exp"] = json!(now)),
        ),
        ("exp at the epoch", forger.forge(|_, c| c["exp"] = json!(0))),
        (
            "nbf in a minute",
            forger.forge(|_, c| c["nbf"] = json!(now + 60)),
        ),
        (
            "nbf in a year",
            forger.forge(|_, c| c["nbf"] = json!(now + 365 * 86_400)),
        ),
    ];
    for (case, token) in cases {
        assert_refused(&app, &token, case).await;
    }
    // Expiry is judged by the server's clock, not only the wall clock.
    let valid = forger.valid();
    assert_accepted(&app, &valid, &user, "the valid token before its exp").await;
    app.clock.advance(301);
    assert_refused(
        &app,
        &valid,
        "the valid token once the server's clock passed exp",
    )
    .await;
}

#[tokio::test]
async fn a_real_token_with_a_tampered_payload_is_refused() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let parts: Vec<&str> = user.access_token.split('.').collect();
    let tampered = |edit: &dyn Fn(&mut Value)| {
        let mut claims = segment(&user.access_token, 1);
        edit(&mut claims);
        format!("{}.{}.{}", parts[0], encode(&claims), parts[2])
    };
    let other_sid = segment(&other.access_token, 1)["sid"].clone();
    let as_admin = tampered(&|c| c["role"] = json!("admin"));
    let cases = [
        ("role changed to admin", as_admin.clone()),
        (
            "sub changed to another user's id",
            tampered(&|c| c["sub"] = json!(other.id)),
        ),
        (
            "sid changed to another session",
            tampered(&|c| c["sid"] = other_sid.clone()),
        ),
        (
            "exp pushed a year ahead",
            tampered(&|c| c["exp"] = json!(c["exp"].as_i64().unwrap() + 365 * 86_400)),
        ),
    ];
    for (case, token) in cases {
        assert_refused(&app, &token, case).await;
    }
    let keys = app.get("/api/admin/keys", Some(&as_admin)).await;
    assert_refused_response(keys, "role admin on an admin endpoint").await;
    assert_accepted(&app, &user.access_token, &user, "the untampered token").await;
}

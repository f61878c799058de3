//! Forged, tampered and malformed access tokens, sent the way an attacker
//! would: every one gets 401 with `Bearer error="invalid_token"`, while the
//! same hand-made token, unaltered, is accepted (the positive control).

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use jsonwebtoken::Algorithm::{self, HS256, HS384, HS512};
use jsonwebtoken::{EncodingKey, crypto};
use latchkey::clock::Clock;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ME: &str = "/api/user/me";
const INVALID: &str = "Bearer error=\"invalid_token\"";

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
        let text = |v: &Value, name: &str| v[name].as_str().expect(name).to_owned();
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
        let jti = uuid::Uuid::new_v4().to_string();
        json!({ "iss": "latchkey", "aud": "latchkey", "sub": self.sub, "sid": self.sid,
                "jti": jti, "iat": self.now, "exp": self.now + 300, "role": "user" })
    }

    /// The valid token with one change to its header and/or claims, signed
    /// with the right secret.
    fn forge(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut header, mut claims) = (self.header(), self.claims());
        edit(&mut header, &mut claims);
        signed(&header, &claims, SECRET_KEY.as_bytes(), HS256)
    }

    fn valid(&self) -> String {
        self.forge(|_, _| {})
    }
}

async fn forger(app: &TestApp) -> (Forger, TestUser) {
    let user = app.new_user().await;
    (Forger::from_token(app, &user.access_token), user)
}

/// `GET /api/user/me` with one header set by hand.
async fn get_with(app: &TestApp, name: &str, value: String) -> Response {
    let request = app.client.get(app.url(ME)).header(name, value);
    request.send().await.expect("request sent")
}

/// Asserts a problem+json 401 whose challenge is `challenge` (any Bearer
/// challenge when `None`); `case` names the variant on failure.
async fn assert_401(response: Response, challenge: Option<&str>, case: &str) {
    assert_eq!(response.status(), 401, "{case}: status");
    let header = response.headers().get("www-authenticate");
    let got = header.map(|v| v.to_str().unwrap().to_owned());
    let got = got.unwrap_or_default();
    match challenge {
        Some(challenge) => assert_eq!(got, challenge, "{case}: WWW-Authenticate"),
        None => assert!(got.starts_with("Bearer"), "{case}: challenge {got:?}"),
    }
    if challenge == Some(INVALID) {
        assert_invalid_token(response).await;
    } else {
        assert_problem(response, 401).await;
    }
}

/// Asserts the 401 of a request that sent no bearer token at all.
async fn assert_asks_for_token(response: Response, case: &str) {
    assert_401(response, Some("Bearer"), case).await;
}

async fn assert_refused(app: &TestApp, token: &str, case: &str) {
    assert_401(app.get(ME, Some(token)).await, Some(INVALID), case).await;
}

async fn assert_accepted(app: &TestApp, token: &str, user: &TestUser, case: &str) {
    let response = app.get(ME, Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK, "{case} must be accepted");
    assert_eq!(json_body(response).await["id"], user.id.as_str(), "{case}");
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
    let variants = "AT+JWT At+Jwt application/at+jwt Application/AT+JWT";
    for typ in variants.split(' ') {
        let token = forger.forge(|h, _| h["typ"] = json!(typ));
        assert_accepted(&app, &token, &user, &format!("typ {typ:?}")).await;
    }
}

#[tokio::test]
async fn a_valid_token_is_read_only_from_a_bearer_authorization_header() {
    let app = spawn_app().await;
    assert_asks_for_token(app.get(ME, None).await, "no Authorization header").await;
    let (forger, user) = forger(&app).await;
    let token = forger.valid();
    assert_accepted(&app, &token, &user, "the token as a bearer header").await;
    for name in ["access_token", "token"] {
        let response = app.get(&format!("{ME}?{name}={token}"), None).await;
        assert_asks_for_token(response, &format!("the token in ?{name}=")).await;
        let response = get_with(&app, "Cookie", format!("{name}={token}")).await;
        assert_asks_for_token(response, &format!("the token in a {name} cookie")).await;
    }
    let basic = STANDARD.encode(format!("{ADMIN_EMAIL}:{ADMIN_PASSWORD}"));
    for scheme in ["Basic ", "Token ", "JWT ", "Bearer", ""] {
        let credentials = if scheme == "Basic " { &basic } else { &token };
        let response = get_with(&app, "Authorization", format!("{scheme}{credentials}")).await;
        assert_401(response, None, &format!("Authorization: {scheme:?}")).await;
    }
}

#[tokio::test]
async fn malformed_tokens_are_refused_with_401_never_500() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    let valid = forger.valid();
    let [h, p, s]: [&str; 3] = valid.split('.').collect::<Vec<_>>().try_into().unwrap();
    let big = "A".repeat(16 * 1024);
    #[rustfmt::skip]
    let cases = [
        ("an empty token", String::new()),
        ("one segment", h.to_owned()),
        ("two segments", format!("{h}.{p}")),
        ("four segments", format!("{valid}.{s}")),
        ("an empty payload segment", format!("{h}..{s}")),
        ("dots only", "..".to_owned()),
        ("base64 padding", format!("{valid}=")),
        ("standard base64 characters", format!("{h}+/.{p}.{s}")),
        ("segments that are not JSON", "aGVsbG8.d29ybGQ.c2lnbmF0dXJl".to_owned()),
        ("a JSON array as header", format!("{}.{p}.{s}", encode(&json!([1])))),
        ("a 16 KiB blob", big.clone()),
        ("a 16 KiB payload", format!("{h}.{big}.{s}")),
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
    let start = (8192 - padded(0).len()) * 3 / 4 - 16;
    let n = (start..).find(|&n| padded(n).len() > 8192).unwrap();
    let (within, over) = (padded(n - 1), padded(n));
    assert!(within.len() <= 8192 && padded(start).len() < within.len());
    let case = format!("a {}-byte token", within.len());
    assert_accepted(&app, &within, &user, &case).await;
    assert_refused(&app, &over, &format!("a {}-byte token", over.len())).await;
}

#[tokio::test]
async fn an_alg_none_token_is_refused_in_every_spelling() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": forger.kid });
        let unsigned = format!("{}.{}.", encode(&header), encode(&forger.claims()));
        assert_refused(&app, &unsigned, &format!("alg {alg}, no signature")).await;
        let with_signature = forger.forge(|h, _| h["alg"] = json!(alg));
        assert_refused(&app, &with_signature, &format!("alg {alg}, HS256-signed")).await;
    }
}

#[tokio::test]
async fn any_algorithm_but_hs256_is_refused_even_when_signed_with_the_right_secret() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    for (name, alg) in [("HS384", HS384), ("HS512", HS512)] {
        let header = json!({ "alg": name, "typ": "at+jwt", "kid": forger.kid });
        let token = signed(&header, &forger.claims(), SECRET_KEY.as_bytes(), alg);
        assert_refused(&app, &token, &format!("alg {name} signed with the secret")).await;
    }
    // Key confusion: an asymmetric alg whose "public key" is the HMAC secret.
    for alg in ["RS256", "ES256", "PS256", "EdDSA", "hs256"] {
        let token = forger.forge(|h, _| h["alg"] = json!(alg));
        assert_refused(&app, &token, &format!("alg {alg}, HS256-signed")).await;
    }
    assert_refused(&app, &forger.forge(|h, _| remove(h, "alg")), "no alg").await;
}

#[tokio::test]
async fn a_typ_other_than_at_jwt_is_refused() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    assert_refused(&app, &forger.forge(|h, _| remove(h, "typ")), "no typ").await;
    for typ in ["JWT", "jwt", "", "application/jwt", "at+jwt+x", "rt+jwt"].map(|t| json!(t)) {
        let token = forger.forge(|h, _| h["typ"] = typ.clone());
        assert_refused(&app, &token, &format!("typ {typ}")).await;
    }
    assert_refused(&app, &forger.forge(|h, _| h["typ"] = json!(1)), "typ 1").await;
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
        // A critical extension this server does not understand (RFC 7515 §4.1.11).
        ("crit", json!(["exp"])),
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
    let secret = SECRET_KEY.as_bytes();
    // Each hostile kid is signed with the key its attack would produce.
    #[rustfmt::skip]
    let cases: [(_, _, &[u8]); 7] = [
        ("no kid", Value::Null, secret),
        ("an empty kid", json!(""), secret),
        ("an unknown kid", json!("no-such-key"), secret),
        ("a numeric kid", json!(1), secret),
        ("a path-traversal kid", json!("../../dev/null"), b""),
        ("an SQL-injection kid", json!("x' UNION SELECT '1';--"), b"1"),
        ("a shell-injection kid", json!("|sleep 10"), secret),
    ];
    for (case, kid, key) in cases {
        let mut header = forger.header();
        header["kid"] = kid;
        if header["kid"].is_null() {
            remove(&mut header, "kid");
        }
        let token = signed(&header, &forger.claims(), key, HS256);
        let started = Instant::now();
        let response = app.get(ME, Some(&token)).await;
        let elapsed = started.elapsed();
        assert_401(response, Some(INVALID), case).await;
        assert!(elapsed < Duration::from_millis(500), "{case}: {elapsed:?}");
    }
}

#[tokio::test]
async fn a_token_with_a_wrong_signature_is_refused() {
    let app = spawn_app().await;
    let (forger, user) = forger(&app).await;
    let (header, claims) = (forger.header(), forger.claims());
    let sign_with = |key: &[u8]| signed(&header, &claims, key, HS256);
    let valid = sign_with(SECRET_KEY.as_bytes());
    let (message, signature) = valid.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let real = user.access_token.rsplit_once('.').unwrap().1;
    #[rustfmt::skip]
    let cases = [
        ("re-signed with another key", sign_with(b"another-secret-of-at-least-32-bytes!!")),
        ("signed with an empty key", sign_with(b"")),
        ("signed with base64(secret)", sign_with(B64.encode(SECRET_KEY).as_bytes())),
        ("truncated", format!("{message}.{}", &signature[..signature.len() - 4])),
        ("cut to ten characters", format!("{message}.{}", &signature[..10])),
        ("empty", format!("{message}.")),
        ("with its first character changed", format!("{message}.{flipped}{}", &signature[1..])),
        ("of another real token", format!("{message}.{real}")),
    ];
    for (case, token) in cases {
        assert_refused(&app, &token, &format!("a signature {case}")).await;
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
async fn a_claim_of_the_wrong_json_type_or_another_issuer_or_audience_is_refused() {
    let app = spawn_app().await;
    let (forger, _) = forger(&app).await;
    let now = forger.now;
    #[rustfmt::skip]
    let cases = json!([
        ["exp", "never"], ["exp", "999"], ["exp", (now + 300).to_string()], ["exp", null],
        ["iat", now.to_string()], ["sub", 42], ["sid", ["a", "b"]], ["nbf", now.to_string()],
        ["role", 1], ["role", "root"], ["iss", "evil"], ["iss", "Latchkey"], ["iss", ""],
        ["aud", "evil"], ["aud", "LATCHKEY"], ["aud", ["evil"]],
    ]);
    for case in cases.as_array().unwrap() {
        let (claim, value) = (case[0].as_str().unwrap(), &case[1]);
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
        ("exp a second ago", "exp", now - 1),
        ("exp equal to now", "exp", now),
        ("exp at the epoch", "exp", 0),
        ("nbf in a minute", "nbf", now + 60),
        ("nbf in a year", "nbf", now + 365 * 86_400),
    ];
    for (case, claim, time) in cases {
        assert_refused(&app, &forger.forge(|_, c| c[claim] = json!(time)), case).await;
    }
    // Expiry is judged by the server's clock, not only the wall clock.
    let valid = forger.valid();
    assert_accepted(&app, &valid, &user, "the valid token before its exp").await;
    app.clock.advance(301);
    assert_refused(&app, &valid, "the token once the server's clock passed exp").await;
}

#[tokio::test]
async fn a_real_token_with_a_tampered_payload_is_refused() {
    let app = spawn_app().await;
    let (user, other) = (app.new_user().await, app.new_user().await);
    let (header, rest) = user.access_token.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let tampered = |claim: &str, value: Value| {
        let mut claims = segment(&user.access_token, 1);
        claims[claim] = value;
        format!("{header}.{}.{signature}", encode(&claims))
    };
    let exp = segment(&user.access_token, 1)["exp"].as_i64().unwrap();
    let as_admin = tampered("role", json!("admin"));
    let other_sid = segment(&other.access_token, 1)["sid"].clone();
    #[rustfmt::skip]
    let cases = [
        ("role changed to admin", as_admin.clone()),
        ("sub changed to another user's", tampered("sub", json!(other.id))),
        ("sid changed to another session's", tampered("sid", other_sid)),
        ("exp pushed a day later", tampered("exp", json!(exp + 86_400))),
    ];
    for (case, token) in cases {
        assert_refused(&app, &token, case).await;
    }
    let keys = app.get("/api/admin/keys", Some(&as_admin)).await;
    assert_401(keys, Some(INVALID), "role admin on an admin endpoint").await;
    assert_accepted(&app, &user.access_token, &user, "the untampered token").await;
}

/// The most common JWT signing secrets (from the wordlists of jwt_tool and
/// hashcat's JWT mode): a server that guessed none of them verifies none.
const COMMON_SECRETS: &[&str] = &[
    "secret",
    "password",
    "123456",
    "12345678",
    "1234567890",
    "qwerty",
    "your-256-bit-secret",
    "your-secret-key",
    "your_jwt_secret",
    "secretkey",
    "secret_key",
    "secret-key",
    "jwt",
    "jwtsecret",
    "jwt_secret",
    "jwt-secret",
    "jwtkey",
    "key",
    "changeme",
    "change_me",
    "changeit",
    "admin",
    "test",
    "testing",
    "default",
    "supersecret",
    "super-secret",
    "super_secret",
    "mysecret",
    "my_secret",
    "my-secret",
    "mysecretkey",
    "my_secret_key",
    "shhhhh",
    "shhhhhared-secret",
    "secret123",
    "secret1234",
    "Secret",
    "SECRET",
    "s3cr3t",
    "pass",
    "passw0rd",
    "Password1",
    "hello",
    "helloworld",
    "hello-world",
    "abc123",
    "letmein",
    "welcome",
    "token",
    "tokensecret",
    "token_secret",
    "access",
    "access_token",
    "accesstoken",
    "auth",
    "authsecret",
    "auth-secret",
    "api",
    "apikey",
    "api_key",
    "api-secret",
    "app",
    "appsecret",
    "app_secret",
    "application",
    "server",
    "serversecret",
    "private",
    "privatekey",
    "private_key",
    "public",
    "node",
    "nodejs",
    "express",
    "django-insecure",
    "flask",
    "laravel",
    "rails",
    "spring",
    "java",
    "python",
    "golang",
    "rust",
    "HS256",
    "hs256",
    "signing",
    "signingkey",
    "signing-key",
    "sign",
    "key123",
    "keyboard cat",
    "0123456789",
    "00000000",
    "11111111",
    "aaaaaaaa",
    "root",
    "toor",
    "guest",
    "user",
    "demo",
    "sample",
    "example",
    "dev",
    "development",
    "production",
    "staging",
    "latchkey",
    "",
    "null",
    "undefined",
    "none",
];

#[tokio::test]
async fn a_token_signed_with_any_of_the_hundred_most_common_secrets_is_refused() {
    assert!(COMMON_SECRETS.len() >= 100);
    // A server with nothing configured: its key is generated.
    let app = spawn_app_with(&[("SECRET_KEY", "")]).await;
    let (forger, _) = forger(&app).await;
    for secret in COMMON_SECRETS {
        let token = signed(&forger.header(), &forger.claims(), secret.as_bytes(), HS256);
        assert_refused(&app, &token, &format!("signed with {secret:?}")).await;
    }
}

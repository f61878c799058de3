//! `JWT_ALGORITHM=EdDSA`: Ed25519 keys in the ring, their public halves
//! at `/.well-known/jwks.json`. Tokens are checked by an independent JOSE
//! implementation (jwt-simple, over ed25519-compact; latchkey signs with
//! jsonwebtoken over ed25519-dalek) against the published set, and the
//! refusal list of the contract is run against an EdDSA ring, forged with
//! the ring's own private key read from the store.

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use diesel::prelude::*;
use ed25519_dalek::Signer;
use jsonwebtoken::{EncodingKey, crypto};
use jwt_simple::prelude::{Ed25519PublicKey, EdDSAPublicKeyLike, Token, VerificationOptions};
use latchkey::clock::Clock;
use latchkey::db::schema::{audit_log, signing_keys};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;

const EDDSA: &[(&str, &str)] = &[("JWT_ALGORITHM", "EdDSA"), ("SECRET_KEY", "")];

/// The claims jwt-simple does not know by name.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
struct Extra {
    sid: String,
    role: String,
}

/// `GET /.well-known/jwks.json`, checked for what every answer must be.
async fn jwks(app: &TestApp) -> Value {
    let response = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=60");
    let set = json_body(response).await;
    for key in set["keys"].as_array().unwrap() {
        let mut members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        members.sort();
        assert_eq!(
            members,
            ["alg", "crv", "kid", "kty", "use", "x"],
            "a public key and nothing else (no `d`): {key}"
        );
        assert_eq!(
            (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
            (
                &json!("OKP"),
                &json!("Ed25519"),
                &json!("EdDSA"),
                &json!("sig")
            )
        );
    }
    set
}

fn kids(set: &Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Verifies `token` as a service would with jwt-simple: the key named by
/// its `kid` is looked up in the published set, and only there.
fn verify_independently(set: &Value, token: &str) -> Result<(String, Extra), String> {
    let metadata = Token::decode_metadata(token).map_err(|e| e.to_string())?;
    let kid = metadata.key_id().ok_or("no kid")?;
    let key = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid)
        .ok_or_else(|| format!("the kid {kid} is not in the JWKS"))?;
    let x = B64
        .decode(key["x"].as_str().unwrap())
        .map_err(|e| e.to_string())?;
    let public = Ed25519PublicKey::from_bytes(&x).map_err(|e| e.to_string())?;
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from(["latchkey".to_owned()])),
        allowed_audiences: Some(HashSet::from(["latchkey".to_owned()])),
        ..Default::default()
    };
    let claims = public
        .verify_token::<Extra>(token, Some(options))
        .map_err(|e| e.to_string())?;
    Ok((claims.subject.unwrap_or_default(), claims.custom))
}

fn header_of(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
}

async fn rotate(app: &TestApp, revoke_previous: bool) -> Value {
    let admin = app.admin().await;
    let rotated = app
        .post(
            "/api/admin/keys/rotate",
            Some(&admin.access_token),
            &json!({ "revoke_previous": revoke_previous }),
        )
        .await;
    assert_eq!(rotated.status(), 201);
    json_body(rotated).await
}

#[tokio::test]
async fn eddsa_tokens_verify_with_an_independent_jose_library_against_the_jwks() {
    let app = spawn_app_with(EDDSA).await;
    let user = app.new_user().await;
    let header = header_of(&user.access_token);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    let set = jwks(&app).await;
    assert_eq!(kids(&set), [header["kid"].as_str().unwrap()]);
    let (sub, extra) = verify_independently(&set, &user.access_token).unwrap();
    assert_eq!(sub, user.id);
    assert_eq!(extra.role, "user");

    // latchkey itself: the guarded API, forward auth, a refresh.
    assert_eq!(
        app.get("/api/user/me", Some(&user.access_token))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get("/api/auth/verify", Some(&user.access_token))
            .await
            .status(),
        200
    );
    let refreshed = json_body(app.refresh(&user.refresh_token).await).await;
    let next = refreshed["access_token"].as_str().unwrap();
    assert!(verify_independently(&set, next).is_ok());

    // The private part is served nowhere.
    let admin = app.admin().await;
    let seed: Vec<u8> = signing_keys::table
        .select(signing_keys::secret)
        .first(&mut app.store())
        .unwrap();
    let seed = B64.encode(seed);
    for path in [
        "/.well-known/jwks.json",
        "/api/admin/keys",
        "/api/openapi.json",
    ] {
        let text = app
            .get(path, Some(&admin.access_token))
            .await
            .text()
            .await
            .unwrap();
        assert!(!text.contains(&seed), "{path} shows the private key");
    }

    // A rotation: both keys are published, the active one first; a token
    // of each verifies.
    let new_key = rotate(&app, false).await;
    let set = jwks(&app).await;
    assert_eq!(
        kids(&set),
        [
            new_key["kid"].as_str().unwrap(),
            header["kid"].as_str().unwrap()
        ]
    );
    let later = app.new_user().await;
    assert!(verify_independently(&set, &later.access_token).is_ok());
    assert!(verify_independently(&set, &user.access_token).is_ok());
    // Tampered, it verifies nowhere.
    let (head, rest) = later.access_token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_claims = B64.encode(json!({ "sub": user.id, "role": "admin" }).to_string());
    let tampered = format!("{head}.{forged_claims}.{signature}");
    assert!(verify_independently(&set, &tampered).is_err());
    assert_eq!(app.get("/api/user/me", Some(&tampered)).await.status(), 401);
}

#[tokio::test]
async fn a_retired_key_leaves_the_jwks_and_its_tokens_stop_verifying_there_too() {
    let app = spawn_app_with(EDDSA).await;
    let first = app.new_user().await;
    let first_kid = header_of(&first.access_token)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    // A rotation's previous key stays published until its tokens expire.
    let second = rotate(&app, false).await;
    assert_eq!(kids(&jwks(&app).await).len(), 2);
    app.clock.advance(301);
    let set = jwks(&app).await;
    assert_eq!(
        kids(&set),
        [second["kid"].as_str().unwrap()],
        "the window has passed"
    );
    assert!(
        verify_independently(&set, &first.access_token)
            .unwrap_err()
            .contains("not in the JWKS")
    );

    // An emergency rotation takes the previous key out at once: a token
    // that verified a moment ago verifies neither here nor there.
    let user = app.new_user().await;
    assert!(verify_independently(&jwks(&app).await, &user.access_token).is_ok());
    let third = rotate(&app, true).await;
    let set = jwks(&app).await;
    assert_eq!(kids(&set), [third["kid"].as_str().unwrap()]);
    let refused = verify_independently(&set, &user.access_token).unwrap_err();
    assert!(refused.contains("not in the JWKS"), "{refused}");
    assert_invalid_token(app.get("/api/user/me", Some(&user.access_token)).await).await;
    assert!(!kids(&set).contains(&first_kid));
}

#[tokio::test]
async fn with_hs256_the_jwks_is_empty_and_junk_gets_a_clear_4xx() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    assert_eq!(header_of(&user.access_token)["alg"], "HS256");
    assert_eq!(jwks(&app).await, json!({ "keys": [] }));
    for query in [
        "?junk",
        "?kid=../../etc/passwd",
        "?%ff%fe=1",
        "?keys[]=1&keys[]=2",
    ] {
        let response = app
            .get(&format!("/.well-known/jwks.json{query}"), None)
            .await;
        let problem = assert_problem(response, 400).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("no query"),
            "{query}"
        );
    }
    let posted = app
        .send(
            Method::POST,
            "/.well-known/jwks.json",
            None,
            Some(&json!({})),
        )
        .await;
    assert_eq!(posted.headers()["allow"], "GET");
    assert_problem(posted, 405).await;
}

#[tokio::test]
async fn a_change_of_algorithm_keeps_earlier_tokens_until_they_expire() {
    let hs = spawn_app().await;
    let before = hs.new_user().await;
    let hs_kid = header_of(&before.access_token)["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    // The same store restarted with EdDSA (SECRET_KEY unset, as the
    // settings require): a new Ed25519 key signs, the HMAC key verifies.
    let ed = hs.restart_with(EDDSA).await;
    let after = ed.sign_in(&before.email, PASSWORD).await;
    assert_eq!(header_of(&after.access_token)["alg"], "EdDSA");
    assert_eq!(
        ed.get("/api/user/me", Some(&before.access_token))
            .await
            .status(),
        200
    );
    assert_eq!(
        json_body(ed.refresh(&before.refresh_token).await).await["access_token"]
            .as_str()
            .map(|t| header_of(t)["alg"].clone()),
        Some(json!("EdDSA")),
        "the session goes on, now with EdDSA tokens"
    );
    let set = jwks(&ed).await;
    assert_eq!(
        kids(&set),
        [header_of(&after.access_token)["kid"].as_str().unwrap()]
    );
    assert!(
        !kids(&set).contains(&hs_kid),
        "an HMAC key is never published"
    );
    let rotations: Vec<Option<String>> = audit_log::table
        .filter(audit_log::action.eq("key.rotate"))
        .select(audit_log::detail)
        .load(&mut ed.store())
        .unwrap();
    assert!(
        rotations
            .iter()
            .flatten()
            .any(|d| d.contains("\"source\":\"JWT_ALGORITHM\"") && d.contains("EdDSA")),
        "{rotations:?}"
    );
    // A second instance started the same way changes nothing more.
    let again = hs.restart_with(EDDSA).await;
    assert_eq!(kids(&jwks(&again).await), kids(&set));

    // And back to HS256: the Ed25519 key still verifies (and is still
    // published) until the tokens it signed have expired.
    let back = hs.restart_with(&[("JWT_ALGORITHM", "HS256")]).await;
    let hs_again = back.sign_in(&before.email, PASSWORD).await;
    assert_eq!(header_of(&hs_again.access_token)["alg"], "HS256");
    assert_eq!(
        back.get("/api/user/me", Some(&after.access_token))
            .await
            .status(),
        200
    );
    let set = jwks(&back).await;
    assert_eq!(
        kids(&set),
        [header_of(&after.access_token)["kid"].as_str().unwrap()]
    );
    assert!(verify_independently(&set, &after.access_token).is_ok());

    // Once they have expired, nothing of the Ed25519 key is left.
    back.clock.advance(301);
    assert_eq!(jwks(&back).await, json!({ "keys": [] }));
    assert_invalid_token(back.get("/api/user/me", Some(&after.access_token)).await).await;
    assert_eq!(
        back.get(
            "/api/user/me",
            Some(&back.sign_in(&before.email, PASSWORD).await.access_token)
        )
        .await
        .status(),
        200
    );
}

/// The ring's active Ed25519 key, read from the store: its kid and seed.
fn active_private_key(app: &TestApp) -> (String, ed25519_dalek::SigningKey) {
    let (kid, seed): (String, Vec<u8>) = signing_keys::table
        .filter(signing_keys::state.eq("active"))
        .select((signing_keys::kid, signing_keys::secret))
        .first(&mut app.store())
        .unwrap();
    let seed: [u8; 32] = seed.try_into().unwrap();
    (kid, ed25519_dalek::SigningKey::from_bytes(&seed))
}

fn segments(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

fn signed_ed25519(header: &Value, claims: &Value, key: &ed25519_dalek::SigningKey) -> String {
    let message = segments(header, claims);
    let signature = key.sign(message.as_bytes());
    format!("{message}.{}", B64.encode(signature.to_bytes()))
}

fn signed_hmac(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let message = segments(header, claims);
    let signature = crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

#[tokio::test]
async fn the_refusal_list_holds_for_eddsa() {
    let app = spawn_app_with(EDDSA).await;
    let user = app.new_user().await;
    let (kid, key) = active_private_key(&app);
    let claims_of = |token: &str| -> Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
    };
    let claims = claims_of(&user.access_token);
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid });
    let forge = |edit: &dyn Fn(&mut Value, &mut Value)| {
        let (mut h, mut c) = (header.clone(), claims.clone());
        edit(&mut h, &mut c);
        signed_ed25519(&h, &c, &key)
    };
    // The positive control: made by hand with the ring's key, accepted.
    let valid = forge(&|_, _| {});
    assert_eq!(app.get("/api/user/me", Some(&valid)).await.status(), 200);

    let attacker = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let attacker_jwk = json!({ "kty": "OKP", "crv": "Ed25519",
        "x": B64.encode(attacker.verifying_key().to_bytes()) });
    let now = app.clock.now().timestamp();
    let mut cases: Vec<(&str, String)> = vec![
        (
            "signed by another Ed25519 key",
            signed_ed25519(&header, &claims, &attacker),
        ),
        ("typ JWT", forge(&|h, _| h["typ"] = json!("JWT"))),
        (
            "no typ",
            forge(&|h, _| drop(h.as_object_mut().unwrap().remove("typ"))),
        ),
        (
            "its own key in jwk, signed by it",
            signed_ed25519(
                &json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jwk": attacker_jwk }),
                &claims,
                &attacker,
            ),
        ),
        (
            "jku",
            forge(&|h, _| h["jku"] = json!("https://evil.example/jwks.json")),
        ),
        (
            "x5u",
            forge(&|h, _| h["x5u"] = json!("https://evil.example/cert.pem")),
        ),
        ("x5c", forge(&|h, _| h["x5c"] = json!(["MIIB"]))),
        (
            "no kid",
            forge(&|h, _| drop(h.as_object_mut().unwrap().remove("kid"))),
        ),
        (
            "an unknown kid",
            forge(&|h, _| h["kid"] = json!("no-such-key")),
        ),
        (
            "a path as kid",
            forge(&|h, _| h["kid"] = json!("../../../etc/passwd")),
        ),
        (
            "another issuer",
            forge(&|_, c| c["iss"] = json!("someone-else")),
        ),
        (
            "another audience",
            forge(&|_, c| c["aud"] = json!("another-api")),
        ),
        (
            "exp as a string",
            forge(&|_, c| c["exp"] = json!(c["exp"].to_string())),
        ),
        ("nbf as a string", forge(&|_, c| c["nbf"] = json!("0"))),
        ("expired", forge(&|_, c| c["exp"] = json!(now - 1))),
        ("not yet valid", forge(&|_, c| c["nbf"] = json!(now + 60))),
        ("a wrong signature", {
            // One character in the middle of the signature changed.
            let mut bytes = valid.clone().into_bytes();
            let at = valid.rfind('.').unwrap() + 20;
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).unwrap()
        }),
        (
            "over 8 KiB",
            forge(&|_, c| c["pad"] = json!("p".repeat(8 * 1024))),
        ),
    ];
    for claim in ["exp", "iat", "sub", "sid", "iss", "aud"] {
        cases.push((
            claim,
            forge(&|_, c| drop(c.as_object_mut().unwrap().remove(claim))),
        ));
    }
    for alg in ["none", "None", "NONE", "nOnE"] {
        let message = segments(&json!({ "alg": alg, "typ": "at+jwt", "kid": kid }), &claims);
        cases.push(("alg none", format!("{message}.")));
    }
    for (case, token) in &cases {
        assert_ne!(token, &valid, "{case} differs from the valid token");
        assert_invalid_token(app.get("/api/user/me", Some(token)).await).await;
    }

    // Signed out, disabled: refused although well signed.
    assert_eq!(app.logout_bearer(&user.access_token).await.status(), 204);
    assert_invalid_token(app.get("/api/user/me", Some(&valid)).await).await;
    // A key retired by an emergency rotation: its own tokens are refused.
    let other = app.new_user().await;
    let (old_kid, old_key) = active_private_key(&app);
    rotate(&app, true).await;
    let claims = claims_of(&other.access_token);
    let retired = signed_ed25519(
        &json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": old_kid }),
        &claims,
        &old_key,
    );
    assert_invalid_token(app.get("/api/user/me", Some(&retired)).await).await;
}

#[tokio::test]
async fn alg_confusion_between_hs256_and_eddsa_is_refused_both_ways() {
    // An EdDSA ring: its public key (published) used as an HMAC secret.
    let ed = spawn_app_with(EDDSA).await;
    let user = ed.new_user().await;
    let header = header_of(&user.access_token);
    let claims: Value = {
        let part = user.access_token.split('.').nth(1).unwrap();
        serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
    };
    let set = jwks(&ed).await;
    let x = set["keys"][0]["x"].as_str().unwrap().to_owned();
    let hs_header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": header["kid"] });
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(
            [
                &[
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00
                ][..],
                &B64.decode(&x).unwrap(),
            ]
            .concat()
        )
    );
    for (what, secret) in [
        ("the raw public key", B64.decode(&x).unwrap()),
        ("the JWK's x", x.clone().into_bytes()),
        ("the public key's PEM", pem.into_bytes()),
        ("the whole JWKS", set.to_string().into_bytes()),
    ] {
        let forged = signed_hmac(&hs_header, &claims, &secret);
        let response = ed.get("/api/user/me", Some(&forged)).await;
        assert_eq!(response.status(), 401, "HS256 keyed with {what}");
        assert_invalid_token(response).await;
    }

    // An HMAC ring: an EdDSA token naming its kid, signed by any Ed25519
    // key, is refused; so is one signed with the HMAC secret as a seed.
    let hs = spawn_app().await;
    let user = hs.new_user().await;
    let header = header_of(&user.access_token);
    let claims: Value = {
        let part = user.access_token.split('.').nth(1).unwrap();
        serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
    };
    let ed_header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": header["kid"] });
    let seed: [u8; 32] = SECRET_KEY.as_bytes()[..32].try_into().unwrap();
    for key in [
        ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
        ed25519_dalek::SigningKey::from_bytes(&seed),
    ] {
        let forged = signed_ed25519(&ed_header, &claims, &key);
        assert_invalid_token(hs.get("/api/user/me", Some(&forged)).await).await;
    }
    // The real HS256 token still works: the refusals were the forgeries'.
    assert_eq!(
        hs.get("/api/user/me", Some(&user.access_token))
            .await
            .status(),
        200
    );
}

//! Access tokens: JWTs signed with the key ring's active key, HS256 or
//! EdDSA (Ed25519), whichever that key is.
//!
//! Verification refuses everything API.md lists (and SECURITY.md items
//! 1–6): the checks on the raw token and its header come first, so a forged
//! header never reaches a key look-up, and the `kid` is only ever a map key.

pub use super::claims::AccessClaims;
use super::keys::KeyRing;
use super::revocation::RevocationSet;
use super::verified::VerifiedTokens;
use crate::config::Settings;
use crate::domain::{KeyAlgorithm, Role};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The `typ` every access token carries (RFC 9068).
pub const TOKEN_TYPE: &str = "at+jwt";

/// Why a token was refused; the client only ever sees "invalid_token", the
/// reason goes to the debug log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm other than the key's (HS256 or EdDSA)")]
    Algorithm,
    #[error("typ is not at+jwt")]
    Type,
    #[error("header carries a key or key reference")]
    EmbeddedKey,
    #[error("kid missing or not in the ring")]
    UnknownKey,
    #[error("signature or claims invalid")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("session revoked")]
    Revoked,
}

/// A freshly signed access token.
pub struct IssuedToken {
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

pub struct TokenService {
    issuer: String,
    audience: String,
    ttl: i64,
    leeway: i64,
    /// What a signed token must satisfy, one per algorithm (each accepts
    /// only its own).
    hs256: Validation,
    eddsa: Validation,
    verified: VerifiedTokens,
}

impl TokenService {
    pub fn new(settings: &Settings) -> Self {
        let validation = |algorithm| {
            let mut validation = Validation::new(algorithm);
            // jsonwebtoken's default leeway is 60 s; ours is TOKEN_LEEWAY (0).
            validation.leeway = settings.token_leeway.as_secs();
            validation.validate_exp = true;
            validation.validate_nbf = true;
            validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
            validation.set_issuer(&[&settings.jwt_issuer]);
            validation.set_audience(&[&settings.jwt_audience]);
            validation
        };
        Self {
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            ttl: settings.access_token_ttl.as_secs() as i64,
            leeway: settings.token_leeway.as_secs() as i64,
            hs256: validation(Algorithm::HS256),
            eddsa: validation(Algorithm::EdDSA),
            verified: VerifiedTokens::new(super::verified::CAPACITY),
        }
    }

    /// Signs a token for one session. It never outlives `session_ends`
    /// (the session's idle or absolute expiry, whichever comes first).
    pub fn issue(
        &self,
        keys: &KeyRing,
        user_id: &str,
        session_id: &str,
        role: Role,
        session_ends: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let iat = now.timestamp();
        let exp = (iat + self.ttl).min(session_ends.timestamp()).max(iat + 1);
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat,
            exp,
            nbf: None,
            role,
        };
        let key = keys.active();
        let mut header = Header::new(jose_algorithm(key.algorithm));
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)?;
        Ok(IssuedToken {
            token,
            expires_in: exp - iat,
        })
    }

    /// Checks a presented token completely: shape, header, key, signature,
    /// claims, times (against the app's clock) and revocation.
    pub fn verify(
        &self,
        token: &str,
        keys: &KeyRing,
        revocations: &RevocationSet,
        now: DateTime<Utc>,
    ) -> Result<AccessClaims, TokenError> {
        // A token seen before skips the parsing and the signature, never
        // the checks of what can change: the key, the clock, revocation.
        if let Some(seen) = self.verified.get(token) {
            if keys.accepts(&seen.kid, now) {
                self.check_live(&seen.claims, now, revocations)?;
                return Ok(seen.claims.clone());
            }
            return Err(TokenError::UnknownKey);
        }
        check_shape(token)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !matches!(header.alg, Algorithm::HS256 | Algorithm::EdDSA) {
            return Err(TokenError::Algorithm);
        }
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            typ.eq_ignore_ascii_case(TOKEN_TYPE) || typ.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(TokenError::Type);
        }
        if header.jwk.is_some()
            || header.jku.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return Err(TokenError::EmbeddedKey);
        }
        let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
        let (algorithm, key) = keys.verifier(kid, now).ok_or(TokenError::UnknownKey)?;
        // The key decides the algorithm: an HS256 token naming an Ed25519
        // key (its public half used as an HMAC secret) is refused here, as
        // is the reverse.
        if header.alg != jose_algorithm(algorithm) {
            return Err(TokenError::Algorithm);
        }
        let validation = match algorithm {
            KeyAlgorithm::Hs256 => &self.hs256,
            KeyAlgorithm::EdDsa => &self.eddsa,
        };
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        self.check_live(&claims, now, revocations)?;
        self.verified.insert(token, kid, &claims, now.timestamp());
        Ok(claims)
    }

    /// The checks of a signed token that can change from one request to
    /// the next. The library checked the times against the system clock;
    /// these check them against the app's, which tests can move.
    fn check_live(
        &self,
        claims: &AccessClaims,
        now: DateTime<Utc>,
        revocations: &RevocationSet,
    ) -> Result<(), TokenError> {
        let now = now.timestamp();
        if now >= claims.exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
        {
            return Err(TokenError::NotYetValid);
        }
        if revocations.is_revoked(&claims.sid) {
            return Err(TokenError::Revoked);
        }
        Ok(())
    }
}

/// The JOSE algorithm of a key.
fn jose_algorithm(algorithm: KeyAlgorithm) -> Algorithm {
    match algorithm {
        KeyAlgorithm::Hs256 => Algorithm::HS256,
        KeyAlgorithm::EdDsa => Algorithm::EdDSA,
    }
}

/// Three non-empty base64url segments, at most [`MAX_TOKEN_BYTES`] long.
fn check_shape(token: &str) -> Result<(), TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let base64url = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut segments = 0;
    for segment in token.split('.') {
        segments += 1;
        if segments > 3 || !base64url(segment) {
            return Err(TokenError::Malformed);
        }
    }
    if segments == 3 {
        Ok(())
    } else {
        Err(TokenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_base64url_segments_pass_the_shape_check() {
        assert!(check_shape("a.b.c").is_ok());
        for bad in [
            "", "a.b", "a.b.c.d", "a..c", "a.b.", "a.b.c=", "a+b.c.d", "a.b.c d",
        ] {
            assert_eq!(check_shape(bad), Err(TokenError::Malformed), "{bad:?}");
        }
        assert_eq!(
            check_shape(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(TokenError::Malformed)
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::auth::keys::KeyRing;
    use crate::config::Settings;
    use crate::db::models::SigningKeyRow;
    use proptest::prelude::*;

    /// A service with one active key: HMAC, or Ed25519 when `eddsa`.
    fn service(eddsa: bool) -> (TokenService, KeyRing, RevocationSet) {
        let settings = Settings::from_lookup(|_| None).unwrap();
        let row = SigningKeyRow {
            kid: "k1".into(),
            secret: vec![7; 32],
            state: crate::domain::KeyState::Active,
            created_at: Utc::now().naive_utc(),
            deactivated_at: None,
            retired_at: None,
            algorithm: if eddsa {
                KeyAlgorithm::EdDsa
            } else {
                KeyAlgorithm::Hs256
            },
        };
        let keys = KeyRing::new(&[row], chrono::TimeDelta::seconds(300)).unwrap();
        (
            TokenService::new(&settings),
            keys,
            RevocationSet::new(chrono::TimeDelta::seconds(300)),
        )
    }

    proptest! {
        #[test]
        fn verifying_any_text_never_panics_and_never_accepts(token in "\\PC{0,400}|[A-Za-z0-9_\\-]{0,60}\\.[A-Za-z0-9_\\-]{0,200}\\.[A-Za-z0-9_\\-]{0,60}", eddsa in any::<bool>()) {
            let (service, keys, revocations) = service(eddsa);
            prop_assert!(service.verify(&token, &keys, &revocations, Utc::now()).is_err());
        }

        #[test]
        fn an_issued_token_verifies_and_any_change_to_it_does_not(position in 0usize..400, byte in any::<u8>(), eddsa in any::<bool>()) {
            let (service, keys, revocations) = service(eddsa);
            let now = Utc::now();
            let issued = service.issue(&keys, "u", "s", Role::User, now + chrono::TimeDelta::hours(1), now).unwrap();
            prop_assert!(service.verify(&issued.token, &keys, &revocations, now).is_ok());
            let mut bytes = issued.token.into_bytes();
            let at = position % bytes.len();
            prop_assume!(bytes[at] != byte);
            bytes[at] = byte;
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert!(service.verify(&changed, &keys, &revocations, now).is_err());
            }
        }
    }
}

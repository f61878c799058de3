use std::fmt;

/// Where a signing key is in its life: `active` signs (exactly one),
/// `previous` only verifies until its window ends, `retired` does neither.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum KeyState {
    Active,
    Previous,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Previous => "previous",
            KeyState::Retired => "retired",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "active" => Some(KeyState::Active),
            "previous" => Some(KeyState::Previous),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }

    /// Whether tokens signed by a key in this state may still verify.
    pub fn verifies(self) -> bool {
        matches!(self, KeyState::Active | KeyState::Previous)
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a key signs: HMAC-SHA256 (`HS256`, the secret signs and verifies)
/// or Ed25519 (`EdDSA`, the private half signs, the public half, which
/// the JWKS publishes, verifies).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum KeyAlgorithm {
    Hs256,
    EdDsa,
}

impl KeyAlgorithm {
    /// The name in `JWT_ALGORITHM`, the store and a token's `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Hs256 => "HS256",
            KeyAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// Exactly `HS256` or `EdDSA`, as JOSE spells them.
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "HS256" => Some(KeyAlgorithm::Hs256),
            "EdDSA" => Some(KeyAlgorithm::EdDsa),
            _ => None,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

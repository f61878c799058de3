//! What an access token says about its holder.

use crate::domain::Role;
use serde::{Deserialize, Serialize};

/// The claims of an access token, as issued and as required on input: a
/// missing claim or one of the wrong JSON type fails deserialisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub role: Role,
}

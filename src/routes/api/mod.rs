//! The JSON API under `/api`: each handler extracts, parses into domain
//! values, calls one operation of `crate::service` and renders a view.

pub mod body;
pub mod caller;
pub mod clients;
pub mod email;
pub mod error;
pub mod introspect;
pub mod jwks;
pub mod keys;
pub mod mfa;
pub mod openapi;
pub mod passwords;
pub mod responses;
pub mod tokens;
pub mod users;
pub mod verify;
pub mod views;

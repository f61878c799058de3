//! The HTTP faces: the JSON API, the admin console, and the service
//! endpoints (health, readiness, metrics). The route table that maps paths
//! to these handlers is `crate::router`.

pub mod admin;
pub mod api;
pub mod client;
pub mod service;

//! latchkey: users and sign-in for an application, in one binary.
//!
//! The layers, from the bottom (docs/architecture.md has the picture):
//! `domain` (parsed values) → `db` (every SQL statement) → `auth`
//! (mechanisms: hashing, keys, tokens, refresh chains, throttling) →
//! `state` → `service` (every operation, and who may do it) → the faces:
//! `routes::api` (JSON), `routes::admin` (console), `cli` → `router`,
//! `middleware`, `background`, `startup`.

pub mod audit;
pub mod auth;
pub mod background;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod mail;
pub mod metrics;
pub mod middleware;
pub mod rfc3339;
pub mod router;
pub mod routes;
pub mod service;
pub mod startup;
pub mod state;

/// The largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

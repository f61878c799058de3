//! latchkey: users and sign-in for an application, in one binary.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod errors;
pub mod metrics;
pub mod routes;
pub mod startup;
pub mod state;

/// The largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

//! Black-box tests of the JSON API: the real application on a real port,
//! each test with its own SQLite file.

mod audit_log;
mod backends;
mod cli;
mod clients;
mod console;
mod crash;
mod eddsa;
mod email;
mod errors;
mod files;
mod forged_tokens;
mod forward_auth;
mod helpers;
mod instances;
mod keys;
mod logs;
mod mfa;
mod migrate_store;
mod nginx;
mod postgres;
mod processes;
mod properties;
mod readme;
mod revocation;
mod service;
mod smtp;
mod startup;
mod throttle;
mod tokens;
mod totp_codes;
mod users;

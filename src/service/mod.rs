//! The operations latchkey performs, whoever asks: the JSON API, the admin
//! console and the command line each parse their input, call one of these
//! and render the result. An operation takes the shared state, the
//! [`Actor`] (who acts; what they may do is decided here, not in a face),
//! the client and parsed domain values, and returns a [`ServiceError`]
//! that each face maps once to its own answer.
//!
//! Writes go through `AppState::write` or `write_revoking`, with the
//! audit entry in the same transaction as the change.

mod actor;
pub mod audit;
pub mod clients;
pub mod email;
mod error;
pub mod keys;
pub mod listing;
pub mod mailroom;
pub mod mfa;
pub mod passwords;
pub mod sessions;
pub mod setup;
pub mod signin;
pub mod users;

pub use actor::Actor;
pub use error::ServiceError;

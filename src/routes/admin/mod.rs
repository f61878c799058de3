//! The admin console under `/admin`: server-rendered pages for admins,
//! signed in with a server-side session (see `auth::console_store`).
//!
//! Every page is rendered from an askama template; every form that changes
//! something carries the session's CSRF token and is refused from another
//! site; every change answers with a redirect and a flash message
//! (post/redirect/get), but the creation of a service client, whose secret
//! is shown on the answer itself and kept nowhere. Handlers parse the form, call one operation of
//! `crate::service` and render; they never use the JSON API's modules.

pub mod account;
pub mod audit;
pub mod chrome;
pub mod clients;
pub mod dashboard;
pub mod email;
pub mod error;
pub mod keys;
pub mod page;
pub mod session;
pub mod signin;
pub mod users;
pub mod when;

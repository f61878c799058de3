//! HTTP handlers. The route table itself lives in `startup.rs`.

pub mod admin;
pub mod api;
pub mod cursor;
pub mod service;
